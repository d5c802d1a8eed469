/**
 * In-flight marks on Redis, shared by every replica: `SET key token NX PX ttl` claims, a
 * compare-and-delete script releases (only the owner's mark). Every mark this replica makes is
 * also kept in its memory, and a claim Redis cannot answer is made in memory only, so a retry on
 * the same replica is held back even while Redis is away. Never rejects.
 */
import type { Redis } from 'ioredis';
import { MemoryInflightMarks, newMarkToken, type InflightMarks } from './inflight.js';

const RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end";

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
    const token = newMarkToken();
    const px = Math.max(1, Math.round(ttlMs));
    let answer: string | null;
    try {
      answer = await this.#client.set(`${this.#prefix}:${key}`, token, 'PX', px, 'NX');
    } catch (err) {
      this.#onError(err);
      return this.#memory.claim(key, ttlMs, token);
    }
    if (answer !== 'OK') return undefined;
    this.#memory.set(key, token, ttlMs);
    return token;
  }

  async release(key: string, token: string): Promise<void> {
    await this.#memory.release(key, token);
    try {
      await this.#client.eval(RELEASE, 1, `${this.#prefix}:${key}`, token);
    } catch (err) {
      this.#onError(err);
    }
  }
}
