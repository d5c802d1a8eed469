/**
 * What smtp-core counts. The gateway exports these (prom-client); smtp-core
 * only calls the hook, so it has no metrics dependency. Labels never carry
 * addresses or usernames.
 */
export type SmtpEvent =
  /** A connection was accepted. reason: the listener, `starttls` or `implicit`. */
  | 'connection'
  /** A TLS handshake failed or timed out. reason: `protocol`, `cipher`, `timeout`, `garbage`, `other`. */
  | 'tls_handshake_failure'
  /**
   * A trusted balancer's connection did not start with a valid PROXY header;
   * it was closed. reason: `invalid` (other octets), `missing` (none in time).
   */
  | 'proxy_header_failure'
  /** AUTH finished. reason: `success`, `failure`, `error`. */
  | 'auth'
  /** A limit or edge defence refused something. reason: which one. */
  | 'limit'
  /** A message transaction finished. reason: `accepted`, `temporary`, `permanent`. */
  | 'message';

export type CountHook = (event: SmtpEvent, reason: string) => void;

export const noCount: CountHook = () => {};
