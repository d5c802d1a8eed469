/**
 * The AUTH policy around a Session's decision: a lock from the AuthLimiter
 * (failed logins across connections) refuses before the credentials are
 * checked, a refusal for `invalid` credentials counts towards that lock, and
 * the failures of one connection are bounded (maxAuthFailures: the last one
 * gets `421 4.7.0` and the connection closes).
 */
import type { Logger } from '@cakemail-smtp/tls';
import type { AuthLimiter } from './auth-limiter/index.js';
import { Replies, isSmtpError } from './errors.js';
import type { CountHook } from './metrics.js';
import type { Credentials, Session } from './session.js';

export interface AuthPolicy {
  readonly limiter: AuthLimiter;
  /** Failed AUTH on one connection before it is closed. */
  readonly maxAuthFailures: number;
  readonly count: CountHook;
}

/** The connection AUTH runs on. */
export interface AuthConnection {
  readonly session: Session;
  readonly log: Logger;
  /** The client, as clientKey() counts it. */
  readonly ip: string;
  authFailures: number;
}

/** Logged in, or refused with `err` (an SmtpError, or anything a session threw). */
export type AuthOutcome = { readonly ok: true } | { readonly ok: false; readonly err: unknown };

export async function authenticate(policy: AuthPolicy, conn: AuthConnection, credentials: Credentials): Promise<AuthOutcome> {
  const { limiter, count } = policy;
  const { mechanism, username } = credentials;
  /**
   * `failed`: a refusal that counts against this connection's maxAuthFailures.
   * A refusal while locked out counts too: a client must not hammer a lock on one connection.
   */
  const refuse = (err: unknown, failed: boolean): AuthOutcome => {
    // The last failure allowed on this connection closes it (421 closes in the library).
    const closing = failed && ++conn.authFailures >= policy.maxAuthFailures;
    if (closing) count('limit', 'auth_failures_connection');
    count('auth', isSmtpError(err) && !err.temporary ? 'failure' : 'error');
    conn.log.info({ mechanism, reply: isSmtpError(err) ? err.code : 451, failures: conn.authFailures }, 'authentication refused');
    return { ok: false, err: closing ? Replies.S421_TOO_MANY_AUTH_FAILURES : err };
  };
  try {
    const lock = await limiter.check(username, conn.ip);
    if (lock.locked) {
      count('limit', lock.scope === 'ip' ? 'auth_lockout_ip' : 'auth_lockout_user');
      return refuse(Replies.S454_AUTH_LOCKED, true);
    }
    let decision;
    try {
      decision = await conn.session.auth(credentials);
    } catch (err) {
      return refuse(err, isSmtpError(err) && err.code === 535);
    }
    if (!decision.ok) {
      if (decision.reason === 'invalid') await limiter.fail(username, conn.ip);
      return refuse(decision.reply, decision.reason !== 'unavailable');
    }
    await limiter.succeed(username, conn.ip);
    count('auth', 'success');
    conn.log.info({ mechanism }, 'authenticated');
    return { ok: true };
  } catch (err) {
    return refuse(err, isSmtpError(err) && err.code === 535);
  }
}
