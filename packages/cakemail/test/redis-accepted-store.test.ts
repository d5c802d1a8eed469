import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRedisProxy, startRedisServer, testRedis, type TestRedis } from '@cakemail-smtp/testkit';
import { RedisAcceptedStore } from '../src/index.js';

let redis: TestRedis;
let a: RedisAcceptedStore;
let b: RedisAcceptedStore;
const keyPrefix = `test:${randomUUID()}`;

beforeAll(async () => {
  redis = await testRedis();
  a = await RedisAcceptedStore.connect({ url: redis.url, keyPrefix });
  b = await RedisAcceptedStore.connect({ url: redis.url, keyPrefix });
});

afterAll(async () => {
  await a.close();
  await b.close();
  await redis.stop();
});

describe('RedisAcceptedStore', () => {
  it('shares what one replica put with another, until deleted', async () => {
    expect(await b.get('k1')).toBeUndefined();
    await a.put('k1', 'id-1', 60_000);
    expect(await b.get('k1')).toBe('id-1');
    await b.delete('k1');
    expect(await a.get('k1')).toBeUndefined();
  });

  it('forgets an entry when its TTL passes', async () => {
    await a.put('k2', 'id-2', 150);
    expect(await b.get('k2')).toBe('id-2');
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(await b.get('k2')).toBeUndefined();
  });

  it('refuses to start on an unreachable Redis, without the URL in the error', async () => {
    const err = await RedisAcceptedStore.connect({ url: 'redis://:secret-password@127.0.0.1:1', connectTimeoutMs: 500 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toMatch(/not reachable/);
    expect((err as Error).message).not.toContain('secret-password');
  });
});

describe('RedisAcceptedStore in-flight marks', () => {
  it('one replica claims, the other is refused until the owner releases; only the owner releases', async () => {
    const key = randomUUID();
    const token = await a.inflight.claim(key, 60_000);
    expect(token).toBeTypeOf('string');
    expect(await b.inflight.claim(key, 60_000)).toBeUndefined();
    await b.inflight.release(key, 'not-the-owner');
    expect(await b.inflight.claim(key, 60_000)).toBeUndefined();
    await a.inflight.release(key, token as string);
    expect(await b.inflight.claim(key, 60_000)).toBeTypeOf('string');
  });

  it('a mark expires with its TTL (a crashed replica)', async () => {
    const key = randomUUID();
    expect(await a.inflight.claim(key, 150)).toBeTypeOf('string');
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(await b.inflight.claim(key, 60_000)).toBeTypeOf('string');
  });
});

describe('a Redis outage (a real redis-server stopped mid-test)', () => {
  it('the same replica still answers from its memory: what it wrote before and during the outage, and its marks', async () => {
    const own = await startRedisServer();
    const errors: unknown[] = [];
    const store = await RedisAcceptedStore.connect({ url: own.url, keyPrefix, commandTimeoutMs: 500, onError: (err) => errors.push(err) });
    try {
      await store.put('before', 'id-before', 60_000);
      const mark = await store.inflight.claim('busy', 60_000);
      expect(mark).toBeTypeOf('string');
      await own.stop();

      expect(await store.get('before')).toBe('id-before');
      await store.put('during', 'id-during', 60_000); // never rejects
      expect(await store.get('during')).toBe('id-during');
      expect(await store.get('unknown')).toBeUndefined();
      // the mark made through Redis holds on this replica; a new claim is made in memory
      expect(await store.inflight.claim('busy', 60_000)).toBeUndefined();
      const fallback = await store.inflight.claim('other', 60_000);
      expect(fallback).toBeTypeOf('string');
      expect(await store.inflight.claim('other', 60_000)).toBeUndefined();
      await store.inflight.release('other', fallback as string);
      expect(await store.inflight.claim('other', 60_000)).toBeTypeOf('string');
      await store.delete('during');
      expect(await store.get('during')).toBeUndefined();
      expect(errors.length).toBeGreaterThan(0);
    } finally {
      await store.close();
      await own.stop();
    }
  });

  it('what a replica wrote while Redis was away is still found once Redis is back without it', async () => {
    const own = await startRedisServer();
    const proxy = await startRedisProxy(own.url);
    let errors = 0;
    const store = await RedisAcceptedStore.connect({ url: proxy.url, keyPrefix, commandTimeoutMs: 500, onError: () => (errors += 1) });
    try {
      await proxy.cut();
      await store.put('written-away', 'id-away', 60_000);
      expect(errors).toBeGreaterThan(0);
      await proxy.restore();
      // wait until Redis answers again: a read that reports no error
      for (let i = 0; i < 200; i++) {
        const before = errors;
        await store.get('probe');
        if (errors === before) break;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      const before = errors;
      expect(await store.get('written-away')).toBe('id-away');
      expect(errors).toBe(before); // answered while Redis was up
    } finally {
      await store.close();
      await proxy.close();
      await own.stop();
    }
  });
});
