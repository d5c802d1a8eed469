/**
 * Brute-force lockout across connections, over both stores: memory, and Redis
 * (a redis-server of our own, or REDIS_URL). Every Redis test uses its own
 * key prefix, so a shared REDIS_URL needs no flushing.
 */
import { createHash, createHmac, randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  createMemoryAuthLimiter,
  createRedisAuthLimiter,
  usernameHash,
  type AuthLimiter,
  type AuthLimiterOperation,
  type AuthLimiterOptions,
} from '../src/auth-limiter/index.js';
import { createAuthLimiter, limiterSettings, memoryCounters } from '../src/auth-limiter/limiter.js';
import { clientKey } from '../src/client-address.js';
import { startRedisProxy, testRedis, type RedisProxy, type TestRedis } from '@cakemail-smtp/testkit';
import { testAuthLimits as LIMITS } from './helpers.js';

const USER = 'customer@example.com';
const PASSWORD = 'right password';
const IP = '203.0.113.7';
const OTHER_IP = '198.51.100.20';
/** What AUTH_LOCKOUT_KEY holds: at least 32 bytes. */
const KEY = 'test-lockout-key-0123456789abcdef0123456789';

let redis: TestRedis;
beforeAll(async () => {
  redis = await testRedis();
});
afterAll(async () => {
  await redis.stop();
});

const open: Array<{ close(): Promise<void> }> = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((o) => o.close()));
});
function track<T extends { close(): Promise<void> }>(thing: T): T {
  open.push(thing);
  return thing;
}

const prefix = (): string => `test:${randomUUID()}`;

/**
 * The caller's side, as the AUTH policy does it: check first and refuse a lock
 * with 454 without looking at the password, then report the outcome.
 */
async function login(limiter: AuthLimiter, username: string, ip: string, password: string): Promise<number> {
  const lock = await limiter.check(username, ip);
  if (lock.locked) return 454;
  if (username.trim().toLowerCase() === USER && password === PASSWORD) {
    await limiter.succeed(username, ip);
    return 235;
  }
  await limiter.fail(username, ip);
  return 535;
}

async function failTimes(limiter: AuthLimiter, times: number, username: string, ip: string): Promise<void> {
  for (let i = 0; i < times; i++) await limiter.fail(username, ip);
}

interface Store {
  readonly name: string;
  make(options?: Partial<AuthLimiterOptions>): Promise<AuthLimiter>;
}

const stores: Store[] = [
  { name: 'memory', make: async (options) => track(createMemoryAuthLimiter({ ...LIMITS, ...options })) },
  {
    name: 'redis',
    make: async (options) => track(await createRedisAuthLimiter({ ...LIMITS, usernameKey: KEY, ...options, url: redis.url, keyPrefix: prefix() })),
  },
];

