/**
 * The workers: each job is one attempt at the recipients still pending.
 *
 * An attempt: note it in the `inflight` hash (reading the note a previous attempt left and any
 * operator command in the same round trip), call `deliver`, drop the
 * accepted recipients from the job, bounce the ones given up on, clear the
 * note, then either finish or throw RetryLater so BullMQ moves the job to
 * its delayed set until the next attempt. A note found at the start of an
 * attempt means the previous one died (kill -9) between its start and its
 * end: a POST may have been in flight, so it is counted as a possible duplicate.
 */
import { Worker, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import { retryDelay } from './backoff.js';
import { UnsealError } from './crypto.js';
import { sealSecret, unsealSecret, type Secret } from './secret.js';
import { BACKOFF_TYPE, shortError, type JobData } from './job-data.js';
import { beginAttempt, release } from './keys.js';
import { requireRing, type MessageQueue } from './queue.js';
import type { BounceFailure, BounceFn, DeliverFn, DeliverResult, QueuedJob, RecipientOutcome } from './types.js';

export interface WorkerOptions<Body, Session> {
  /** Jobs in flight at once in this process (`QUEUE_CONCURRENCY`). */
  readonly concurrency: number;
  readonly deliver: DeliverFn<Body, Session>;
  readonly bounce: BounceFn<Body, Session>;
}

export interface Workers {
  /**
   * Stops taking jobs, lets the ones in flight finish for up to `timeoutMs`,
   * then aborts them (deliver's signal): each returns its pending recipients
   * to the queue. A deliver that ignores its signal is abandoned after a
   * short grace; its job comes back through stalled-job recovery.
   */
  close(timeoutMs: number): Promise<void>;
  readonly closed: Promise<void>;
  /** The BullMQ worker, for tests and events. */
  readonly worker: Worker<JobData>;
}

/** Thrown by an attempt that leaves work for later; `delayMs` is when. */
export class RetryLater extends Error {
  override readonly name = 'RetryLater';
  constructor(
    message: string,
    readonly delayMs: number,
  ) {
    super(message);
  }
}

const ABORT_GRACE_MS = 2_000;

export function startWorkers<Body, Session>(q: MessageQueue<Body, Session>, options: WorkerOptions<Body, Session>): Workers {
  const o = q.options;
  const ring = requireRing(o);
  const keys = q.keys;
  const m = q.metrics;
  // BullMQ's workers need a connection that retries forever (blocking commands).
  const connection = new Redis(o.redisUrl, { maxRetriesPerRequest: null });
  connection.on('error', (err: Error) => q.logger.warn({ err: err.message }, 'queue: worker Redis connection error'));
  const inFlight = new Set<Promise<unknown>>();

  /** A delay cut at the message's expiry, so that the attempt that finds it expired comes on time. */
  const untilExpiry = (data: JobData, delayMs: number): number =>
    Math.max(0, Math.min(delayMs, data.queuedAt + o.maxAgeMs - Date.now()));

  async function attempt(job: Job<JobData>, signal: AbortSignal): Promise<void> {
    const id = job.id as string;
    const data = job.data;
    const attemptNo = data.attempts + 1;
    const { previous, command } = await beginAttempt(connection, keys, id, JSON.stringify({ attempt: attemptNo, startedAt: Date.now() }));
    const resumed = previous !== null;
    if (resumed) {
      m.possibleDuplicates.inc();
      await connection.incr(keys.duplicates);
      q.logger.warn({ queueId: id, previous }, 'queue: resuming an attempt cut short by a crash; one recipient may receive it twice');
    }

    let secret: Secret<Body, Session>;
    try {
      secret = await unsealSecret<Body, Session>(ring, data.sealed, id);
    } catch (err) {
      // Nothing was sent: the note this attempt made is not one a crash left.
      await connection.hdel(keys.inflight, id);
      if (!(err instanceof UnsealError)) throw err;
      // Without its key the message can be neither sent nor bounced: it waits for the key, then for an operator.
      const age = Date.now() - data.queuedAt;
      await job.updateData({ ...data, attempts: attemptNo, lastError: shortError(err.message) });
      if (age >= o.maxAgeMs) {
        q.logger.error({ queueId: id }, 'queue: message expired and cannot be opened; parked as failed');
        throw new UnrecoverableParked(err.message);
      }
      throw new RetryLater(err.message, untilExpiry(data, o.retryMaxMs));
    }

    const view: QueuedJob<Body, Session> = {
      id,
      account: data.account,
      sender: data.sender,
      recipients: data.recipients,
      body: secret.body,
      session: secret.session,
      isBounce: data.isBounce,
      queuedAt: data.queuedAt,
      attempt: attemptNo,
      lastError: data.lastError ?? undefined,
      size: data.size,
      resumed,
    };

    const failures: BounceFailure[] = [...data.failures];
    let pending: string[] = [];
    let lastError = data.lastError;
    let retryAfterMs: number | undefined;
    let session = secret.session;
    let sessionChanged = false;

    if (command === 'bounce') {
      for (const recipient of data.recipients) {
        failures.push({ recipient, status: '5.0.0', reason: 'returned to the sender by the postmaster', cause: 'operator' });
      }
    } else if (data.recipients.length > 0) {
      let result: DeliverResult<Session>;
      try {
        result = await options.deliver(view, signal);
      } catch (err) {
        result = { outcomes: new Map() };
        lastError = shortError(`delivery failed: ${(err as Error).message}`);
      }
      if (result.session !== undefined) {
        session = result.session;
        sessionChanged = true;
      }
      for (const recipient of data.recipients) {
        const outcome: RecipientOutcome = result.outcomes.get(recipient) ?? {
          kind: 'temporary',
          reason: lastError ?? 'no outcome reported',
        };
        m.deliveries.inc({ outcome: outcome.kind });
        if (outcome.kind === 'permanent') {
          failures.push({ recipient, status: outcome.status, reason: outcome.reason, cause: 'permanent' });
        } else if (outcome.kind === 'temporary') {
          pending.push(recipient);
          lastError = shortError(outcome.reason);
          if (outcome.retryAfterMs !== undefined) retryAfterMs = Math.max(retryAfterMs ?? 0, outcome.retryAfterMs);
        }
      }
    }

    const age = Date.now() - data.queuedAt;
    if (pending.length > 0 && age >= o.maxAgeMs && !signal.aborted) {
      for (const recipient of pending) {
        failures.push({
          recipient,
          status: '4.4.7',
          reason: `delivery to Cakemail did not succeed in ${duration(o.maxAgeMs)}; last error: ${lastError ?? 'none'}`,
          cause: 'expired',
        });
      }
      pending = [];
    }

    let unbounced: BounceFailure[] = [];
    if (failures.length > 0) {
      if (data.isBounce) {
        // Never bounce a bounce.
        for (const f of failures) m.bounces.inc({ cause: f.cause, outcome: 'suppressed' });
        q.logger.warn({ queueId: id, recipients: failures.length }, 'queue: a bounce could not be delivered; dropped');
      } else {
        try {
          await options.bounce({ ...view, session }, failures);
          for (const f of failures) m.bounces.inc({ cause: f.cause, outcome: 'sent' });
        } catch (err) {
          for (const f of failures) m.bounces.inc({ cause: f.cause, outcome: 'failed' });
          unbounced = failures;
          lastError = shortError(`bounce failed: ${(err as Error).message}`);
        }
      }
    }

    if (pending.length === 0 && unbounced.length === 0) {
      await release(connection, keys, id);
      return;
    }

    const next: JobData = {
      ...data,
      recipients: pending,
      failures: unbounced,
      attempts: attemptNo,
      lastError,
      sealed: sessionChanged ? await sealSecret(ring, { body: secret.body, session }, id) : data.sealed,
    };
    await job.updateData(next);
    await connection.hdel(keys.inflight, id);
    // Only the command this attempt carried out: one given while it ran waits for the next attempt.
    if (command !== null) await connection.hdel(keys.commands, id);
    m.retries.inc();
    if (signal.aborted) throw new RetryLater('returned to the queue at shutdown', 0);
    throw new RetryLater(lastError ?? 'retry', untilExpiry(data, retryDelay(attemptNo, o, retryAfterMs)));
  }

  const worker = new Worker<JobData>(
    o.name,
    async (job, _token, signal) => {
      const run = attempt(job, signal ?? new AbortController().signal);
      inFlight.add(run);
      try {
        await run;
      } finally {
        inFlight.delete(run);
      }
    },
    {
      connection,
      prefix: o.prefix,
      concurrency: options.concurrency,
      lockDuration: o.lockDurationMs,
      stalledInterval: o.stalledIntervalMs,
      maxStalledCount: o.maxStalledCount,
      autorun: true,
      settings: {
        backoffStrategy: (attemptsMade: number, type?: string, err?: Error) => {
          if (type !== BACKOFF_TYPE) return 0;
          if (err instanceof RetryLater) return err.delayMs;
          if (err instanceof UnrecoverableParked) return -1;
          // An error outside an attempt's own handling (Redis went away mid-attempt).
          return retryDelay(attemptsMade, o);
        },
      },
    },
  );
  worker.on('error', (err) => q.logger.error({ err: err.message }, 'queue: worker error'));

  let closing: Promise<void> | undefined;
  let resolveClosed!: () => void;
  const closed = new Promise<void>((resolve) => (resolveClosed = resolve));
  const drained = async (ms: number): Promise<boolean> => {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
    const all = (async () => {
      while (inFlight.size > 0) await Promise.allSettled([...inFlight]);
      return true as const;
    })();
    const done = await Promise.race([all, timeout]);
    clearTimeout(timer);
    return done;
  };

  return {
    worker,
    closed,
    close(timeoutMs: number): Promise<void> {
      closing ??= (async () => {
        await worker.pause(true);
        let done = await drained(timeoutMs);
        if (!done) {
          worker.cancelAllJobs('shutdown');
          done = await drained(ABORT_GRACE_MS);
        }
        await worker.close(!done);
        connection.disconnect();
        resolveClosed();
      })();
      return closing;
    },
  };
}

/** `432000000` → `5 days`, for a bounce's text. */
export function duration(ms: number): string {
  const units: [number, string][] = [
    [86_400_000, 'day'],
    [3_600_000, 'hour'],
    [60_000, 'minute'],
    [1_000, 'second'],
  ];
  const [size, name] = units.find(([size]) => ms >= size) ?? [1_000, 'second'];
  const value = Math.round((ms / size) * 10) / 10;
  return `${value} ${name}${value === 1 ? '' : 's'}`;
}

/** A message that cannot be opened and has expired: parked in BullMQ's failed set. */
class UnrecoverableParked extends Error {
  override readonly name = 'UnrecoverableParked';
}
