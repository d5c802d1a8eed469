/**
 * The server's TLS settings: TLS 1.2 and 1.3 only, and on TLS 1.2 only
 * forward-secret AEAD suites (ECDHE or DHE with AES-GCM or ChaCha20-Poly1305),
 * in the server's order. No RSA key exchange, CBC, RC4, 3DES or export suites,
 * no renegotiation, no compression.
 */
import { constants } from 'node:crypto';
import type { SecureContextOptions } from 'node:tls';

/** TLS 1.2 suites, strongest first. TLS 1.3 suites are all AEAD and forward-secret. */
export const TLS12_CIPHERS = [
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'DHE-RSA-AES256-GCM-SHA384',
  'DHE-RSA-CHACHA20-POLY1305',
  'DHE-RSA-AES128-GCM-SHA256',
] as const;

export const TLS13_CIPHERSUITES = [
  'TLS_AES_256_GCM_SHA384',
  'TLS_CHACHA20_POLY1305_SHA256',
  'TLS_AES_128_GCM_SHA256',
] as const;

/** Options for `tls.createSecureContext` (and smtp-server's top-level options). */
export type ServerTlsSettings = Required<
  Pick<SecureContextOptions, 'minVersion' | 'maxVersion' | 'ciphers' | 'honorCipherOrder' | 'secureOptions'>
> & { ecdhCurve: string };

export const serverTlsSettings: Readonly<ServerTlsSettings> = Object.freeze({
  minVersion: 'TLSv1.2',
  maxVersion: 'TLSv1.3',
  // OpenSSL takes TLS 1.3 suites in the same list as the TLS 1.2 ones.
  ciphers: [...TLS13_CIPHERSUITES, ...TLS12_CIPHERS].join(':'),
  honorCipherOrder: true,
  ecdhCurve: 'X25519:P-256:P-384',
  secureOptions:
    constants.SSL_OP_NO_RENEGOTIATION |
    constants.SSL_OP_NO_COMPRESSION |
    constants.SSL_OP_CIPHER_SERVER_PREFERENCE,
});
