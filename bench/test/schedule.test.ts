import { describe, expect, it } from 'vitest';
import { arrivalsDue, openLoop, plannedArrivals, scheduledAt, type Clock } from '../src/schedule.js';

/** A clock that moves only when the scheduler sleeps: by the time asked, or by `step` when set. */
function virtualClock(step?: number): Clock & { sleeps: number[] } {
  let t = 1000;
  const sleeps: number[] = [];
  return {
    sleeps,
    now: () => t,
    sleep: async (ms) => {
      sleeps.push(ms);
      t += step ?? ms;
    },
  };
}

describe('open-loop schedule', () => {
  it('arrival i is due at i / rate seconds, the first at 0', () => {
    expect(scheduledAt(0, 100)).toBe(0);
    expect(scheduledAt(1, 100)).toBe(10);
    expect(scheduledAt(250, 500)).toBe(500);
  });

  it('counts the arrivals due by a given time, none before the start or at rate 0', () => {
    expect(arrivalsDue(0, 100)).toBe(1);
    expect(arrivalsDue(9.99, 100)).toBe(1);
    expect(arrivalsDue(10, 100)).toBe(2);
    expect(arrivalsDue(1000, 100)).toBe(101);
    expect(arrivalsDue(-1, 100)).toBe(0);
    expect(arrivalsDue(1000, 0)).toBe(0);
    expect(arrivalsDue(1000, Number.NaN)).toBe(0);
  });

  it('plans rate × duration arrivals in [0, duration)', () => {
    expect(plannedArrivals(1000, 100)).toBe(100);
    expect(plannedArrivals(1000, 3)).toBe(3);
    expect(plannedArrivals(1001, 100)).toBe(101);
    expect(plannedArrivals(0, 100)).toBe(0);
    expect(plannedArrivals(1000, 0)).toBe(0);
  });

  it('starts every arrival on its schedule, without waiting for earlier ones', async () => {
    const clock = virtualClock();
    const starts: Array<{ index: number; at: number; lag: number }> = [];
    const t0 = clock.now();
    const result = await openLoop({
      rate: 200,
      durationMs: 1000,
      clock,
      start: ({ index, lagMs }) => {
        starts.push({ index, at: clock.now() - t0, lag: lagMs });
        return true; // never completes: an open loop does not care
      },
    });
    expect(result.started).toBe(200);
    expect(result.skipped).toBe(0);
    expect(starts.map((s) => s.index)).toEqual(Array.from({ length: 200 }, (_, i) => i));
    for (const s of starts) expect(s.at).toBeCloseTo(s.index * 5, 6);
    expect(Math.max(...result.lagsMs)).toBeCloseTo(0, 6);
  });

  it('when the loop wakes late, starts every arrival due at once and records each lag', async () => {
    const clock = virtualClock(50); // every sleep takes 50 ms, whatever was asked
    const result = await openLoop({ rate: 100, durationMs: 1000, clock, start: () => true });
    expect(result.started).toBe(100);
    // Arrivals due every 10 ms, the loop wakes every 50 ms: lags of 0, 10, 20, 30 and 40 ms.
    expect(new Set(result.lagsMs.map((l) => Math.round(l)))).toEqual(new Set([0, 10, 20, 30, 40]));
  });

  it('counts the arrivals start declines as skipped, not started', async () => {
    const clock = virtualClock();
    const result = await openLoop({ rate: 100, durationMs: 1000, clock, start: ({ index }) => index % 4 !== 0 });
    expect(result.started).toBe(75);
    expect(result.skipped).toBe(25);
    expect(result.lagsMs).toHaveLength(75);
  });

  it('sleeps until the next arrival, at least 1 ms', async () => {
    const clock = virtualClock();
    await openLoop({ rate: 10, durationMs: 1000, clock, start: () => true });
    expect(clock.sleeps.every((ms) => ms >= 1)).toBe(true);
    expect(clock.sleeps.reduce((a, b) => a + b, 0)).toBeCloseTo(900, 6);
  });

  it('does nothing at rate 0', async () => {
    const result = await openLoop({ rate: 0, durationMs: 1000, clock: virtualClock(), start: () => true });
    expect(result).toMatchObject({ started: 0, skipped: 0 });
  });
});
