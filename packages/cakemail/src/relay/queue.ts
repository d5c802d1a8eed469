/**
 * The relay's side of the store-and-forward queue (@cakemail-smtp/queue, QUEUE_MODE): what a
 * queued message holds, storing one from an SMTP session, and the workers' `deliver` and
 * `bounce`.
 *
 * A queued message holds the prepared `POST /v2/emails` request (the mapping's refusals have
 * been answered already), the accepted store's identity of the message, what a bounce needs,
 * and the login's tokens, never the password. The queue seals body and session (AES-256-GCM).
 *
 * `deliver` sends to each pending recipient, one at a time, with the fan-out's per-recipient
 * send (the SMTP session's), the accepted store and the in-flight marks: a recipient the store
 * knows is accepted without a POST, so a retried attempt (or one replayed after a crash) never
 * sends again what Cakemail accepted. Only a POST in flight at a crash can go out twice.
 */
import { createHash } from 'node:crypto';
import { Replies, isSmtpError, type SmtpError } from '@cakemail-smtp/smtp-core';
import {
  QueueUnavailableError,
  type BounceFailure,
  type BounceFn,
  type DeliverFn,
  type DeliverResult,
  type MessageQueue,
  type QueuedJob,
  type RecipientOutcome as QueueOutcome,
} from '@cakemail-smtp/queue';
import { trimOldest } from '../age-ordered.js';
import type { AuthSession, SessionTokens } from '../auth.js';
import type { CallOptions, SenderInfo } from '../client.js';
import { CakemailError, errorLogFields } from '../errors.js';
import type { OriginalHeaders } from '../message/parsed.js';
import { StoredRequest } from '../message/request-body.js';
import { CakemailReplies } from '../replies.js';
import type { Logger } from '../types.js';
import { ACCEPTED_TTL_MS, acceptedKey } from './accepted-store.js';
import { sendBounce, type RefusedRecipient } from './bounce.js';
import type { RelayContext } from './context.js';
import { sendOne, type Failed, type Outcome, type SendJob } from './fan-out.js';
import { withToken } from './upstream.js';

/** QUEUE_MODE. `off`: no queue (RelayDeps.queue absent). */
export type QueueMode = 'off' | 'fallback' | 'always';

/** The queue as the relay uses it; the gateway opens it (openQueue) and starts its workers. */
export interface RelayQueue {
  readonly mode: 'fallback' | 'always';
  readonly queue: MessageQueue<QueuedBody, QueuedSession>;
  /** QUEUE_MAX_AGE_MS: the accepted store keeps a queued message's recipients at least this long. */
  readonly maxAgeMs: number;
}

/** The Cakemail session of a queued message: the login's tokens, never its password. */
export type QueuedSession = SessionTokens;

/** A queued message's body (JSON, sealed at rest by the queue). */
export interface QueuedBody {
  readonly v: 1;
  readonly accountId: number;
  /** The SMTP AUTH username: its live login in this replica can still bounce when the message's own session expired. */
  readonly login: string;
  /** The `POST /v2/emails` request without `email` (PreparedEmail.stored). */
  readonly request: string;
  /** The message fingerprint: the accepted store's key with the account and the recipient. */
  readonly fingerprint: string;
  /** The message has a Message-ID or a Date (see queuedKey). */
  readonly identified: boolean;
  /** The account's confirmed sender the message is sent from (a bounce is from it). */
  readonly sender: { readonly id: string; readonly email: string };
  readonly listId: number;
  /** What a bounce reports of the original. */
  readonly original: { readonly subject: string; readonly messageId?: string; readonly date?: string };
  /** The message must never cause a bounce: the null sender, `Auto-Submitted`, or a gateway bounce. */
  readonly noBounce: boolean;
  /** When the gateway received it (epoch ms). */
  readonly arrival: number;
}

/** What the SMTP session hands over to queue a message. */
export interface QueueRequest {
  readonly body: QueuedBody;
  readonly auth: AuthSession;
  readonly envelopeFrom: string;
  readonly recipients: readonly string[];
  /** A gateway bounce, or the null sender: its own failures are dropped (the queue's isBounce). */
  readonly isBounce: boolean;
  readonly lastError?: string;
}

