/**
 * The fan-out: one `POST /v2/emails` per envelope recipient, with bounded concurrency. Every
 * accepted recipient is remembered in the accepted store, so that a retried message skips it
 * and still reports its id. A recipient is marked in flight while its send waits on Cakemail,
 * so a retry that arrives meanwhile waits for the outcome instead of sending a second copy.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { SmtpError } from '@cakemail-smtp/smtp-core';
import type { AuthSession } from '../auth.js';
import type { CallOptions } from '../client.js';
import { CakemailError, errorLogFields } from '../errors.js';
import type { RequestBodies } from '../message/request-body.js';
import { sendStatusReply, upstreamDiagnostic } from '../outcomes.js';
import { CakemailReplies } from '../replies.js';
import type { Logger } from '../types.js';
import { ACCEPTED_TTL_MS, type MarkingStore } from './accepted-store.js';
import type { RelayContext } from './context.js';
import { INFLIGHT_MARGIN_MS } from './inflight.js';
import { failureReply, withToken } from './upstream.js';

/** How often a retry looks again at a recipient in flight elsewhere. */
const INFLIGHT_POLL_MS = 200;

export type Outcome = Accepted | Failed;
export interface Accepted {
  readonly rcpt: string;
  readonly ok: true;
  readonly id: string;
  readonly reused: boolean;
  readonly key: string;
}
export interface Failed {
  readonly rcpt: string;
  readonly ok: false;
  readonly error: SmtpError;
  /** What Cakemail answered, for a bounce's Diagnostic-Code. */
  readonly upstream?: { readonly status: number; readonly message: string };
  /** The API client's error text (no secrets), for a queued message's last error. */
  readonly detail?: string;
  /** Cakemail's Retry-After, in ms. */
  readonly retryAfterMs?: number;
}

/** What a send to one recipient needs, the same for every recipient of the message. */
export interface SendJob {
  readonly auth: AuthSession;
  readonly accountId: number;
  readonly prepared: RequestBodies;
  readonly opts: CallOptions;
  /** A recipient in flight elsewhere is waited for until then (epoch ms). */
  readonly waitUntil: number;
  /** The accepted store's key of one recipient of this message. */
  readonly keyOf: (rcpt: string) => string;
  /**
   * Mark each recipient in flight and remember each acceptance at once (`acceptedTtlMs`): a
   * message whose identical copy is a retry. Otherwise (a message without Message-ID and Date)
   * the store is only read, see rememberUnidentified.
   */
  readonly track: boolean;
  readonly acceptedTtlMs: number;
}

/** Sends `job` to every recipient, at most `ctx.cfg.concurrency` at once; outcomes in recipient order. */
export function sendAll(ctx: RelayContext, log: Logger, job: SendJob, recipients: readonly string[]): Promise<Outcome[]> {
  // The common case, one recipient, without mapLimit's suspended function per message in flight.
  if (recipients.length === 1) return sendOne(ctx, log, job, recipients[0] as string).then(asList);
  return mapLimit(recipients, ctx.cfg.concurrency, (rcpt) => sendOne(ctx, log, job, rcpt));
}

function asList(outcome: Outcome): Outcome[] {
  return [outcome];
}

/**
 * A message without Message-ID and Date: identical bytes may be a new message
 * (a cron job, a printer), so its recipients are remembered only while the
 * client owes a retry (a 4xx), and forgotten once the retry is answered.
 */
export async function rememberUnidentified(
  ctx: RelayContext,
  log: Logger,
  accepted: readonly Accepted[],
  retryExpected: boolean,
): Promise<void> {
  try {
    await Promise.all(
      accepted.map((o) =>
        retryExpected ? (o.reused ? undefined : ctx.store.put(o.key, o.id, ACCEPTED_TTL_MS)) : o.reused ? ctx.store.delete(o.key) : undefined,
      ),
    );
  } catch (err) {
    log.warn({ err: errorLogFields(err) }, 'accepted store unavailable, a retry may send some recipients again');
  }
}

/** The accepted store's id for `key`; a store error counts as not known. */
export async function knownId(ctx: RelayContext, log: Logger, key: string, then: string): Promise<string | undefined> {
  try {
    return await ctx.store.get(key);
  } catch (err) {
    log.warn({ err: errorLogFields(err) }, `accepted store unavailable, ${then}`);
    return undefined;
  }
}

