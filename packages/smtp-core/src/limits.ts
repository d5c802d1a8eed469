/**
 * The limits smtp-core enforces. The caller gives every one of them (the
 * gateway's configuration is where their defaults live); smtp-core trusts
 * them, and only refuses a combination that cannot work.
 */
import type { BareLfPolicy } from './data-guard.js';

export interface SmtpLimits {
  /** Bytes; `552 5.3.4` over it, at MAIL `SIZE=` and during DATA. */
  readonly maxMessageSize: number;
  /** `452 4.5.3` from the first recipient over it. */
  readonly maxRecipients: number;
  /** An idle session gets `421 4.4.2`. */
  readonly idleTimeoutMs: number;
  /** A TLS handshake (implicit or STARTTLS), or a PROXY header, that takes longer is dropped. */
  readonly handshakeTimeoutMs: number;
  /**
   * Connections across both listeners, counted from accept (before TLS, a
   * PROXY header or the greeting). Over it: `421 4.7.0` on the STARTTLS
   * listener, closed before TLS on the implicit one. 0: no limit.
   */
  readonly maxConnections: number;
  /**
   * Connections from one client (IPv6: one /64), counted from accept as
   * maxConnections is; must be lower than maxConnections. 0: no limit.
   */
  readonly maxConnectionsPerIp: number;
  /** Overall session cap; `421 4.4.2` when reached. 0: none. */
  readonly sessionMaxMs: number;
  /** Message transactions per session; the next MAIL gets `421 4.7.0`. */
  readonly maxMessagesPerSession: number;
  /** Commands that move no mail (NOOP, RSET, unknown…) between two messages; then `421 4.7.0`. */
  readonly maxJunkCommands: number;
  /** Failed AUTH on one connection; the last one gets `421 4.7.0` and the connection is closed. */
  readonly maxAuthFailures: number;
  /** Commands before a successful AUTH (AUTH itself not counted); then `421 4.7.0`. */
  readonly maxUnauthenticatedCommands: number;
  readonly bareLf: BareLfPolicy;
  /**
   * Message bytes held at once across all sessions, from the first DATA byte
   * until the reply is sent. Over it: `452 4.3.1` at `MAIL FROM ... SIZE=`
   * (checked against what is free then, nothing reserved) or `451 4.3.1`
   * during DATA. 0: no limit.
   */
  readonly maxInflightBytes: number;
  /**
   * How long close() lets sessions finish before cutting them off. A session
   * whose message was received and waits for its reply is never cut.
   */
  readonly closeTimeoutMs: number;
  /**
   * The longest the backend takes to answer a message received in full (the
   * relay's deadline). close() cuts sessions this long before closeTimeoutMs,
   * so that every reply still fits in closeTimeoutMs. 0: cut at closeTimeoutMs.
   */
  readonly maxReplyWaitMs: number;
}

/** Throws a RangeError for limits that contradict each other. */
export function checkLimits(limits: SmtpLimits): void {
  if (limits.maxConnections > 0 && limits.maxConnectionsPerIp >= limits.maxConnections)
    throw new RangeError('maxConnectionsPerIp must be lower than maxConnections: one address must not take every connection');
}
