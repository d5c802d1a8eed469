import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testRedis, type TestRedis } from '@cakemail-smtp/testkit';
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
    expect(await b.has('k1')).toBe(true);
    await b.delete('k1');
    expect(await a.has('k1')).toBe(false);
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
