/**
 * The session interface, in go-smtp's spirit: a Backend opens one Session per
 * connection, and the Session sees commands, never sockets or smtp-server's
 * callbacks. smtp-core enforces the protocol (TLS before AUTH, AUTH before
 * MAIL, limits); a Session only decides.
 *
 * AUTH answers with a decision; every method may throw an SmtpError to choose
 * the reply. Anything else thrown becomes `451 4.3.0` and is logged.
 */
import type { Readable } from 'node:stream';
import type { SmtpError } from './errors.js';

/** The listener a client came in on. */
export type Listener = 'starttls' | 'implicit';

/** What a session knows about its connection. */
export interface ConnectionInfo {
  /** smtp-server's random session id, also the `sessionId` of its log lines. */
  readonly id: string;
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localPort: number;
  /** The listener the client came in on. */
  readonly listener: Listener;
}

export type AuthMechanism = 'PLAIN' | 'LOGIN';

export interface Credentials {
  readonly mechanism: AuthMechanism;
  readonly username: string;
  readonly password: string;
}

/**
 * Why a login was refused. `invalid`: the credentials are wrong; only these
 * count towards the lockout (AuthLimiter.fail). `denied`: the credentials may
 * be right but this login is refused (e.g. the account requires MFA).
 * `unavailable`: they could not be checked now (the client should retry).
 */
export type AuthRefusal = 'invalid' | 'denied' | 'unavailable';

/** What AUTH decided: the session is logged in, or refused with a reply. */
export type AuthDecision =
  | { readonly ok: true }
  | { readonly ok: false; readonly reason: AuthRefusal; readonly reply: SmtpError };

/** Parameters of MAIL FROM that reach the session. */
export interface MailOptions {
  /** The `SIZE=` the client declared, if any. */
  readonly size?: number;
  readonly body?: '7bit' | '8bitmime';
  readonly smtpUtf8: boolean;
}

/** What DATA delivers to the session. */
export interface DataInfo {
  /** The envelope sender, `''` for the null sender. */
  readonly from: string;
  /** The envelope recipients, in order, without duplicates. */
  readonly to: readonly string[];
}

export interface Session {
  /**
   * AUTH PLAIN or LOGIN, only ever called on a TLS connection and at most once
   * successfully. Wrong credentials: `{ ok: false, reason: 'invalid', reply:
   * Replies.S535_AUTH_INVALID }`.
   */
  auth(credentials: Credentials): Promise<AuthDecision>;
  /** MAIL FROM, after AUTH. `from` is `''` for the null sender. */
  mail(from: string, options: MailOptions): Promise<void>;
  /** RCPT TO, after MAIL. */
  rcpt(to: string): Promise<void>;
  /**
   * DATA. `message` is the raw message (dot-unstuffed, CRLF line ends) and ends
   * after the final dot. The returned text follows `250 2.0.0 `. The session
   * must consume `message` or the reply waits until smtp-core drains it.
   */
  data(message: Readable, info: DataInfo): Promise<string>;
  /** RSET, HELO/EHLO again, or the end of a transaction. */
  reset(): void;
  /** The connection closed, whatever the reason. Release everything. */
  logout(): void;
}

export interface Backend {
  /** A new connection was accepted and is about to be greeted. */
  newSession(conn: ConnectionInfo): Session;
}
