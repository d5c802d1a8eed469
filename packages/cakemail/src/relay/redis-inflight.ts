/**
 * In-flight marks on Redis, shared by every replica: `SET key token NX PX ttl` claims, a
 * compare-and-delete script releases (only the owner's mark). Every mark this replica makes is
 * made in its memory first, and a claim Redis cannot answer stays in memory only, so a retry on
 * the same replica is held back while Redis is away and after it is back. Never rejects.
 */
import type { Redis } from 'ioredis';
import { MemoryInflightMarks, type InflightMarks } from './inflight.js';

const RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end";

/** A TTL in whole milliseconds for `PX`, at least 1. */
export function pxOf(ttlMs: number): number {
  return Math.max(1, Math.round(ttlMs));
}

export class RedisInflightMarks implements InflightMarks {
  readonly #client: Redis;
  readonly #prefix: string;
  readonly #onError: (err: unknown) => void;
  readonly #memory = new MemoryInflightMarks();

  constructor(client: Redis, prefix: string, onError: (err: unknown) => void) {
    this.#client = client;
    this.#prefix = prefix;
    this.#onError = onError;
  }

  async claim(key: string, ttlMs: number): Promise<string | undefined> {
    // Memory first: a mark this replica made while Redis was away exists nowhere else, and a
    // retry on this replica must still find it once Redis is back.
    const token = await this.#memory.claim(key, ttlMs);
    if (token === undefined) return undefined;
    let answer: string | null;
    try {
      answer = await this.#client.set(this.redisKey(key), token, 'PX', pxOf(ttlMs), 'NX');
    } catch (err) {
      this.#onError(err);
      return token; // Redis is away: the mark in memory holds back retries on this replica
    }
    if (answer === 'OK') return token;
    await this.#memory.release(key, token); // another replica holds it
    return undefined;
  }

  /** The Redis key of `key`'s mark (RedisAcceptedStore's one-round-trip scripts write it). */
  redisKey(key: string): string {
    return `${this.#prefix}:${key}`;
  }

  /** The first step of a claim: the mark in this replica's memory only. */
  claimHere(key: string, ttlMs: number): Promise<string | undefined> {
    return this.#memory.claim(key, ttlMs);
  }

  /** The mark in this replica's memory released, Redis's left as it is. */
  releaseHere(key: string, token: string): Promise<void> {
    return this.#memory.release(key, token);
  }

  async release(key: string, token: string): Promise<void> {
    await this.#memory.release(key, token);
    try {
      await this.#client.eval(RELEASE, 1, this.redisKey(key), token);
    } catch (err) {
      this.#onError(err);
    }
  }
}