export type QueueAnswer = { readonly ok: true; readonly id: string } | { readonly ok: false; readonly reply: SmtpError };

/**
 * Stores the message; resolves once Redis has it. Not stored: the reply for the client when the
 * queue is the only way (`452 4.3.1` full, `451 4.3.0` unavailable), logged.
 */
export async function enqueueMessage(rq: RelayQueue, log: Logger, request: QueueRequest): Promise<QueueAnswer> {
  const { body } = request;
  try {
    const result = await rq.queue.enqueue({
      account: String(body.accountId),
      sender: request.envelopeFrom,
      recipients: request.recipients,
      body,
      session: request.auth.tokens,
      isBounce: request.isBounce,
      ...(request.lastError === undefined ? {} : { lastError: request.lastError }),
    });
    if (result.status === 'queued') return { ok: true, id: result.id };
    log.warn({ event: 'queue_full', size: result.size, bytes: result.bytes, maxBytes: result.maxBytes }, 'queue full, message not queued');
    return { ok: false, reply: CakemailReplies.S452_QUEUE_FULL };
  } catch (err) {
    if (err instanceof QueueUnavailableError) log.warn({ err: errorLogFields(err) }, 'queue unavailable, message not queued');
    else log.error({ err: errorLogFields(err) }, 'queueing failed');
    return { ok: false, reply: CakemailReplies.S451_QUEUE_UNAVAILABLE };
  }
}

/**
 * The accepted store's key of a queued recipient. An identified message (Message-ID or Date)
 * keeps the SMTP path's key, so what its synchronous attempt or a client's retry accepted counts
 * too. A message without either is keyed by its queue id as well: identical bytes may be a new
 * message (two identical cron mails), so only the attempts of this one job may share its
 * entries, across every retry and a replay after a crash.
 */
export function queuedKey(body: Pick<QueuedBody, 'accountId' | 'fingerprint' | 'identified'>, queueId: string, rcpt: string): string {
  return acceptedKey(body.accountId, body.identified ? body.fingerprint : `${body.fingerprint}\0queue:${queueId}`, rcpt);
}

/** The reason of every recipient of a message whose session expired past refresh. */
export const SESSION_EXPIRED_REASON =
  'http; 401 the Cakemail session of this queued message expired and could not be refreshed; send the message again';

export interface QueueHandlers {
  readonly deliver: DeliverFn<QueuedBody, QueuedSession>;
  readonly bounce: BounceFn<QueuedBody, QueuedSession>;
}

