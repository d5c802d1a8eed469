/**
 * The relay backend: smtp-core's Backend, relaying each message to Cakemail. It wires the API
 * client, the authenticator, the sender and list lookups and the stores, and opens one
 * RelaySession (session.ts) per SMTP connection.
 *
 * The options arrive validated (apps/gateway/src/config.ts) and are trusted as they are.
 */
import type { Dispatcher } from 'undici';
import { QUEUE_DEFAULTS } from '@cakemail-smtp/queue';
import type { Backend } from '@cakemail-smtp/smtp-core';
import { CakemailAuthenticator } from '../auth.js';
import { CakemailClient, type UpstreamAttempt } from '../client.js';
import { ListResolver } from '../lists.js';
import { SenderDirectory } from '../senders.js';
import type { EmailType, Logger } from '../types.js';
import { MemoryAcceptedStore, type AcceptedStore } from './accepted-store.js';
import type { RelayContext } from './context.js';
import { MemoryInflightMarks, type InflightMarks } from './inflight.js';
import type { RelayObserver } from './observer.js';
import { queueHandlers, type QueueHandlers, type RelayQueue } from './queue.js';
import { RelaySession } from './session.js';

export interface RelayConfig {
  /** CAKEMAIL_API_URL, e.g. `https://api.cakemail.dev`. */
  readonly apiUrl: string;
  /** CAKEMAIL_TIMEOUT_MS: one HTTP attempt. */
  readonly timeoutMs: number;
  /** UPSTREAM_DEADLINE_MS: the whole relay of one message (or one login), retries included. */
  readonly deadlineMs: number;
  /** CAKEMAIL_EMAIL_TYPE: `content.type` when the message has no `x-email-api-type`. */
  readonly emailType: EmailType;
  /** CAKEMAIL_LIST_ID: the list when the message has no `x-list-id`; else the "SMTP Gateway" list. */
  readonly listId?: number | undefined;
  /** Parallel `POST /v2/emails` per message. Default `FAN_OUT_CONCURRENCY`. */
  readonly concurrency?: number;
  /** CAKEMAIL_CONNECTIONS: keep-alive connections of the client's Pool. */
  readonly connections: number;
  /** AUTH_CACHE_TTL_MS: how long a cached login vouches for a password. */
  readonly authCacheTtlMs: number;
  /** How long an account's confirmed senders are reused. Default 60 s. */
  readonly sendersTtlMs?: number;
  /** INFLIGHT_WAIT_MS: how long a retry waits for a recipient in flight. */
  readonly inflightWaitMs: number;
  /** BOUNCE_PARTIAL_FAILURES: bounce recipients refused for good when others were accepted. */
  readonly bounces: boolean;
  /** SMTP_HOSTNAME, the bounces' `Reporting-MTA`. */
  readonly hostname: string;
}

/**
 * With a queue: how long after Cakemail last checked a password, or listed an account's senders,
 * that answer still serves while Cakemail is unavailable (stale-if-unavailable, auth.ts and
 * senders.ts), so that an outage of minutes or hours is invisible to the client. A day: long
 * enough for any outage the queue is meant to bridge, short enough to bound the trade-off. A
 * password changed (or a sender removed) at Cakemail during the outage still works here until
 * Cakemail answers again; the queued message's tokens may then be refused, and its sender gets
 * a bounce. Whenever Cakemail answers, its answer wins.
 */
export const QUEUE_STALE_IF_UNAVAILABLE_MS = 24 * 60 * 60 * 1000;

/** Parallel sends per message when `RelayConfig.concurrency` is not given. */
export const FAN_OUT_CONCURRENCY = 8;

export interface RelayDeps {
  readonly logger: Logger;
  /** Defaults to a MemoryAcceptedStore. */
  readonly store?: AcceptedStore;
  /** Defaults to MemoryInflightMarks (RedisAcceptedStore's `inflight` shares them across replicas). */
  readonly inflight?: InflightMarks;
  /** Told about each bounce: sent, or failed (not sent). */
  readonly onBounce?: (result: 'sent' | 'failed') => void;
  /** Defaults to a CakemailClient on `config.apiUrl`. */
  readonly client?: CakemailClient;
  /** For the default client, e.g. in tests. */
  readonly dispatcher?: Dispatcher;
  /** For the default client: told of each HTTP attempt to Cakemail (metrics). */
  readonly onUpstreamAttempt?: (attempt: UpstreamAttempt) => void;
  readonly authenticator?: CakemailAuthenticator;
  readonly senders?: SenderDirectory;
  readonly lists?: ListResolver;
  /** Told after each DATA what was relayed and the reply (the development inbox). */
  readonly onRelayed?: RelayObserver;
  /**
   * The store-and-forward queue (QUEUE_MODE `fallback` or `always`), opened by the caller.
   * Absent (QUEUE_MODE=off): every message is relayed while the client waits.
   */
  readonly queue?: RelayQueue;
}

