/**
 * The queue: `openQueue()` connects to Redis and returns the producer
 * (`enqueue`), the workers (`startWorkers`) and the operator functions
 * (`list`, `retry`, `remove`, `bounce`, `stats`). BullMQ does the queueing;
 * this file adds encryption, byte accounting and the operators' view.
 */
import { Queue, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import { Registry } from 'prom-client';
import { parseKeyRing, pooledRandomBytes, sealedKeyId, type KeyRing } from './crypto.js';
import { sealSecret } from './secret.js';
import { BACKOFF_TYPE, MAX_ATTEMPTS, shortError, QUEUE_ID, type JobData } from './job-data.js';
import { queueKeys, release, reserve, type QueueKeys } from './keys.js';
import { queueMetrics, type QueueMetrics } from './metrics.js';
import { checkRedis, type RedisCheck } from './redis-check.js';
import { startWorkers, type WorkerOptions, type Workers } from './workers.js';
import type { EnqueueResult, QueueEntry, QueueMessage, QueueStats } from './types.js';

/** The part of a pino logger the queue uses. */
export interface QueueLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

/** Redis memory a queued message takes beyond its JSON, measured with redis-server 7 (README "Sizing"). */
export const PER_MESSAGE_OVERHEAD_BYTES = 2048;

const silent: QueueLogger = { info() {}, warn() {}, error() {} };

export interface QueueOptions {
  readonly redisUrl: string;
  /**
   * The key ring, or the `QUEUE_ENCRYPTION_KEY` text to parse. Without it the
   * queue serves the operator functions only (list, retry, remove, bounce,
   * stats): enqueue and startWorkers need the key.
   */
  readonly keys?: KeyRing | string;
  /** Cap on the bytes queued messages hold (`QUEUE_MAX_BYTES`); 0 means no cap. */
  readonly maxBytes: number;
  /** `QUEUE_RETRY_BASE_MS`, default 30 s. */
  readonly retryBaseMs?: number;
  /** `QUEUE_RETRY_MAX_MS`, default 1 h. */
  readonly retryMaxMs?: number;
  /** `QUEUE_MAX_AGE_MS`, default 5 days. */
  readonly maxAgeMs?: number;
  /** Redis key prefix, default `smtp-gateway`; use a hash tag (`{smtp-gateway}`) on Redis Cluster. */
  readonly prefix?: string;
  /** Queue name, default `outbound`. */
  readonly name?: string;
  /** How long a worker's hold on a job lasts without renewal (renewed every half), default 30 s. */
  readonly lockDurationMs?: number;
  /** How often workers look for jobs whose holder died, default 15 s. */
  readonly stalledIntervalMs?: number;
  /** Crashes a job may go through before it is parked as `failed` for an operator, default 20. */
  readonly maxStalledCount?: number;
  readonly register?: Registry;
  readonly logger?: QueueLogger;
}

export const QUEUE_DEFAULTS = {
  retryBaseMs: 30_000,
  retryMaxMs: 3_600_000,
  maxAgeMs: 5 * 24 * 3_600_000,
  prefix: 'smtp-gateway',
  name: 'outbound',
  lockDurationMs: 30_000,
  stalledIntervalMs: 15_000,
  maxStalledCount: 20,
} as const;

export interface ResolvedQueueOptions {
  readonly redisUrl: string;
  readonly ring: KeyRing | undefined;
  readonly maxBytes: number;
  readonly retryBaseMs: number;
  readonly retryMaxMs: number;
  readonly maxAgeMs: number;
  readonly prefix: string;
  readonly name: string;
  readonly lockDurationMs: number;
  readonly stalledIntervalMs: number;
  readonly maxStalledCount: number;
}


export type RetryOutcome = 'promoted' | 'retried' | 'already-waiting' | 'active' | 'not-found';
export type RemoveOutcome = 'removed' | 'active' | 'not-found';
export type BounceOutcome = 'scheduled' | 'not-found';

/** Redis did not take the message (unreachable, refused): the caller answers 451 4.3.0. */
export class QueueUnavailableError extends Error {
  override readonly name = 'QueueUnavailableError';
}

export class MessageQueue<Body = unknown, Session = unknown> {
  readonly options: ResolvedQueueOptions;
  readonly keys: QueueKeys;
  readonly metrics: QueueMetrics;
  readonly logger: QueueLogger;
  readonly register: Registry;
  private readonly workers = new Set<Workers>();

  /** Use `openQueue()`. */
  constructor(
    options: ResolvedQueueOptions,
    /** The producer's connection: fails fast while Redis is away instead of buffering. */
    readonly redis: Redis,
    readonly queue: Queue<JobData>,
    register: Registry,
    logger: QueueLogger,
  ) {
    this.options = options;
    this.keys = queueKeys(options.prefix, options.name);
    this.register = register;
    this.logger = logger;
    this.metrics = queueMetrics(register, () => this.stats());
  }

  /** CONFIG GET appendonly / appendfsync / maxmemory-policy, with warnings to log. */
  checkRedis(): Promise<RedisCheck> {
    return checkRedis(this.redis);
  }

  /**
   * Stores a message. Resolves once Redis has acknowledged the write (see the
   * README for what that promises under each appendfsync); `full` when
   * QUEUE_MAX_BYTES would be passed. Throws QueueUnavailableError when Redis
   * does not take it.
   */
  async enqueue(message: QueueMessage<Body, Session>): Promise<EnqueueResult> {
    if (message.recipients.length === 0) throw new TypeError('enqueue: no recipients');
    const id = pooledRandomBytes(10).toString('hex');
    const queuedAt = Date.now();
    const sealed = await sealSecret(requireRing(this.options), { body: message.body, session: message.session }, id);
    const draft: Omit<JobData, 'size'> = {
      v: 1,
      account: message.account,
      sender: message.sender,
      recipients: [...message.recipients],
      isBounce: message.isBounce ?? false,
      queuedAt,
      attempts: 0,
      lastError: message.lastError === undefined ? null : shortError(message.lastError),
      failures: [],
      sealed,
    };
    // The job's JSON plus a measured per-message overhead (BullMQ's job fields, our indexes); see README "Sizing".
    const size = Buffer.byteLength(JSON.stringify(draft)) + PER_MESSAGE_OVERHEAD_BYTES;
    const data: JobData = { ...draft, size };
    let reserved: { ok: boolean; bytes: number };
    try {
      reserved = await reserve(this.redis, this.keys, id, size, this.options.maxBytes, queuedAt);
    } catch (err) {
      this.metrics.enqueued.inc({ outcome: 'error' });
      throw new QueueUnavailableError(`the queue cannot be reached: ${(err as Error).message}`);
    }
    if (!reserved.ok) {
      this.metrics.enqueued.inc({ outcome: 'full' });
      return { status: 'full', size, bytes: reserved.bytes, maxBytes: this.options.maxBytes };
    }
    try {
      await this.queue.add('message', data, {
        jobId: id,
        attempts: MAX_ATTEMPTS,
        backoff: { type: BACKOFF_TYPE },
        removeOnComplete: true,
        removeOnFail: false,
      });
    } catch (err) {
      this.metrics.enqueued.inc({ outcome: 'error' });
      await release(this.redis, this.keys, id).catch(() => undefined);
      throw new QueueUnavailableError(`the queue did not store the message: ${(err as Error).message}`);
    }
    this.metrics.enqueued.inc({ outcome: 'queued' });
    return { status: 'queued', id, size };
  }

  /** Starts `concurrency` workers in this process; see workers.ts. */
  startWorkers(options: WorkerOptions<Body, Session>): Workers {
    const workers = startWorkers(this, options);
    this.workers.add(workers);
    workers.closed.finally(() => this.workers.delete(workers)).catch(() => undefined);
    return workers;
  }

  async stats(): Promise<QueueStats> {
    const [depth, oldest, bytes, duplicates] = await Promise.all([
      this.redis.zcard(this.keys.index),
      this.redis.zrange(this.keys.index, 0, 0, 'WITHSCORES'),
      this.redis.get(this.keys.bytes),
      this.redis.get(this.keys.duplicates),
    ]);
    const oldestAt = oldest[1] === undefined ? undefined : Number(oldest[1]);
    return {
      depth,
      bytes: Number(bytes ?? 0),
      oldestAgeSeconds: oldestAt === undefined ? 0 : Math.max(0, (Date.now() - oldestAt) / 1000),
      possibleDuplicates: Number(duplicates ?? 0),
    };
  }

  /** Queued messages, oldest first: metadata only. */
  async list(limit = 1000): Promise<QueueEntry[]> {
    const ids = await this.redis.zrange(this.keys.index, 0, limit - 1, 'WITHSCORES');
    const entries: QueueEntry[] = [];
    const now = Date.now();
    for (let i = 0; i < ids.length; i += 2) {
      const id = ids[i] as string;
      const job = await this.queue.getJob(id);
      if (!job) {
        // A reservation whose add never landed; give enqueue() a minute to finish first.
        if (now - Number(ids[i + 1]) > 60_000) await release(this.redis, this.keys, id);
        continue;
      }
      const state = await job.getState();
      entries.push(entryOf(job, state, now));
    }
    return entries;
  }

  /** Moves a waiting-for-retry (or failed) message to the front now; `all` for every one. */
  async retry(id: string): Promise<RetryOutcome>;
  async retry(id: 'all'): Promise<Record<RetryOutcome, number>>;
  async retry(id: string): Promise<RetryOutcome | Record<RetryOutcome, number>> {
    if (id === 'all') {
      const counts: Record<RetryOutcome, number> = { promoted: 0, retried: 0, 'already-waiting': 0, active: 0, 'not-found': 0 };
      const ids = await this.redis.zrange(this.keys.index, 0, -1);
      for (const one of ids) counts[await this.retryOne(one)]++;
      return counts;
    }
    return this.retryOne(id);
  }

  private async retryOne(id: string): Promise<RetryOutcome> {
    const job = QUEUE_ID.test(id) ? await this.queue.getJob(id) : undefined;
    if (!job) return 'not-found';
    const state = await job.getState();
    try {
      if (state === 'delayed') {
        await job.promote();
        return 'promoted';
      }
      if (state === 'failed') {
        await job.retry('failed');
        return 'retried';
      }
    } catch {
      // It moved between getState and the command (a worker took it).
      return 'active';
    }
    return state === 'active' ? 'active' : 'already-waiting';
  }

  /** Deletes a message without a bounce (postsuper -d). An active one is refused. */
  async remove(id: string): Promise<RemoveOutcome> {
    const job = QUEUE_ID.test(id) ? await this.queue.getJob(id) : undefined;
    if (!job) return 'not-found';
    try {
      await job.remove();
    } catch {
      return 'active';
    }
    await release(this.redis, this.keys, id);
    return 'removed';
  }

  /**
   * Returns a message to its sender: a worker bounces its remaining recipients
   * (cause `operator`) at its next pick-up, which is made now.
   */
  async bounce(id: string): Promise<BounceOutcome> {
    const job = QUEUE_ID.test(id) ? await this.queue.getJob(id) : undefined;
    if (!job) return 'not-found';
    await this.redis.hset(this.keys.commands, id, 'bounce');
    const outcome = await this.retryOne(id);
    if (outcome === 'not-found') {
      await this.redis.hdel(this.keys.commands, id);
      return 'not-found';
    }
    return 'scheduled';
  }

  /** Stops the workers started here (see Workers.close) and closes the connections. */
  async close(timeoutMs = 10_000): Promise<void> {
    await Promise.all([...this.workers].map((w) => w.close(timeoutMs)));
    await this.queue.close();
    this.redis.disconnect();
  }
}

/** The key ring, or a clear error for a queue opened for the operator functions only. */
export function requireRing(options: ResolvedQueueOptions): KeyRing {
  if (!options.ring) throw new TypeError('the queue was opened without QUEUE_ENCRYPTION_KEY: it cannot store or deliver messages');
  return options.ring;
}

function entryOf(job: Job<JobData>, state: string, now: number): QueueEntry {
  const d = job.data;
  return {
    id: job.id as string,
    account: d.account,
    sender: d.sender,
    recipients: d.recipients,
    state,
    queuedAt: d.queuedAt,
    ageSeconds: Math.max(0, Math.round((now - d.queuedAt) / 1000)),
    attempts: d.attempts,
    lastError: d.lastError ?? undefined,
    nextAttemptAt: state === 'delayed' ? job.timestamp + (job.delay ?? 0) : undefined,
    size: d.size,
    isBounce: d.isBounce,
    keyId: sealedKeyId(d.sealed),
  };
}

/** Connects, waits until Redis answers, and returns the queue. */
export async function openQueue<Body = unknown, Session = unknown>(options: QueueOptions): Promise<MessageQueue<Body, Session>> {
  const resolved: ResolvedQueueOptions = {
    redisUrl: options.redisUrl,
    ring: typeof options.keys === 'string' ? parseKeyRing(options.keys) : options.keys,
    maxBytes: options.maxBytes,
    retryBaseMs: options.retryBaseMs ?? QUEUE_DEFAULTS.retryBaseMs,
    retryMaxMs: options.retryMaxMs ?? QUEUE_DEFAULTS.retryMaxMs,
    maxAgeMs: options.maxAgeMs ?? QUEUE_DEFAULTS.maxAgeMs,
    prefix: options.prefix ?? QUEUE_DEFAULTS.prefix,
    name: options.name ?? QUEUE_DEFAULTS.name,
    lockDurationMs: options.lockDurationMs ?? QUEUE_DEFAULTS.lockDurationMs,
    stalledIntervalMs: options.stalledIntervalMs ?? QUEUE_DEFAULTS.stalledIntervalMs,
    maxStalledCount: options.maxStalledCount ?? QUEUE_DEFAULTS.maxStalledCount,
  };
  const logger = options.logger ?? silent;
  const redis = new Redis(resolved.redisUrl, { maxRetriesPerRequest: 1, enableOfflineQueue: false, lazyConnect: true });
  redis.on('error', (err: Error) => logger.warn({ err: err.message }, 'queue: Redis connection error'));
  await redis.connect();
  const queue = new Queue<JobData>(resolved.name, { connection: redis, prefix: resolved.prefix });
  queue.on('error', () => undefined);
  await queue.waitUntilReady();
  return new MessageQueue<Body, Session>(resolved, redis, queue, options.register ?? new Registry(), logger);
}
