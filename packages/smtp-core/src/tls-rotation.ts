/**
 * Certificate rotation: each new pair from the TlsProvider replaces the
 * secure context of every listener. Sessions already open keep theirs.
 */
import type { SecureContextOptions } from 'node:tls';
import type { GatewayServer } from './library/server.js';

/** Where the certificate comes from; @cakemail-smtp/tls's reloader fits. */
export interface TlsProvider {
  current(): { readonly cert: string; readonly key: string };
  onChange(listener: (pair: { readonly cert: string; readonly key: string }) => void): () => void;
}

/** Follows `tls` on `servers`; returns the function that stops following. */
export function rotateCertificates(tls: TlsProvider, settings: SecureContextOptions, servers: readonly GatewayServer[]): () => void {
  return tls.onChange((pair) => {
    for (const server of servers) server.updateSecureContext({ ...settings, key: pair.key, cert: pair.cert });
  });
}