export interface RelayBackend extends Backend {
  /**
   * Waits for the bounces being sent, at most `waitMs` (the rest of a shutdown's time; no limit
   * by default), then closes the API client's connections (when the backend created the client):
   * a bounce still being sent then is abandoned, logged and counted as failed.
   */
  close(waitMs?: number): Promise<void>;
  /**
   * The queue workers' `deliver` and `bounce`, for `queue.startWorkers({ concurrency, ...handlers })`
   * in every replica. A queued recipient stays in the accepted store for QUEUE_MAX_AGE_MS (from
   * `deps.queue`; the queue's default without it) plus a day.
   */
  queueHandlers(): QueueHandlers;
}

export function createRelayBackend(config: RelayConfig, deps: RelayDeps): RelayBackend {
  const ownsClient = deps.client === undefined;
  const client =
    deps.client ??
    new CakemailClient({
      apiUrl: config.apiUrl,
      timeoutMs: config.timeoutMs,
      connections: config.connections,
      ...(deps.dispatcher === undefined ? {} : { dispatcher: deps.dispatcher }),
      ...(deps.onUpstreamAttempt === undefined ? {} : { onAttempt: deps.onUpstreamAttempt }),
    });
  // Stale-if-unavailable only with a queue: without one, the client's retry is the recovery.
  const staleIfUnavailableMs = deps.queue === undefined ? 0 : QUEUE_STALE_IF_UNAVAILABLE_MS;
  const ctx: RelayContext = {
    cfg: Object.freeze({
      deadlineMs: config.deadlineMs,
      emailType: config.emailType,
      listId: config.listId,
      concurrency: config.concurrency ?? FAN_OUT_CONCURRENCY,
      inflightWaitMs: config.inflightWaitMs,
      bounces: config.bounces,
      hostname: config.hostname,
    }),
    client,
    store: deps.store ?? new MemoryAcceptedStore(),
    inflight: deps.inflight ?? new MemoryInflightMarks(),
    onBounce: deps.onBounce ?? (() => {}),
    background: new Set(),
    auth:
      deps.authenticator ??
      new CakemailAuthenticator({
        client,
        deadlineMs: config.deadlineMs,
        cacheTtlMs: config.authCacheTtlMs,
        staleIfUnavailableMs,
        logger: deps.logger,
      }),
    senders:
      deps.senders ??
      new SenderDirectory({
        client,
        ...(config.sendersTtlMs === undefined ? {} : { ttlMs: config.sendersTtlMs }),
        staleIfUnavailableMs,
        logger: deps.logger,
      }),
    lists: deps.lists ?? new ListResolver({ client }),
    logger: deps.logger,
    ...(deps.onRelayed === undefined ? {} : { onRelayed: deps.onRelayed }),
    ...(deps.queue === undefined ? {} : { queue: deps.queue }),
  };
  return {
    newSession: (conn) => new RelaySession(ctx, conn),
    queueHandlers: () => queueHandlers(ctx, deps.queue?.maxAgeMs ?? QUEUE_DEFAULTS.maxAgeMs),
    close: async (waitMs = Number.POSITIVE_INFINITY) => {
      const settled = Promise.allSettled([...ctx.background]).then(() => true);
      let timer: NodeJS.Timeout | undefined;
      const done = Number.isFinite(waitMs)
        ? await Promise.race([settled, new Promise<false>((resolve) => (timer = setTimeout(resolve, Math.max(0, waitMs), false)))])
        : await settled;
      clearTimeout(timer);
      if (!done) deps.logger.warn({ bounces: ctx.background.size }, 'shutdown: bounces still being sent are abandoned');
      if (ownsClient) await (done ? client.close() : client.destroy());
      if (!done) await Promise.allSettled([...ctx.background]); // each abandoned bounce fails (logged, counted) at once
    },
  };
}
