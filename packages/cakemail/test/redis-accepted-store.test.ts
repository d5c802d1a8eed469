import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRedisProxy, startRedisServer, testRedis, type TestRedis } from '@cakemail-smtp/testkit';
import { RedisAcceptedStore } from '../src/index.js';
import { untilRedisAnswers } from './helpers/redis-back.js';
import { commandsSent } from './helpers/redis-monitor.js';

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

describe('RedisAcceptedStore turn and settle: a send\'s two ends in one round trip each', () => {
  it('takes the mark when the recipient is not accepted, then writes the id and frees the mark', async () => {
    const key = randomUUID();
    const turn = await a.turn(key, 60_000);
    expect(turn.kind).toBe('mine');
    expect(await b.turn(key, 60_000)).toEqual({ kind: 'held' }); // the mark is in Redis
    expect(await b.inflight.claim(key, 60_000)).toBeUndefined();
    await a.settle(key, turn.kind === 'mine' ? turn.token : '', 'id-turn', 60_000);
    expect(await b.get(key)).toBe('id-turn');
    expect(await b.turn(key, 60_000)).toEqual({ kind: 'accepted', id: 'id-turn' });
    const free = await b.inflight.claim(key, 60_000); // settle released the mark
    expect(free).toBeTypeOf('string');
    await b.inflight.release(key, free as string);
  });

  it('answers an accepted recipient without claiming its mark', async () => {
    const key = randomUUID();
    await a.put(key, 'id-known', 60_000);
    expect(await b.turn(key, 60_000)).toEqual({ kind: 'accepted', id: 'id-known' });
    const free = await a.inflight.claim(key, 60_000);
    expect(free).toBeTypeOf('string');
    await a.inflight.release(key, free as string);
  });

  it('settle frees only its own mark: one that expired and was taken by another send stays', async () => {
    const key = randomUUID();
    const first = await a.turn(key, 150);
    await new Promise((resolve) => setTimeout(resolve, 300));
    const second = await b.turn(key, 60_000);
    expect(second.kind).toBe('mine');
    await a.settle(key, first.kind === 'mine' ? first.token : '', 'id-late', 60_000);
    const third = await RedisAcceptedStore.connect({ url: redis.url, keyPrefix });
    try {
      expect(await third.inflight.claim(key, 60_000)).toBeUndefined(); // the second send's mark holds
      expect(await third.get(key)).toBe('id-late');
    } finally {
      await third.close();
    }
  });

  it('makes one Redis command for each end, where claim, get, put and release make four', async () => {
    const key = randomUUID();
    const seen = await commandsSent(redis.url, keyPrefix, async () => {
      const turn = await a.turn(key, 60_000);
      await a.settle(key, turn.kind === 'mine' ? turn.token : '', 'id-counted', 60_000);
    });
    expect(seen).toEqual(['eval', 'eval']);
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

  it('turn and settle fall back as claim, get and put do: memory while Redis is away, then what it wrote away', async () => {
    const own = await startRedisServer();
    const proxy = await startRedisProxy(own.url);
    let errors = 0;
    const store = await RedisAcceptedStore.connect({ url: proxy.url, keyPrefix, commandTimeoutMs: 500, onError: () => (errors += 1) });
    const other = await RedisAcceptedStore.connect({ url: own.url, keyPrefix });
    try {
      await proxy.cut();
      const turn = await store.turn('away', 60_000);
      expect(turn.kind).toBe('mine'); // the mark in memory only
      expect(errors).toBeGreaterThan(0);
      expect(await store.turn('away', 60_000)).toEqual({ kind: 'held' }); // a retry on this replica waits
      await store.settle('away', turn.kind === 'mine' ? turn.token : '', 'id-away', 60_000); // never rejects
      expect(await store.turn('away', 60_000)).toEqual({ kind: 'accepted', id: 'id-away' }); // from memory
      await proxy.restore();
      await untilRedisAnswers(store, () => errors);
      // Redis is back without it: this replica still knows, and leaves no mark behind.
      const before = errors;
      expect(await store.turn('away', 60_000)).toEqual({ kind: 'accepted', id: 'id-away' });
      expect(errors).toBe(before);
      const free = await other.inflight.claim('away', 60_000);
      expect(free).toBeTypeOf('string');
      await other.inflight.release('away', free as string);
    } finally {
      await store.close();
      await other.close();
      await proxy.close();
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
      await untilRedisAnswers(store, () => errors);
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
