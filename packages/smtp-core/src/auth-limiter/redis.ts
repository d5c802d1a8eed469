/**
 * The Redis store (REDIS_URL): counters shared by every replica, on
 * rate-limiter-flexible's RateLimiterRedis with an ioredis client.
 *
 * Redis errors fail open. A Redis outage must neither lock every customer out
 * (fail-closed would turn it into a login outage) nor crash or stall a login.
 * So commands fail fast (no offline queue, a command timeout), the error goes
 * to onError, and the operation is done on per-replica memory counters
 * instead: during an outage each replica still locks at the same limits on
 * what it sees itself, and logins go on. The client keeps reconnecting and
 * Redis is used again as soon as it answers; counts kept in memory meanwhile
 * are not copied back.
 *
 * Keys (the username only as an HMAC under usernameKey, see keys.ts), each
 * with a TTL of one window:
 *   <keyPrefix>:pair:<hmac-sha256(key, username)[0..32]>@<ip>   failures of the pair
 *   <keyPrefix>:ip:<ip>                                         failures from the IP
 */
import type { Redis } from 'ioredis';
import { connectRedis, quitRedis } from '../redis.js';
import type { UsernameKey } from './keys.js';
import { RateLimiterRedis } from 'rate-limiter-flexible';
import {
  createAuthLimiter,
  limiterSettings,
  memoryCounters,
  type AuthLimiter,
  type AuthLimiterOptions,
  type Counters,
  type LimiterSettings,
} from './limiter.js';

interface RedisAuthLimiterBase extends AuthLimiterOptions {
  /** Required here: every replica sharing the counters hashes usernames with the same key (AUTH_LOCKOUT_KEY). */
  readonly usernameKey: UsernameKey;
  /** Prefix of every key; replicas that share counts share it. Default `smtp-gateway:auth`. */
  readonly keyPrefix?: string;
}

/** The limiter connects its own client, and close() closes it. */
export interface RedisAuthLimiterUrlOptions extends RedisAuthLimiterBase {
  /** `redis://` or `rediss://` URL, e.g. REDIS_URL. */
  readonly url: string;
  /** A command slower than this fails (and falls back to memory). Default 1000 ms. */
  readonly commandTimeoutMs?: number;
  /** The first connection must be ready within this. Default 5000 ms. */
  readonly connectTimeoutMs?: number;
}

/** The limiter uses a client shared with other stores (from connectRedis); whoever made it closes it. */
export interface RedisAuthLimiterClientOptions extends RedisAuthLimiterBase {
  readonly client: Redis;
}

export type RedisAuthLimiterOptions = RedisAuthLimiterUrlOptions | RedisAuthLimiterClientOptions;

export const defaultRedisKeyPrefix = 'smtp-gateway:auth';

function redisCounters(settings: LimiterSettings, client: Redis, keyPrefix: string): Counters {
  const counter = (points: number, scope: string): RateLimiterRedis =>
    new RateLimiterRedis({
      storeClient: client,
      // ioredis, not node-redis: useRedisPackage is for the `redis` package.
      useRedisPackage: false,
      // Not connected: fail at once instead of waiting for a reconnection.
      rejectIfRedisNotReady: true,
      points,
      duration: settings.windowSec,
      keyPrefix: `${keyPrefix}:${scope}`,
    });
  return { pair: counter(settings.pairLimit, 'pair'), ip: counter(settings.ipLimit, 'ip') };
}

/**
 * With `url`: connects, and rejects if Redis is not ready within
 * connectTimeoutMs, so a wrong REDIS_URL stops the start. With `client`: uses
 * it and leaves it open on close(). After that, Redis errors never reject.
 */
export async function createRedisAuthLimiter(options: RedisAuthLimiterOptions): Promise<AuthLimiter> {
  const settings = limiterSettings(options);
  const keyPrefix = options.keyPrefix ?? defaultRedisKeyPrefix;
  const counters = (client: Redis): Counters => redisCounters(settings, client, keyPrefix);
  if ('client' in options) {
    const { client } = options;
    client.on('error', (err: unknown) => settings.onError(err, 'redis'));
    return createAuthLimiter(settings, counters(client), memoryCounters(settings, keyPrefix), async () => {});
  }
  const client = await connectRedis({
    url: options.url,
    ...(options.commandTimeoutMs === undefined ? {} : { commandTimeoutMs: options.commandTimeoutMs }),
    ...(options.connectTimeoutMs === undefined ? {} : { connectTimeoutMs: options.connectTimeoutMs }),
    onError: (err) => settings.onError(err, 'redis'),
  });

  let closed = false;
  return createAuthLimiter(settings, counters(client), memoryCounters(settings, keyPrefix), async () => {
    if (closed) return;
    closed = true;
    await quitRedis(client);
  });
}
