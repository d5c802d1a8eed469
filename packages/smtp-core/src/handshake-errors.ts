/**
 * A listener's connection errors: failed TLS handshakes are classified,
 * counted and logged at info; other connection errors at debug.
 */
import type { Logger } from '@cakemail-smtp/tls';
import type { GatewayServer } from './library/server.js';
import type { CountHook } from './metrics.js';
import type { Listener } from './session.js';

/** Classifies a failed handshake for the counter and the log. */
function handshakeReason(err: { code?: string; message?: string }): string {
  const text = `${err.code ?? ''} ${err.message ?? ''}`.toUpperCase();
  if (text.includes('TIMEOUT')) return 'timeout';
  if (text.includes('HTTP_REQUEST') || text.includes('WRONG_VERSION_NUMBER') || text.includes('UNKNOWN_PROTOCOL') || text.includes('RECORD'))
    return 'garbage';
  if (text.includes('PROTOCOL') || text.includes('VERSION')) return 'protocol';
  if (text.includes('CIPHER') || text.includes('SIGALG') || text.includes('GROUP')) return 'cipher';
  return 'other';
}

export function watchConnectionErrors(server: GatewayServer, listener: Listener, logger: Logger, count: CountHook): void {
  // A failed STARTTLS handshake reaches here twice (the TLS socket's 'error'
  // and '_tlsError' carry the same error object): count it once.
  const seen = new WeakSet<Error>();
  server.on('error', (err: Error & { code?: string; meta?: { stage?: string; remoteAddress?: string } }) => {
    if (seen.has(err)) return;
    seen.add(err);
    if (err.meta?.stage === 'connect' || /TLS|SSL/i.test(`${err.code} ${err.message}`)) {
      const reason = handshakeReason(err);
      count('tls_handshake_failure', reason);
      logger.info({ listener, reason, code: err.code, remoteAddress: err.meta?.remoteAddress }, 'TLS handshake failed');
      return;
    }
    logger.debug({ listener, code: err.code, err: err.message }, 'connection error');
  });
}
