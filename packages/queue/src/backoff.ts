/** When the next attempt happens. */

export interface BackoffOptions {
  readonly retryBaseMs: number;
  readonly retryMaxMs: number;
}

/**
 * Exponential backoff with full jitter: a uniform delay in
 * [0, min(retryMaxMs, retryBaseMs * 2^(attempt-1))]. A Retry-After from
 * Cakemail is a floor, honoured even past retryMaxMs (the caller still caps
 * every delay at the message's expiry). `random` is injectable for tests.
 */
export function retryDelay(
  attempt: number,
  options: BackoffOptions,
  retryAfterMs?: number,
  random: () => number = Math.random,
): number {
  const exponent = Math.min(Math.max(attempt - 1, 0), 40);
  const ceiling = Math.min(options.retryMaxMs, options.retryBaseMs * 2 ** exponent);
  const jittered = Math.floor(random() * ceiling);
  return Math.max(jittered, retryAfterMs ?? 0);
}