describe.each(stores)('$name store', ({ make }) => {
  it('locks the (username, IP) pair at exactly the 10th failure, not the 9th', async () => {
    const limiter = await make();
    await failTimes(limiter, 9, USER, IP);
    expect(await limiter.check(USER, IP)).toEqual({ locked: false });
    await limiter.fail(USER, IP);
    const lock = await limiter.check(USER, IP);
    expect(lock).toMatchObject({ locked: true, scope: 'pair' });
    expect(lock.locked && lock.retryAfterMs).toBeGreaterThan(14 * 60_000);
    expect(lock.locked && lock.retryAfterMs).toBeLessThanOrEqual(15 * 60_000);
    // Only the pair: the IP is not locked for other usernames.
    expect(await limiter.check('someone-else@example.com', IP)).toEqual({ locked: false });
  });

  it('refuses the right password while the pair is locked, and not from another IP', async () => {
    const limiter = await make();
    for (let i = 0; i < 10; i++) expect(await login(limiter, USER, IP, 'guess')).toBe(535);
    expect(await login(limiter, USER, IP, PASSWORD)).toBe(454);
    expect(await login(limiter, USER, IP, PASSWORD)).toBe(454);
    // The customer on their own address is not locked out by the attacker.
    expect(await login(limiter, USER, OTHER_IP, PASSWORD)).toBe(235);
  });

  it('locks the IP at 30 failures across usernames, for every username, and no other IP', async () => {
    const limiter = await make();
    // 29 usernames, one failure each: no pair is near its limit.
    for (let i = 0; i < 29; i++) await limiter.fail(`user${i}@example.com`, IP);
    expect(await limiter.check('fresh@example.com', IP)).toEqual({ locked: false });
    await limiter.fail('user29@example.com', IP);
    expect(await limiter.check('fresh@example.com', IP)).toMatchObject({ locked: true, scope: 'ip' });
    expect(await login(limiter, USER, IP, PASSWORD)).toBe(454);
    expect(await login(limiter, USER, OTHER_IP, PASSWORD)).toBe(235);
  });

  it('counts usernames case-insensitively and trimmed, and IPv4-mapped IPv6 as IPv4', async () => {
    const limiter = await make();
    const spellings = ['Customer@Example.com', ' CUSTOMER@EXAMPLE.COM ', 'customer@example.com'];
    const ips = ['::ffff:203.0.113.7', IP];
    for (let i = 0; i < 10; i++) await limiter.fail(spellings[i % 3] ?? USER, ips[i % 2] ?? IP);
    expect(await limiter.check('cUsToMeR@eXaMpLe.CoM', IP)).toMatchObject({ locked: true, scope: 'pair' });
    expect(await limiter.check(USER, '::FFFF:203.0.113.7')).toMatchObject({ locked: true, scope: 'pair' });
  });

  it('forgets the pair on success, but not the IP', async () => {
    const limiter = await make();
    for (let i = 0; i < 9; i++) expect(await login(limiter, USER, IP, 'guess')).toBe(535);
    expect(await login(limiter, USER, IP, PASSWORD)).toBe(235);
    // Without the reset the 10th failure would lock the pair.
    for (let i = 0; i < 9; i++) expect(await login(limiter, USER, IP, 'guess')).toBe(535);
    expect(await limiter.check(USER, IP)).toEqual({ locked: false });
    // The IP has 18 failures: 11 more is 29, one more locks it.
    for (let i = 0; i < 11; i++) await limiter.fail(`other${i}@example.com`, IP);
    expect(await limiter.check(USER, IP)).toEqual({ locked: false });
    await limiter.fail('other11@example.com', IP);
    expect(await limiter.check(USER, IP)).toMatchObject({ locked: true, scope: 'ip' });
  });

  it('unlocks when the window has passed', async () => {
    const limiter = await make({ windowMs: 1000 });
    await failTimes(limiter, 10, USER, IP);
    const lock = await limiter.check(USER, IP);
    expect(lock).toMatchObject({ locked: true, scope: 'pair' });
    const retryAfterMs = lock.locked ? lock.retryAfterMs : 0;
    expect(retryAfterMs).toBeGreaterThan(0);
    expect(retryAfterMs).toBeLessThanOrEqual(1000);
    await sleep(retryAfterMs + 150);
    expect(await login(limiter, USER, IP, PASSWORD)).toBe(235);
  });

  it('locks for a whole window from the failure that reached the limit', async () => {
    const limiter = await make({ windowMs: 2000 });
    await failTimes(limiter, 9, USER, IP);
    await sleep(1200);
    await limiter.fail(USER, IP);
    const lock = await limiter.check(USER, IP);
    // What was left of the first window is about 800 ms; the lock is a new window.
    expect(lock.locked && lock.retryAfterMs).toBeGreaterThan(1500);
  });

  it('reports the longer lock when both the pair and the IP are locked', async () => {
    const limiter = await make({ pairLimit: 2, ipLimit: 2, windowMs: 2000 });
    await limiter.fail('other@example.com', IP);
    await limiter.fail(USER, IP);
    expect(await limiter.check(USER, IP)).toMatchObject({ locked: true, scope: 'ip' });
    await sleep(1100);
    // The pair locks later, so its lock ends later.
    await limiter.fail(USER, IP);
    const lock = await limiter.check(USER, IP);
    expect(lock).toMatchObject({ locked: true, scope: 'pair' });
    expect(lock.locked && lock.retryAfterMs).toBeGreaterThan(1500);
    expect(await limiter.check('other@example.com', IP)).toMatchObject({ locked: true, scope: 'ip' });
  });

  it('applies its own limits', async () => {
    const limiter = await make({ pairLimit: 2, ipLimit: 3 });
    await failTimes(limiter, 2, USER, IP);
    expect(await limiter.check(USER, IP)).toMatchObject({ locked: true, scope: 'pair' });
    await limiter.fail('other@example.com', IP);
    expect(await limiter.check('third@example.com', IP)).toMatchObject({ locked: true, scope: 'ip' });
  });
});

