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
 * Keys (the username only as a hash, see keys.ts), each with a TTL of one window:
 *   <keyPrefix>:pair:<sha256(username)[0..32]>@<ip>   failures of the pair
 *   <keyPrefix>:ip:<ip>                               failures from the IP
 */
import { Redis } from 'ioredis';
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

export interface RedisAuthLimiterOptions extends AuthLimiterOptions {
  /** `redis://` or `rediss://` URL, e.g. REDIS_URL. */
  readonly url: string;
  /** Prefix of every key; replicas that share counts share it. Default `smtp-gateway:auth`. */
  readonly keyPrefix?: string;
  /** A command slower than this fails (and falls back to memory). Default 1000 ms. */
  readonly commandTimeoutMs?: number;
  /** The first connection must be ready within this. Default 5000 ms. */
  readonly connectTimeoutMs?: number;
}

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
 * Connects, and rejects if Redis is not ready within connectTimeoutMs, so a
 * wrong REDIS_URL stops the start. After that, Redis errors never reject.
 */
export async function createRedisAuthLimiter(options: RedisAuthLimiterOptions): Promise<AuthLimiter> {
  const settings = limiterSettings(options);
  const keyPrefix = options.keyPrefix ?? defaultRedisKeyPrefix;
  const connectTimeoutMs = options.connectTimeoutMs ?? 5000;
  const client = new Redis(options.url, {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    commandTimeout: options.commandTimeoutMs ?? 1000,
    connectTimeout: connectTimeoutMs,
  });
  // Without a listener ioredis prints every connection error to the console.
  let lastError: unknown;
  client.on('error', (err: unknown) => {
    lastError = err;
    settings.onError(err, 'redis');
  });
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      client.connect(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`not ready within ${connectTimeoutMs} ms`)), connectTimeoutMs);
      }),
    ]);
  } catch (err) {
    client.disconnect();
    // ioredis rejects with "Connection is closed."; the error event says why.
    const why = lastError ?? err;
    throw new Error(`Redis is not reachable: ${why instanceof Error ? why.message : String(why)}`, { cause: err });
  } finally {
    clearTimeout(timer);
  }

  let closed = false;
  return createAuthLimiter(settings, redisCounters(settings, client, keyPrefix), memoryCounters(settings, keyPrefix), async () => {
    if (closed) return;
    closed = true;
    if (client.status === 'ready') {
      try {
        await client.quit();
        return;
      } catch {
        // fall through to a hard disconnect
      }
    }
    client.disconnect();
  });
}
