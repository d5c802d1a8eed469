/**
 * Upstream outcome → SMTP reply, in one place: what a failed login, a CakemailError from any
 * call, or a send answered with another status than `queued` becomes for the client. Callers
 * log; this module only decides. The texts are in replies.ts.
 */
import { Replies, type SmtpError } from '@cakemail-smtp/smtp-core';
import { CakemailError, isMfaChallenge } from './errors.js';
import { CakemailReplies, Refusals } from './replies.js';

/** Why a login failed: `mfa` and `invalid` are the user's (remembered a while), `unavailable` is Cakemail's. */
export type LoginFailure =
  | { readonly ok: false; readonly reason: 'mfa' | 'invalid'; readonly reply: SmtpError }
  | { readonly ok: false; readonly reason: 'unavailable'; readonly reply: SmtpError };

/** A failed `POST /token` (password grant) → the AUTH reply. */
export function loginFailure(err: unknown): LoginFailure {
  if (isMfaChallenge(err)) return { ok: false, reason: 'mfa', reply: CakemailReplies.S535_AUTH_MFA };
  if (err instanceof CakemailError && (err.kind === 'auth' || err.kind === 'permanent')) {
    return { ok: false, reason: 'invalid', reply: Replies.S535_AUTH_INVALID };
  }
  return { ok: false, reason: 'unavailable', reply: Replies.S454_AUTH_UNAVAILABLE };
}

/** A failed API call during the relay (sender check, list lookup, send) → its reply. */
export function upstreamReply(err: CakemailError): SmtpError {
  if (err.kind === 'temporary' || err.kind === 'auth') {
    return err.status === 429 ? CakemailReplies.S451_UPSTREAM_RATE_LIMITED : CakemailReplies.S451_UPSTREAM_UNAVAILABLE;
  }
  if (err.status === 403) return err.apiMessage ? Refusals.upstreamForbidden(err.apiMessage) : CakemailReplies.S550_UPSTREAM_FORBIDDEN;
  return err.apiMessage ? Refusals.upstreamRejected(err.apiMessage) : CakemailReplies.S550_UPSTREAM_REJECTED;
}

/** A send answered 201 with a status other than `queued` → its reply. */
export function sendStatusReply(status: string): SmtpError {
  return Refusals.upstreamStatus(status);
}

/** Of a message's temporary failures, the reply the client gets: a rate limit first. */
export function temporaryReply(errors: readonly SmtpError[]): SmtpError {
  return errors.find((e) => e === CakemailReplies.S451_UPSTREAM_RATE_LIMITED) ?? errors[0] ?? CakemailReplies.S451_UPSTREAM_UNAVAILABLE;
}

/** What Cakemail answered for a refusal, for a bounce's Diagnostic-Code; undefined for a temporary one. */
export function upstreamDiagnostic(err: unknown, reply: SmtpError): { readonly status: number; readonly message: string } | undefined {
  return err instanceof CakemailError && err.status !== undefined && !reply.temporary
    ? { status: err.status, message: err.apiMessage || reply.message }
    : undefined;
}
