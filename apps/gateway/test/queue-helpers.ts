/**
 * Queue-mode test plumbing: a redis-server with AOF on (`appendonly yes`,
 * `appendfsync always`, the setting the README asks for; testkit's), a queue
 * key, and the environment of a gateway in queue mode.
 */
import { startPersistentRedisServer, type PersistentRedis, type TestRedis } from '@cakemail-smtp/testkit';

/** The queue's Redis in these tests: AOF on, `appendfsync always` (testkit). */
export type AofRedis = PersistentRedis;
export const startAofRedis = (): Promise<AofRedis> => startPersistentRedisServer();

/** A queue key ring of one key, as `openssl rand -base64 32` gives it. */
export const QUEUE_KEY = Buffer.from('0123456789abcdef0123456789abcdef').toString('base64');

/** The environment of a gateway in queue mode on `redis` (the lockout key is required with REDIS_URL). */
export function queueEnv(redis: TestRedis, mode: 'fallback' | 'always'): Record<string, string> {
  return {
    REDIS_URL: redis.url,
    AUTH_LOCKOUT_KEY: 'queue-mode-test-lockout-key-0123456789',
    QUEUE_MODE: mode,
    QUEUE_ENCRYPTION_KEY: QUEUE_KEY,
    QUEUE_RETRY_BASE_MS: '200',
    QUEUE_RETRY_MAX_MS: '1000',
  };
}

/** Polls `check` until it is true; generous by default, for a loaded machine. */
export async function eventually(check: () => boolean | Promise<boolean>, timeoutMs = 60_000, what = 'condition'): Promise<void> {
  const start = Date.now();
  while (!(await check())) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
