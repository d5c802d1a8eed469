// An in-flight mark made in this replica's memory while Redis was away still holds back a retry
// on the same replica once Redis is back (it exists nowhere else: Redis never got it).
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { startRedisProxy, startRedisServer } from '@cakemail-smtp/testkit';
import { RedisAcceptedStore } from '../src/index.js';
import { untilRedisAnswers } from './helpers/redis-back.js';

describe('RedisInflightMarks across a Redis outage', () => {
  it('a mark claimed in memory while Redis was away still holds back a claim once Redis is back', async () => {
    const own = await startRedisServer();
    const proxy = await startRedisProxy(own.url);
    let errors = 0;
    const keyPrefix = `test:${randomUUID()}`;
    const store = await RedisAcceptedStore.connect({ url: proxy.url, keyPrefix, commandTimeoutMs: 500, onError: () => (errors += 1) });
    try {
      await proxy.cut();
      const first = await store.inflight.claim('1:fp:rcpt@example.net', 75_000);
      expect(first).toBeDefined(); // the first attempt sends, its mark in memory only
      expect(errors).toBeGreaterThan(0);
      await proxy.restore();
      await untilRedisAnswers(store, () => errors);
      // The first attempt is still waiting on Cakemail: a retry on this replica must not get a turn.
      expect(await store.inflight.claim('1:fp:rcpt@example.net', 75_000)).toBeUndefined();
    } finally {
      await store.close();
      await proxy.close();
      await own.stop();
    }
  });
});
