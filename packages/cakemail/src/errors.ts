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

import { stripControl } from './message/headers.js';

export type CakemailErrorKind = 'permanent' | 'temporary' | 'auth';

/** Why the call failed, finer than `kind`. */
export type CakemailErrorReason =
  | 'http' // the API answered with an error status
  | 'timeout' // one attempt took longer than `timeoutMs`
  | 'network' // connection refused/reset, DNS, TLS…
  | 'deadline' // the per-message deadline left no room for (another) attempt
  | 'invalid_response' // a 2xx whose body is not what the spec says
  | 'mfa' // POST /token answered with an MFA challenge
  | 'aborted'; // the caller's signal stopped the call (a queue worker shutting down)

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

/** An error as a log field without anything secret: class, kind, status, message. */
export function errorLogFields(err: unknown): Record<string, unknown> {
  if (err instanceof CakemailError) {
    return { type: err.name, kind: err.kind, reason: err.reason, status: err.status, message: err.message };
  }
  if (err instanceof Error) return { type: err.name, message: err.message };
  return { type: typeof err };
}

/** Connection errors that happen before a request reaches Cakemail. */
const NOT_SENT_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'UND_ERR_CONNECT_TIMEOUT']);

/** Cakemail refused the request without processing it (rate limit, unavailable), or never got it. */
export function certainlyNotProcessed(err: CakemailError): boolean {
  if (err.status === 429 || err.status === 503) return true;
  const code = (err.cause as { code?: unknown } | undefined)?.code;
  return err.reason === 'network' && typeof code === 'string' && NOT_SENT_CODES.has(code);
}

/** An HTTP error answer → its CakemailError (`tokenCall`: 401 and 403 mean bad credentials). */
export function httpError(name: string, status: number, json: unknown, retryAfter: string | string[] | undefined, tokenCall: boolean): CakemailError {
  const apiMessage = extractApiMessage(json);
  const message = `Cakemail ${name} answered ${status}${apiMessage ? `: ${apiMessage}` : ''}`;
  if (status === 401 || (tokenCall && status === 403)) return new CakemailError('auth', message, { status, apiMessage, reason: 'http' });
  if (status === 429) {
    const ms = parseRetryAfter(Array.isArray(retryAfter) ? retryAfter[0] : retryAfter);
    return new CakemailError('temporary', message, { status, apiMessage, reason: 'http', ...(ms === undefined ? {} : { retryAfterMs: ms }) });
  }
  if (status >= 500 || status === 408) return new CakemailError('temporary', message, { status, apiMessage, reason: 'http' });
  return new CakemailError('permanent', message, { status, apiMessage, reason: 'http' });
}

/** Retry-After as delta-seconds or an HTTP date, in ms from now; undefined when absent or bad. */
export function parseRetryAfter(value: string | undefined, now = Date.now()): number | undefined {
  if (value === undefined) return undefined;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  const at = Date.parse(v);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - now);
}

/** The per-message deadline left no room for (another) attempt. */
export function deadlineError(name: string, last: CakemailError | undefined): CakemailError {
  return new CakemailError('temporary', `Cakemail ${name}: deadline reached${last ? ` (last: ${last.message})` : ''}`, {
    reason: 'deadline',
    ...(last?.status === undefined ? {} : { status: last.status }),
    ...(last?.retryAfterMs === undefined ? {} : { retryAfterMs: last.retryAfterMs }),
    apiMessage: last?.apiMessage ?? '',
  });
}
