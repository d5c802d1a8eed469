/**
 * Calling Cakemail from a session: with the login's access token (refreshed once after a 401),
 * and a failure turned into the reply the client sees (outcomes.ts decides it, this logs it).
 */
import { isSmtpError, Replies, type SmtpError } from '@cakemail-smtp/smtp-core';
import type { AuthSession } from '../auth.js';
import type { CallOptions } from '../client.js';
import { CakemailError, errorLogFields } from '../errors.js';
import { upstreamReply } from '../outcomes.js';
import type { Logger } from '../types.js';

/** Runs `fn` with the access token; after a 401, refreshes once and runs it again. */
export function withToken<T>(auth: AuthSession, opts: CallOptions, fn: (token: string) => Promise<T>): Promise<T> {
  // A fresh token needs no await (accessToken() would answer it at once): one promise less per call.
  const fresh = auth.freshToken;
  if (fresh === undefined) return withTokenSlow(auth, opts, fn);
  let first: Promise<T>;
  try {
    first = fn(fresh);
  } catch (err) {
    first = Promise.reject(err);
  }
  return first.catch((err: unknown) => {
    if (!(err instanceof CakemailError) || err.kind !== 'auth') throw err;
    return retryAfterUnauthorized(auth, opts, fn, fresh);
  });
}

async function retryAfterUnauthorized<T>(auth: AuthSession, opts: CallOptions, fn: (token: string) => Promise<T>, token: string): Promise<T> {
  try {
    const fresh = await auth.refreshAfterUnauthorized(token, opts);
    return await fn(fresh);
  } catch (err) {
    throw asTemporary(err);
  }
}

async function withTokenSlow<T>(auth: AuthSession, opts: CallOptions, fn: (token: string) => Promise<T>): Promise<T> {
  let token: string;
  try {
    token = await auth.accessToken(opts);
  } catch (err) {
    throw asTemporary(err);
  }
  try {
    return await fn(token);
  } catch (err) {
    if (!(err instanceof CakemailError) || err.kind !== 'auth') throw err;
  }
  return retryAfterUnauthorized(auth, opts, fn, token);
}

/** An auth failure after the one refresh is temporary (the client retries, logs in again). */
function asTemporary(err: unknown): unknown {
  if (err instanceof CakemailError && err.kind === 'auth') {
    return new CakemailError('temporary', `${err.message} (after token refresh)`, {
      reason: err.reason,
      ...(err.status === undefined ? {} : { status: err.status }),
    });
  }
  return err;
}

/** Any failure → the SMTP reply the client sees, logged; never internal detail. */
export function failureReply(log: Logger, err: unknown, what: string): SmtpError {
  if (isSmtpError(err)) return err;
  if (err instanceof CakemailError) {
    const reply = upstreamReply(err);
    if (reply.temporary) log.warn({ err: errorLogFields(err), during: what }, 'Cakemail temporarily unavailable');
    else log.info({ err: errorLogFields(err), during: what }, 'Cakemail refused');
    return reply;
  }
  log.error({ err: errorLogFields(err), during: what }, 'relay failed');
  return Replies.S451_INTERNAL;
}
