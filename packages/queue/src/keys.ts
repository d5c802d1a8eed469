/**
 * The queue's own bookkeeping beside BullMQ's keys, all under the same
 * `<prefix>:<name>:` so one hash tag in the prefix keeps them in one Redis
 * Cluster slot. Byte accounting and the index change only through the two
 * scripts below, so a reservation is atomic and a release is idempotent.
 */
import type { Redis } from 'ioredis';

export interface QueueKeys {
  /** Total bytes reserved (string). */
  readonly bytes: string;
  /** id → reserved bytes (hash). */
  readonly sizes: string;
  /** id → queued-at epoch ms (sorted set): depth and oldest age. */
  readonly index: string;
  /** id → the attempt in progress (hash): a leftover entry means a crash mid-attempt. */
  readonly inflight: string;
  /** id → an operator command waiting for a worker, e.g. `bounce` (hash). */
  readonly commands: string;
  /** Attempts cut short by a crash, across all replicas (string counter). */
  readonly duplicates: string;
}

export function queueKeys(prefix: string, name: string): QueueKeys {
  const base = `${prefix}:${name}:gw`;
  return {
    bytes: `${base}:bytes`,
    sizes: `${base}:sizes`,
    index: `${base}:index`,
    inflight: `${base}:inflight`,
    commands: `${base}:commands`,
    duplicates: `${base}:duplicates`,
  };
}

const RESERVE = `
local size = tonumber(ARGV[2])
local max = tonumber(ARGV[3])
local bytes = tonumber(redis.call('GET', KEYS[1]) or '0')
if max > 0 and bytes + size > max then return {0, bytes} end
redis.call('INCRBY', KEYS[1], size)
redis.call('HSET', KEYS[2], ARGV[1], size)
redis.call('ZADD', KEYS[3], ARGV[4], ARGV[1])
return {1, bytes + size}
`;

const RELEASE = `
local size = redis.call('HGET', KEYS[2], ARGV[1])
if size then
  redis.call('HDEL', KEYS[2], ARGV[1])
  redis.call('DECRBY', KEYS[1], size)
end
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('HDEL', KEYS[4], ARGV[1])
redis.call('HDEL', KEYS[5], ARGV[1])
if size then return 1 end
return 0
`;

const BEGIN = `
local previous = redis.call('HGET', KEYS[1], ARGV[1])
local command = redis.call('HGET', KEYS[2], ARGV[1])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return {previous, command}
`;

/**
 * Starts an attempt at `id` in one round trip: notes it in `inflight` (`note`), and answers the
 * note a previous attempt left there (it died mid-attempt) and the operator command waiting for it.
 */
export async function beginAttempt(redis: Redis, keys: QueueKeys, id: string, note: string): Promise<{ previous: string | null; command: string | null }> {
  // A missing field comes back as Lua false, which Redis answers as null (a table stops at nil, not at false).
  const [previous, command] = (await redis.eval(BEGIN, 2, keys.inflight, keys.commands, id, note)) as [string | null, string | null];
  return { previous, command };
}

/** Reserves `size` bytes for `id` unless that would pass `maxBytes` (0 = no cap). */
export async function reserve(
  redis: Redis,
  keys: QueueKeys,
  id: string,
  size: number,
  maxBytes: number,
  queuedAt: number,
): Promise<{ ok: boolean; bytes: number }> {
  const [ok, bytes] = (await redis.eval(RESERVE, 3, keys.bytes, keys.sizes, keys.index, id, size, maxBytes, queuedAt)) as [
    number,
    number,
  ];
  return { ok: ok === 1, bytes };
}

/** Forgets `id`: its bytes, index entry, attempt marker and commands. Safe to repeat. */
export async function release(redis: Redis, keys: QueueKeys, id: string): Promise<boolean> {
  const released = await redis.eval(RELEASE, 5, keys.bytes, keys.sizes, keys.index, keys.inflight, keys.commands, id);
  return released === 1;
}