/** `deliver` and `bounce` for `queue.startWorkers`; `maxAgeMs` is QUEUE_MAX_AGE_MS. */
export function queueHandlers(ctx: RelayContext, maxAgeMs: number): QueueHandlers {
  // The store must know a queued recipient for as long as its job may be retried: the
  // message's whole life, plus a day (the SMTP path's TTL) for the attempt at its end.
  const acceptedTtlMs = Math.max(ACCEPTED_TTL_MS, maxAgeMs + ACCEPTED_TTL_MS);
  const sessions = new RestoredLogins(ctx);

  const deliver: DeliverFn<QueuedBody, QueuedSession> = async (job, signal) => {
    const { body } = job;
    const log = ctx.logger.child({ queueId: job.id });
    const auth = sessions.get(job.session, body.accountId);
    const started = Date.now();
    const prepared = new StoredRequest(body.request);
    // One recipient at a time, so a job has at most one POST in flight: a kill -9 duplicates at
    // most QUEUE_CONCURRENCY sends per replica. Each send has the budget of one message
    // (UPSTREAM_DEADLINE_MS, which the in-flight marks outlive). After a temporary failure
    // (Cakemail unavailable, rate-limited, the token outage) the rest is not tried: it would
    // most likely fail the same way, and the next attempt takes it up.
    const outcomes: Outcome[] = [];
    let stop: Failed | undefined;
    for (const rcpt of job.recipients) {
      if (stop !== undefined) {
        outcomes.push({ ...stop, rcpt, detail: `not tried after: ${stop.detail ?? stop.error.message}` });
        continue;
      }
      const opts: CallOptions = { deadline: Date.now() + ctx.cfg.deadlineMs, signal };
      const send: SendJob = {
        auth,
        accountId: body.accountId,
        prepared,
        opts,
        waitUntil: Math.min(Date.now() + ctx.cfg.inflightWaitMs, opts.deadline),
        keyOf: (address) => queuedKey(body, job.id, address),
        track: true,
        acceptedTtlMs,
      };
      const o = await sendOne(ctx, log, send, rcpt);
      outcomes.push(o);
      if (!o.ok && o.error.temporary) stop = o;
    }
    const map = new Map<string, QueueOutcome>();
    for (const o of outcomes) map.set(o.rcpt, queueOutcome(o, auth.expired));
    const counts = { accepted: 0, temporary: 0, permanent: 0 };
    for (const o of map.values()) counts[o.kind] += 1;
    log.info(
      {
        event: 'queue_delivery',
        accountId: body.accountId,
        attempt: job.attempt,
        resumed: job.resumed,
        recipients: job.recipients.length,
        ...counts,
        alreadyAccepted: outcomes.filter((o) => o.ok && o.reused).length,
        sessionExpired: auth.expired,
        durationMs: Date.now() - started,
      },
      counts.temporary > 0 ? 'queued delivery incomplete, will retry' : 'queued delivery done',
    );
    const now = auth.tokens;
    const refreshed = now.accessToken !== job.session.accessToken || now.refreshToken !== job.session.refreshToken;
    const result: DeliverResult<QueuedSession> = { outcomes: map, ...(refreshed ? { session: now } : {}) };
    return result;
  };

  const bounce: BounceFn<QueuedBody, QueuedSession> = async (job, failures) => {
    const { body } = job;
    const log = ctx.logger.child({ queueId: job.id });
    if (job.isBounce || body.noBounce) {
      log.info({ event: 'bounce_suppressed', recipients: failures.length }, 'queued message not delivered; it never causes a bounce');
      return;
    }
    const own = sessions.get(job.session, body.accountId);
    let failure: unknown;
    for (const auth of [own, undefined]) {
      // The message's own session first; when it expired past refresh, a live login of the same user.
      const login = auth ?? (own.expired ? ctx.auth.liveLogin(body.login, body.accountId) : undefined);
      if (login === undefined) break;
      try {
        const id = await sendQueuedBounce(ctx, login, job, failures);
        ctx.onBounce('sent');
        log.info({ event: 'bounce_sent', accountId: body.accountId, id, refused: failures.length }, 'delivery status notification sent');
        return;
      } catch (err) {
        failure = err;
      }
    }
    ctx.onBounce('failed');
    const fields = isSmtpError(failure) ? { reply: failure.line } : errorLogFields(failure);
    // Worth another try: Cakemail unavailable, or the session expired while the message may still
    // find a live login of its user (until QUEUE_MAX_AGE_MS). Refused for good: dropped, logged.
    const retry = own.expired ? Date.now() - job.queuedAt < maxAgeMs : temporary(failure);
    log.warn({ event: 'bounce_failed', accountId: body.accountId, err: fields, retry }, 'delivery status notification not sent');
    if (retry) throw new Error(own.expired ? 'the session expired; waiting for a login of its user' : shortReason(failure));
  };

  return { deliver, bounce };
}

/** Restored logins kept at most, per replica (the oldest go first). */
const MAX_RESTORED_LOGINS = 10_000;

/**
 * The logins of queued messages in this replica, by refresh token: the jobs queued from one
 * login share one session, so its access token is refreshed once for all of them (not once per
 * job), and a job stored with older tokens gets the refreshed ones (deliver returns them).
 * Keyed by a hash: the map holds no token as a key. A login refused for good is restored anew.
 */
class RestoredLogins {
  readonly #ctx: RelayContext;
  readonly #logins = new Map<string, AuthSession>();

  constructor(ctx: RelayContext) {
    this.#ctx = ctx;
  }