/** One recipient: the accepted store, the in-flight mark, then `POST /v2/emails`. Never rejects. */
export async function sendOne(ctx: RelayContext, log: Logger, job: SendJob, rcpt: string): Promise<Outcome> {
  const { auth, accountId, prepared, opts } = job;
  const key = job.keyOf(rcpt);
  if (opts.signal?.aborted === true) {
    return { rcpt, ok: false, error: CakemailReplies.S451_UPSTREAM_UNAVAILABLE, detail: 'not sent: the worker is shutting down' };
  }
  // Only a tracked message can be a retry of one in flight (see SendJob.track).
  let mark: string | undefined;
  const store = job.track ? markingStore(ctx) : undefined;
  if (job.track) {
    const turn = await takeTurn(ctx, log, key, job.waitUntil, store);
    if (turn.kind === 'accepted') return { rcpt, ok: true, id: turn.id, reused: true, key };
    if (turn.kind === 'busy') return { rcpt, ok: false, error: CakemailReplies.S451_DELIVERY_IN_PROGRESS };
    mark = turn.token;
  } else {
    const known = await knownId(ctx, log, key, 'sending anyway');
    if (known !== undefined) return { rcpt, ok: true, id: known, reused: true, key };
  }
  try {
    const result = await withToken(auth, opts, (token) => ctx.client.sendEmail(token, accountId, prepared.forRecipient(rcpt), opts));
    if (result.status !== 'queued') {
      return { rcpt, ok: false, error: sendStatusReply(result.status), upstream: { status: 201, message: `status ${result.status}` } };
    }
    // Remembered at once (before the mark is cleared), so a retry after a 250 lost on the way,
    // or one waiting on the mark, sends nothing twice.
    if (job.track) {
      try {
        if (store !== undefined && mark !== undefined) {
          await store.settle(key, mark, result.id, job.acceptedTtlMs); // the id written and the mark released at once
          mark = undefined;
        } else {
          await ctx.store.put(key, result.id, job.acceptedTtlMs);
        }
      } catch (err) {
        log.warn({ err: errorLogFields(err) }, 'accepted store unavailable, a retry may send this recipient again');
      }
    }
    return { rcpt, ok: true, id: result.id, reused: false, key };
  } catch (err) {
    const error = failureReply(log, err, 'send');
    const upstream = upstreamDiagnostic(err, error);
    return {
      rcpt,
      ok: false,
      error,
      ...(upstream === undefined ? {} : { upstream }),
      ...(err instanceof CakemailError ? { detail: err.message } : {}),
      ...(err instanceof CakemailError && err.retryAfterMs !== undefined ? { retryAfterMs: err.retryAfterMs } : {}),
    };
  } finally {
    if (mark !== undefined) await ctx.inflight.release(key, mark);
  }
}

/**
 * Marks the recipient in flight and answers its id instead when it was accepted already. When
 * another attempt holds the mark, waits until that one is accepted (its id is answered), its
 * mark is gone (this attempt takes it and sends), or `waitUntil` (busy: the client gets 451
 * and retries later). The store is read after the claim, so an attempt accepted and cleared
 * just before it is still seen; a MarkingStore does both in one atomic script.
 */
async function takeTurn(
  ctx: RelayContext,
  log: Logger,
  key: string,
  waitUntil: number,
  /** The accepted store when it keeps the marks too (markingStore). */
  store: MarkingStore | undefined,
): Promise<{ readonly kind: 'mine'; readonly token: string } | { readonly kind: 'accepted'; readonly id: string } | { readonly kind: 'busy' }> {
  const ttlMs = ctx.cfg.deadlineMs + INFLIGHT_MARGIN_MS;
  let waited = false;
  for (;;) {
    if (store !== undefined) {
      // The claim and the read in one round trip.
      const turn = await store.turn(key, ttlMs);
      if (turn.kind !== 'held') return turn;
    } else {
      const token = await ctx.inflight.claim(key, ttlMs);
      if (token !== undefined) {
        const known = await knownId(ctx, log, key, 'sending anyway');
        if (known === undefined) return { kind: 'mine', token };
        await ctx.inflight.release(key, token);
        return { kind: 'accepted', id: known };
      }
    }
    if (!waited) log.info({ event: 'inflight_wait' }, 'a delivery of this message is in flight, waiting for its outcome');
    waited = true;
    const left = waitUntil - Date.now();
    if (left <= 0) return { kind: 'busy' };
    await sleep(Math.min(INFLIGHT_POLL_MS, left));
    const known = await knownId(ctx, log, key, 'waiting on');
    if (known !== undefined) return { kind: 'accepted', id: known };
  }
}

/** The accepted store when it keeps the in-flight marks the relay uses too (RedisAcceptedStore), else undefined. */
function markingStore(ctx: RelayContext): MarkingStore | undefined {
  const store = ctx.store as Partial<MarkingStore>;
  return typeof store.turn === 'function' && typeof store.settle === 'function' && store.inflight === ctx.inflight ? (ctx.store as MarkingStore) : undefined;
}

/** `fn` over `items` with at most `limit` running at once; results in input order. */
async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}
