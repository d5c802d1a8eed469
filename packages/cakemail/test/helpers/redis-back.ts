import type { RedisAcceptedStore } from '../../src/index.js';

/**
 * Waits until `store` reads through Redis again after an outage: a read that adds no error to
 * `errors()` (the store's onError count). Gives up after 20 s, leaving the test to fail on what follows.
 */
export async function untilRedisAnswers(store: RedisAcceptedStore, errors: () => number): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const before = errors();
    await store.get('probe');
    if (errors() === before) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
