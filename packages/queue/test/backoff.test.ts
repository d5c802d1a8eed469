import { describe, expect, it } from 'vitest';
import { retryDelay } from '../src/backoff.js';
import { duration } from '../src/workers.js';

const options = { retryBaseMs: 30_000, retryMaxMs: 3_600_000 };

describe('retryDelay', () => {
  it('draws uniformly below base * 2^(attempt-1), capped at the maximum (full jitter)', () => {
    expect(retryDelay(1, options, undefined, () => 0.999999)).toBe(29_999);
    expect(retryDelay(3, options, undefined, () => 0.5)).toBe(60_000);
    expect(retryDelay(30, options, undefined, () => 0.999999)).toBe(3_599_996);
    expect(retryDelay(1, options, undefined, () => 0)).toBe(0);
  });

  it('waits at least Retry-After, even past the maximum', () => {
    expect(retryDelay(1, options, 120_000, () => 0)).toBe(120_000);
    expect(retryDelay(1, options, 7_200_000, () => 0.5)).toBe(7_200_000);
  });

  it('stays within bounds for any draw', () => {
    for (let attempt = 1; attempt < 60; attempt++) {
      const d = retryDelay(attempt, options);
      expect(d).toBeGreaterThanOrEqual(0);
      expect(d).toBeLessThanOrEqual(3_600_000);
    }
  });
});

describe('duration', () => {
  it.each([
    [432_000_000, '5 days'],
    [86_400_000, '1 day'],
    [5_400_000, '1.5 hours'],
    [60_000, '1 minute'],
    [1_500, '1.5 seconds'],
    [200, '0.2 seconds'],
  ])('%i ms is %s', (ms, text) => expect(duration(ms)).toBe(text));
});