describe('options', () => {
  it.each([{ pairLimit: 0 }, { ipLimit: -1 }, { windowMs: 1.5 }, { pairLimit: Number.NaN }])('refuses %o', (options) => {
    expect(() => createMemoryAuthLimiter({ ...LIMITS, ...options })).toThrow(RangeError);
  });

  it('refuses a username key under 32 bytes, without showing it', () => {
    const short = 'k'.repeat(31);
    expect(() => createMemoryAuthLimiter({ ...LIMITS, usernameKey: short })).toThrow('the username key must be at least 32 bytes, got 31');
    expect(() => createMemoryAuthLimiter({ ...LIMITS, usernameKey: Buffer.alloc(32) })).not.toThrow();
  });
});

describe('keys', () => {
  it('folds IPv4-mapped IPv6 onto IPv4, and counts IPv6 by its /64', () => {
    expect(clientKey('::ffff:192.0.2.1')).toBe('192.0.2.1');
    expect(clientKey('2001:DB8::1')).toBe('2001:db8:0:0::/64');
    expect(clientKey('2001:db8:0:0:ffff::2')).toBe('2001:db8:0:0::/64');
  });

  it('hashes the normalized username with HMAC-SHA-256 under the key, 32 hex characters', () => {
    const expected = createHmac('sha256', KEY).update(USER).digest('hex').slice(0, 32);
    expect(usernameHash(' Customer@Example.COM', KEY)).toBe(expected);
    expect(usernameHash(USER, `${KEY}!`)).not.toBe(expected);
    expect(expected).not.toBe(createHash('sha256').update(USER).digest('hex').slice(0, 32));
  });
});

describe('memory store', () => {
  it('drops counters when their window ends, so an attack from many IPs does not pile up', async () => {
    const settings = limiterSettings({ ...LIMITS, windowMs: 1000 });
    const counters = memoryCounters(settings, 'auth');
    const limiter = track(createAuthLimiter(settings, counters, undefined, async () => {}));
    for (let i = 0; i < 200; i++) await limiter.fail(USER, `10.0.${i >> 8}.${i & 255}`);
    const held = () => [counters.pair, counters.ip].map((c) => (c as unknown as { dump(): { storage: unknown[] } }).dump().storage.length);
    expect(held()).toEqual([200, 200]);
    await sleep(1300);
    expect(held()).toEqual([0, 0]);
  });
});