  get(tokens: QueuedSession, accountId: number): AuthSession {
    const key = createHash('sha256').update(tokens.refreshToken).digest('base64url');
    const found = this.#logins.get(key);
    if (found !== undefined && !found.expired) return found;
    const login = this.#ctx.auth.restore(tokens, [accountId]);
    this.#logins.delete(key);
    this.#logins.set(key, login);
    trimOldest(this.#logins, MAX_RESTORED_LOGINS);
    return login;
  }
}

/** One recipient's fan-out outcome as the queue counts it. */
function queueOutcome(o: Outcome, sessionExpired: boolean): QueueOutcome {
  if (o.ok) return { kind: 'accepted', id: o.id };
  if (sessionExpired) return { kind: 'permanent', status: '5.7.0', reason: SESSION_EXPIRED_REASON };
  if (o.error.temporary) {
    return { kind: 'temporary', reason: o.detail ?? o.error.message, ...(o.retryAfterMs === undefined ? {} : { retryAfterMs: o.retryAfterMs }) };
  }
  const reason = o.upstream === undefined ? `smtp; ${o.error.code} ${o.error.message}` : `http; ${o.upstream.status} ${o.upstream.message}`;
  return { kind: 'permanent', status: o.error.enhancedCode, reason };
}

/** Sends the RFC 3464 notification of a queued message; answers Cakemail's id. Throws as the send does. */
async function sendQueuedBounce(ctx: RelayContext, auth: AuthSession, job: QueuedJob<QueuedBody, QueuedSession>, failures: readonly BounceFailure[]): Promise<string> {
  const { body } = job;
  const { accountId } = body;
  const opts: CallOptions = { deadline: Date.now() + ctx.cfg.deadlineMs };
  // From and to the account's sender that MAIL FROM matched (x-sender-id may have named another).
  const from: Pick<SenderInfo, 'id' | 'email'> =
    body.sender.email.trim().toLowerCase() === job.sender.trim().toLowerCase()
      ? body.sender
      : await withToken(auth, opts, (token) => ctx.senders.checkSender(token, accountId, job.sender, opts));
  const original: { subject: string } & OriginalHeaders = { ...body.original };
  const result = await sendBounce((request) => withToken(auth, opts, (token) => ctx.client.sendEmail(token, accountId, request, opts)), {
    reportingMta: ctx.cfg.hostname,
    sender: from,
    listId: body.listId,
    refused: failures.map(refusedRecipient),
    original,
    arrivalDate: new Date(body.arrival),
    explanation: explanation(failures),
  });
  if (result.status !== 'queued') throw new CakemailError('permanent', `bounce answered status ${result.status}`, { status: 201, reason: 'http' });
  return result.id;
}

/** A queue failure as the bounce reports it: `http; <status> <text>` reasons carry Cakemail's status. */
function refusedRecipient(f: BounceFailure): RefusedRecipient {
  const http = /^http; (\d{3}) (.*)$/s.exec(f.reason);
  if (http?.[1] !== undefined && http[2] !== undefined) {
    return { address: f.recipient, status: f.status, httpStatus: Number(http[1]), reason: http[2] };
  }
  return { address: f.recipient, status: f.status, reason: f.reason.replace(/^smtp; /, '') };
}

function explanation(failures: readonly BounceFailure[]): string[] {
  const lines = ['Your message was accepted and queued, but it could not be delivered to the recipients below.'];
  const causes = new Set(failures.map((f) => f.cause));
  if (causes.has('permanent')) lines.push('Cakemail refused some of them for good.');
  if (causes.has('expired')) lines.push('Cakemail could not be reached for some of them for as long as the gateway keeps a message.');
  if (causes.has('operator')) lines.push('The postmaster returned it to you.');
  return lines;
}

function temporary(err: unknown): boolean {
  if (err instanceof CakemailError) return err.kind !== 'permanent';
  if (isSmtpError(err)) return err.temporary;
  return true;
}

function shortReason(err: unknown): string {
  if (err instanceof CakemailError) return err.message;
  if (isSmtpError(err)) return err.line;
  return Replies.S451_INTERNAL.message;
}
