import { describe, expect, it } from 'vitest';
import { combineRounds, fmt, median, percentile, perUnit, ratio, underCap } from '../src/stats.js';

describe('percentile (nearest rank)', () => {
  const hundred = Array.from({ length: 100 }, (_, i) => 100 - i); // 100..1, unsorted

  it('gives the nearest-rank value', () => {
    expect(percentile(hundred, 50)).toBe(50);
    expect(percentile(hundred, 99)).toBe(99);
    expect(percentile(hundred, 100)).toBe(100);
    expect(percentile(hundred, 0)).toBe(1);
    expect(percentile([7], 99)).toBe(7);
    expect(percentile([1, 2, 3, 4], 50)).toBe(2);
    expect(percentile([1, 2, 3, 4], 51)).toBe(3);
  });

  it('a p99 of fewer than 100 values is the maximum', () => {
    expect(percentile([3, 1, 2, 50, 4], 99)).toBe(50);
  });

  it('is NaN with no values, and does not reorder its input', () => {
    expect(percentile([], 50)).toBeNaN();
    const input = [3, 1, 2];
    percentile(input, 50);
    expect(input).toEqual([3, 1, 2]);
    expect(median([5, 1, 9])).toBe(5);
  });
});

describe('ratios and per-unit costs', () => {
  it('ratio is NaN for a zero or missing reference', () => {
    expect(ratio(2778, 6564)).toBeCloseTo(0.4232, 4);
    expect(ratio(1, 0)).toBeNaN();
    expect(ratio(Number.NaN, 1)).toBeNaN();
    expect(ratio(1, Number.POSITIVE_INFINITY)).toBeNaN();
  });

  it('perUnit spreads a total over a count, NaN for none', () => {
    expect(perUnit(3_400_000, 10_000)).toBe(340); // µs of CPU per message
    expect(perUnit(100, 0)).toBeNaN();
  });

  it('fmt shows n/a for what was not measured', () => {
    expect(fmt(Number.NaN)).toBe('n/a');
    expect(fmt(6564.4)).toBe('6,564');
    expect(fmt(0.4232, 2)).toBe('0.42');
  });
});

describe('combineRounds', () => {
  it('takes the median of each number and sums the errors', () => {
    const combined = combineRounds([
      { rate: 10, cpu: 300, errors: { 'DATA 451': 1 }, kind: 'g' },
      { rate: 30, cpu: 100, errors: {}, kind: 'g' },
      { rate: 20, cpu: 900, errors: { 'DATA 451': 2, 'read closed': 1 }, kind: 'g' },
    ]);
    expect(combined).toEqual({ rate: 20, cpu: 300, errors: { 'DATA 451': 3, 'read closed': 1 }, kind: 'g' });
  });

  it('throws on no rounds', () => {
    expect(() => combineRounds([])).toThrow(/no rounds/);
  });
});

describe('underCap (S3 concurrency under MAX_INFLIGHT_BYTES)', () => {
  const MiB = 1024 * 1024;
  it('keeps the wanted count with no cap', () => {
    expect(underCap(4, 10 * MiB, undefined)).toBe(4);
    expect(underCap(4, 10 * MiB, 0)).toBe(4);
  });
  it('stays under 90 % of the cap, at least one message', () => {
    expect(underCap(4, 10 * MiB, 256 * MiB)).toBe(4);
    expect(underCap(4, 10 * MiB, 35 * MiB)).toBe(3);
    expect(underCap(4, 10 * MiB, 5 * MiB)).toBe(1);
  });
});
