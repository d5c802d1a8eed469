/** What the queue's durability promise needs from Redis, checked at start. */
import type { Redis } from 'ioredis';

export interface RedisCheck {
  /** `yes` / `no`, or `unknown` when CONFIG GET is refused (managed Redis). */
  readonly appendonly: string;
  readonly appendfsync: string;
  readonly maxmemoryPolicy: string;
  /** Operator-facing warnings; empty when everything could be confirmed. */
  readonly warnings: readonly string[];
}

async function configGet(redis: Redis, name: string): Promise<string> {
  try {
    const reply = (await redis.call('CONFIG', 'GET', name)) as unknown;
    if (Array.isArray(reply) && typeof reply[1] === 'string') return reply[1];
    return 'unknown';
  } catch {
    return 'unknown';
  }
}

export async function checkRedis(redis: Redis): Promise<RedisCheck> {
  const [appendonly, appendfsync, maxmemoryPolicy] = await Promise.all([
    configGet(redis, 'appendonly'),
    configGet(redis, 'appendfsync'),
    configGet(redis, 'maxmemory-policy'),
  ]);
  const warnings: string[] = [];
  if (appendonly === 'unknown') {
    warnings.push('cannot confirm that Redis persistence is on (CONFIG GET appendonly refused): queued mail survives a Redis restart only with appendonly yes');
  } else if (appendonly !== 'yes') {
    warnings.push('Redis runs without AOF (appendonly no): queued mail is lost if Redis restarts; set appendonly yes');
  }
  if (maxmemoryPolicy === 'unknown') {
    warnings.push('cannot confirm the Redis eviction policy (CONFIG GET maxmemory-policy refused): it must be noeviction');
  } else if (maxmemoryPolicy !== 'noeviction') {
    warnings.push(`Redis maxmemory-policy is ${maxmemoryPolicy}: Redis may evict queued mail under memory pressure; set noeviction`);
  }
  return { appendonly, appendfsync, maxmemoryPolicy, warnings };
}
