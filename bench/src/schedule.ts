/**
 * The open-loop scheduler: arrivals at a fixed rate, each started on its own schedule whatever
 * the earlier ones are doing (a closed loop waits for a reply before the next start, so a slow
 * server slows its own load down and hides its queueing).
 */
import { setTimeout as sleep } from 'node:timers/promises';

export interface Clock {
  /** ms, monotonic. */
  now(): number;
  sleep(ms: number): Promise<unknown>;
}

export const realClock: Clock = { now: () => performance.now(), sleep: (ms) => sleep(ms) };

/** When arrival `index` (0-based) is due, in ms after the start, at `rate` per second. */
export function scheduledAt(index: number, rate: number): number {
  return (index * 1000) / rate;
}

/** How many arrivals are due `elapsedMs` after the start (the first is due at 0). */
export function arrivalsDue(elapsedMs: number, rate: number): number {
  if (!(rate > 0) || elapsedMs < 0) return 0;
  return Math.floor((elapsedMs * rate) / 1000) + 1;
}

/** How many arrivals fall in `[0, durationMs)`. */
export function plannedArrivals(durationMs: number, rate: number): number {
  if (!(rate > 0) || !(durationMs > 0)) return 0;
  return Math.ceil((durationMs * rate) / 1000);
}

export interface Arrival {
  readonly index: number;
  /** ms after the start that it was due. */
  readonly scheduledMs: number;
  /** How late it started: the scheduler's own delay (a busy load generator), not the server's. */
  readonly lagMs: number;
}

export interface OpenLoopResult {
  /** Arrivals started. */
  readonly started: number;
  /** Arrivals `start` declined (no free connection, too many open): counted, never retried. */
  readonly skipped: number;
  /** The lag of each arrival started, in order. */
  readonly lagsMs: readonly number[];
  /** ms from the start to the last arrival's due time handled. */
  readonly elapsedMs: number;
}

/**
 * Calls `start` once per arrival due in `[0, durationMs)`, at `rate` per second. When the loop
 * wakes late, every arrival due by then starts at once, each with its lag recorded. `start`
 * returns false to decline an arrival (it is counted as skipped).
 */
export async function openLoop(opts: {
  readonly rate: number;
  readonly durationMs: number;
  readonly start: (arrival: Arrival) => boolean;
  readonly clock?: Clock;
}): Promise<OpenLoopResult> {
  const clock = opts.clock ?? realClock;
  const planned = plannedArrivals(opts.durationMs, opts.rate);
  const lagsMs: number[] = [];
  let next = 0;
  let skipped = 0;
  const t0 = clock.now();
  while (next < planned) {
    const elapsed = clock.now() - t0;
    const due = Math.min(planned, arrivalsDue(elapsed, opts.rate));
    for (; next < due; next++) {
      const scheduledMs = scheduledAt(next, opts.rate);
      const lagMs = Math.max(0, elapsed - scheduledMs);
      if (opts.start({ index: next, scheduledMs, lagMs })) lagsMs.push(lagMs);
      else skipped++;
    }
    if (next >= planned) break;
    await clock.sleep(Math.max(1, scheduledAt(next, opts.rate) - (clock.now() - t0)));
  }
  return { started: lagsMs.length, skipped, lagsMs, elapsedMs: clock.now() - t0 };
}
