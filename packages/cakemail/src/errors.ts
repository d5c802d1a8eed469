/**
 * Typed errors of the Cakemail API client.
 *
 * `kind` is what callers branch on:
 * - `auth`: the API refused the credentials or the token (401/403 on /token, 401 elsewhere);
 * - `temporary`: 5xx, 429, timeouts, connection resets, the per-message deadline, an
 *   unreadable answer: worth retrying later;
 * - `permanent`: 400/403/404/422 and other 4xx: retrying the same request will not help.
 *
 * Messages never contain tokens, passwords or request bodies: only the HTTP status, the call's
 * name and the API's own `msg` texts.
 */

import { stripControl } from './headers.js';

export type CakemailErrorKind = 'permanent' | 'temporary' | 'auth';

/** Why the call failed, finer than `kind`. */
export type CakemailErrorReason =
  | 'http' // the API answered with an error status
  | 'timeout' // one attempt took longer than `timeoutMs`
  | 'network' // connection refused/reset, DNS, TLS…
  | 'deadline' // the per-message deadline left no room for (another) attempt
  | 'invalid_response' // a 2xx whose body is not what the spec says
  | 'mfa'; // POST /token answered with an MFA challenge

export interface CakemailErrorOptions {
  readonly status?: number;
  readonly apiMessage?: string;
  readonly retryAfterMs?: number;
  readonly reason: CakemailErrorReason;
  readonly cause?: unknown;
}

export class CakemailError extends Error {
  override readonly name: string = 'CakemailError';
  /** HTTP status when the API answered, else undefined. */
  readonly status: number | undefined;
  /** The API's `msg` texts from its `detail` list, joined with `; ` (may be empty). */
  readonly apiMessage: string;
  /** From a 429's Retry-After, in milliseconds. */
  readonly retryAfterMs: number | undefined;
  readonly reason: CakemailErrorReason;

  constructor(
    readonly kind: CakemailErrorKind,
    message: string,
    options: CakemailErrorOptions,
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.status = options.status;
    this.apiMessage = options.apiMessage ?? '';
    this.retryAfterMs = options.retryAfterMs;
    this.reason = options.reason;
  }

  get temporary(): boolean {
    return this.kind === 'temporary';
  }
}

/**
 * POST /token answered 200 with `{challenge}`: the account uses multi-factor authentication,
 * which SMTP AUTH cannot complete. A `kind: 'auth'` error of its own class.
 */
export class CakemailMfaError extends CakemailError {
  override readonly name = 'CakemailMfaError';

  constructor() {
    super('auth', 'POST /token answered with an MFA challenge', { reason: 'mfa' });
  }
}

export function isCakemailError(err: unknown): err is CakemailError {
  return err instanceof CakemailError;
}

export function isMfaChallenge(err: unknown): err is CakemailMfaError {
  return err instanceof CakemailMfaError;
}

/**
 * The `msg` texts of an error body `{detail: [{msg}]}` (or `{detail: "text"}`), joined, without
 * control characters, at most 300 characters.
 */
export function extractApiMessage(body: unknown): string {
  if (body === null || typeof body !== 'object') return '';
  const detail = (body as { detail?: unknown }).detail;
  let texts: string[] = [];
  if (typeof detail === 'string') texts = [detail];
  else if (Array.isArray(detail)) {
    for (const item of detail) {
      if (item !== null && typeof item === 'object' && typeof (item as { msg?: unknown }).msg === 'string') {
        texts.push((item as { msg: string }).msg);
      } else if (typeof item === 'string') texts.push(item);
    }
  }
  const joined = stripControl(texts.join('; '));
  return joined.length > 300 ? `${joined.slice(0, 297)}...` : joined;
}
