/** Percentiles and formatting. */

/** The p-th percentile (0..100) of the values, nearest rank; NaN when empty. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank] ?? Number.NaN;
}

export function fmt(value: number, digits = 0): string {
  if (!Number.isFinite(value)) return 'n/a';
  return value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

export function median(values: readonly number[]): number {
  return percentile(values, 50);
}

/**
 * Several rounds of one measurement → one: the median of each numeric field, error counts summed.
 * Medians keep a burst of foreign load on this shared machine from deciding the result.
 */
export function combineRounds<T extends object>(rounds: readonly T[]): T {
  const first = rounds[0];
  if (first === undefined) throw new Error('no rounds');
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(first)) {
    if (typeof value === 'number') {
      out[key] = median(rounds.map((r) => (r as Record<string, number>)[key] ?? Number.NaN));
    } else if (key === 'errors') {
      const sum: Record<string, number> = {};
      for (const r of rounds) for (const [k, v] of Object.entries((r as { errors: Record<string, number> }).errors)) sum[k] = (sum[k] ?? 0) + v;
      out[key] = sum;
    } else out[key] = value;
  }
  return out as T;
}

/** a / b; NaN when either is not a finite number or b is 0. */
export function ratio(a: number, b: number): number {
  if (!Number.isFinite(a) || !Number.isFinite(b) || b === 0) return Number.NaN;
  return a / b;
}

/** `total` spread over `count` units (CPU µs per message, bytes per connection); NaN when count is 0. */
export function perUnit(total: number, count: number): number {
  return count > 0 ? total / count : Number.NaN;
}

/**
 * How many `bytes`-byte messages to hold at once, up to `wanted`, staying under 90 % of an
 * in-flight cap (`MAX_INFLIGHT_BYTES`, when the gateway has one); at least one.
 */
export function underCap(wanted: number, bytes: number, cap: unknown): number {
  if (typeof cap !== 'number' || !(cap > 0)) return wanted;
  return Math.max(1, Math.min(wanted, Math.floor((0.9 * cap) / bytes)));
}