describe('redis store', () => {
  function recorder(): { errors: AuthLimiterOperation[]; onError: (err: unknown, during: AuthLimiterOperation) => void } {
    const errors: AuthLimiterOperation[] = [];
    return { errors, onError: (_err, during) => errors.push(during) };
  }

  it('keys by IP and the username HMAC, never the username nor its plain SHA-256, each with a TTL of the window', async () => {
    const keyPrefix = prefix();
    const limiter = track(await createRedisAuthLimiter({ ...LIMITS, url: redis.url, keyPrefix, usernameKey: KEY }));
    await limiter.fail('Customer@Example.com', `::ffff:${IP}`);
    const client = track({ redis: new Redis(redis.url), close: async () => void (await client.redis.quit()) });
    const keys = (await client.redis.keys(`${keyPrefix}:*`)).sort();
    expect(keys).toEqual([`${keyPrefix}:ip:${IP}`, `${keyPrefix}:pair:${usernameHash(USER, KEY)}@${IP}`]);
    expect(keys.join(' ')).not.toMatch(/customer|example/i);
    // A plain hash can be tested against guessed usernames by whoever reads Redis.
    const sha256 = createHash('sha256').update(USER).digest('hex');
    expect(keys.join(' ')).not.toContain(sha256.slice(0, 16));
    for (const key of keys) {
      const ttl = await client.redis.pttl(key);
      expect(ttl).toBeGreaterThan(14 * 60_000);
      expect(ttl).toBeLessThanOrEqual(15 * 60_000);
    }
  });

  it('shares counts between replicas on one Redis', async () => {
    const keyPrefix = prefix();
    const a = track(await createRedisAuthLimiter({ ...LIMITS, url: redis.url, keyPrefix, usernameKey: KEY }));
    const b = track(await createRedisAuthLimiter({ ...LIMITS, url: redis.url, keyPrefix, usernameKey: KEY }));
    await failTimes(a, 5, USER, IP);
    await failTimes(b, 4, USER, IP);
    expect(await a.check(USER, IP)).toEqual({ locked: false });
    await b.fail(USER, IP);
    expect(await a.check(USER, IP)).toMatchObject({ locked: true, scope: 'pair' });
    expect(await b.check(USER, IP)).toMatchObject({ locked: true, scope: 'pair' });
    // And so does success.
    await b.succeed(USER, IP);
    expect(await a.check(USER, IP)).toEqual({ locked: false });
  });

  it('fails open when Redis goes away: check() resolves unlocked, counting goes on in memory, Redis is used again when back', async () => {
    const proxy: RedisProxy = track(await startRedisProxy(redis.url));
    const { errors, onError } = recorder();
    const limiter = track(await createRedisAuthLimiter({ ...LIMITS, url: proxy.url, keyPrefix: prefix(), onError, usernameKey: KEY }));
    await failTimes(limiter, 3, USER, IP);
    expect(errors).toEqual([]);

    await proxy.cut();
    const started = Date.now();
    expect(await limiter.check(USER, IP)).toEqual({ locked: false });
    expect(Date.now() - started).toBeLessThan(500);
    expect(errors).toContain('check');

    // Per-replica protection while Redis is down: 10 failures seen here lock.
    await failTimes(limiter, 10, USER, IP);
    expect(errors).toContain('fail');
    expect(await limiter.check(USER, IP)).toMatchObject({ locked: true, scope: 'pair' });

    await proxy.restore();
    // Back on Redis, which holds the 3 failures from before the outage.
    const deadline = Date.now() + 10_000;
    for (;;) {
      errors.length = 0;
      const lock = await limiter.check(USER, IP);
      if (!errors.includes('check')) {
        expect(lock).toEqual({ locked: false });
        break;
      }
      expect(Date.now()).toBeLessThan(deadline);
      await sleep(100);
    }
    await failTimes(limiter, 7, USER, IP);
    expect(await limiter.check(USER, IP)).toMatchObject({ locked: true, scope: 'pair' });
  });

  it('fails open on a Redis that stops answering, within the command timeout', async () => {
    const proxy = track(await startRedisProxy(redis.url));
    const { errors, onError } = recorder();
    const limiter = track(await createRedisAuthLimiter({ ...LIMITS, url: proxy.url, keyPrefix: prefix(), onError, commandTimeoutMs: 200, usernameKey: KEY }));
    proxy.hang();
    const started = Date.now();
    expect(await limiter.check(USER, IP)).toEqual({ locked: false });
    await limiter.fail(USER, IP);
    await limiter.succeed(USER, IP);
    expect(Date.now() - started).toBeLessThan(2000);
    expect(errors).toEqual(expect.arrayContaining(['check', 'fail', 'succeed']));
  });

  it('does not start on a Redis it cannot reach', async () => {
    const proxy = await startRedisProxy(redis.url);
    await proxy.cut();
    await expect(createRedisAuthLimiter({ ...LIMITS, url: proxy.url, connectTimeoutMs: 2000, usernameKey: KEY })).rejects.toThrow(
      /^Redis is not reachable: connect ECONNREFUSED/,
    );
  });
});
