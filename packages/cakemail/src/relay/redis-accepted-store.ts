/**
 * The "already accepted" store on Redis (REDIS_URL), shared by every replica:
 * a client's retry after a 4xx may land on another replica behind the load
 * balancer, and must still not send again to the recipients Cakemail accepted.
 *
 * One key per (message, recipient) with the Cakemail id as value and a TTL.
 * Commands fail fast (smtp-core's connectRedis). Every write also goes to this
 * replica's memory (write-through). A read Redis cannot answer is answered from
 * that memory; a read Redis answers "unknown" still finds what this replica
 * wrote while Redis was away (Redis came back without it). So a retry on the
 * same replica never sends again what was accepted; a retry on another replica
 * sends again to recipients accepted during the outage (the cross-replica
 * window, see the README). What Redis holds wins otherwise, so a delete made by
 * another replica is seen. A Redis error goes to `onError` and never rejects:
 * the store never holds a message back.
 *
 * The in-flight marks (`inflight`) share the connection and fall back the same way. `turn` and
 * `settle` do a send's two ends (read and claim; write and release) in one round trip each.
 * `connect` opens a client of the store's own; `using` takes one shared with
 * other stores, which its maker closes.
 */
import type { Redis } from 'ioredis';
import { connectRedis, type RedisConnectOptions } from '@cakemail-smtp/smtp-core';
import { MemoryAcceptedStore, type MarkingStore, type Turn } from './accepted-store.js';
import { pxOf, RedisInflightMarks } from './redis-inflight.js';

/** The accepted id (KEYS[1]) if any, else the mark (KEYS[2]) claimed for ARGV[1] with TTL ARGV[2] ms if free. */
const TURN = `
local id = redis.call('GET', KEYS[1])
if id then return {1, id} end
if redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2], 'NX') then return {2} end
return {3}
`;

/** The accepted id ARGV[1] written with TTL ARGV[2] ms, and the mark released if it is still ARGV[3]'s. */
const SETTLE = `
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
if redis.call('GET', KEYS[2]) == ARGV[3] then redis.call('DEL', KEYS[2]) end
return 1
`;

export interface RedisAcceptedStoreSettings {
  /** Prefix of every key. Default `smtp-gateway:accepted`; in-flight marks use `<prefix>:inflight`. */
  readonly keyPrefix?: string;
  /** Most entries kept in this replica's memory. Default 100 000. */
  readonly memoryEntries?: number;
  /** Told about every Redis error; the store never rejects. */
  readonly onError?: (err: unknown) => void;
}

export interface RedisAcceptedStoreOptions extends RedisConnectOptions, RedisAcceptedStoreSettings {}

export class RedisAcceptedStore implements MarkingStore {
  readonly #client: Redis;
  readonly #prefix: string;
  /** Every write. */
  readonly #memory: MemoryAcceptedStore;
  /** The writes Redis did not take. */
  readonly #unsynced: MemoryAcceptedStore;
  readonly #onError: (err: unknown) => void;
  /** In-flight marks on the same Redis, with a per-replica fallback. */
  readonly inflight: RedisInflightMarks;
  /** The client is this store's own (connect), closed by close(). */
  readonly #ownsClient: boolean;

  private constructor(client: Redis, ownsClient: boolean, options: RedisAcceptedStoreSettings) {
    this.#client = client;
    this.#ownsClient = ownsClient;
    const prefix = options.keyPrefix ?? 'smtp-gateway:accepted';
    this.#prefix = prefix;
    const bound = options.memoryEntries === undefined ? {} : { maxEntries: options.memoryEntries };
    this.#memory = new MemoryAcceptedStore(bound);
    this.#unsynced = new MemoryAcceptedStore(bound);
    const hook = options.onError;
    this.#onError = (err) => {
      try {
        hook?.(err);
      } catch {
        // a throwing hook must not break the never-rejects promise
      }
    };
    this.inflight = new RedisInflightMarks(client, `${prefix}:inflight`, this.#onError);
  }

  /** Connects; rejects when Redis is not ready within connectTimeoutMs, so a wrong REDIS_URL stops the start. */
  static async connect(options: RedisAcceptedStoreOptions): Promise<RedisAcceptedStore> {
    const { keyPrefix: _keyPrefix, memoryEntries: _memoryEntries, ...connect } = options;
    return new RedisAcceptedStore(await connectRedis(connect), true, options);
  }

  /** On a connected client shared with other stores (connectRedis): its errors go to onError too, and close() leaves it open. */
  static using(client: Redis, options: RedisAcceptedStoreSettings = {}): RedisAcceptedStore {
    const store = new RedisAcceptedStore(client, false, options);
    client.on('error', (err: unknown) => store.#onError(err));
    return store;
  }

  /** The Redis key of the entry `key`. */
  #keyOf(key: string): string {
    return `${this.#prefix}:${key}`;
  }

  async get(key: string): Promise<string | undefined> {
    let shared: string | null;
    try {
      shared = await this.#client.get(this.#keyOf(key));
    } catch (err) {
      this.#onError(err);
      return this.#memory.get(key);
    }
    return shared ?? this.#unsynced.get(key);
  }

  async put(key: string, cakemailId: string, ttlMs: number): Promise<void> {
    await this.#memory.put(key, cakemailId, ttlMs);
    try {
      await this.#client.set(this.#keyOf(key), cakemailId, 'PX', pxOf(ttlMs));
      await this.#unsynced.delete(key);
    } catch (err) {
      this.#onError(err);
      await this.#unsynced.put(key, cakemailId, ttlMs);
    }
  }

  /**
   * `inflight.claim` then `get`, in one round trip and atomic. The fallbacks are theirs: the mark is
   * made in this replica's memory first; while Redis is away the mark stays there and the read
   * is this replica's memory; a recipient Redis does not know may still be one this replica
   * wrote while Redis was away.
   */
  async turn(key: string, ttlMs: number): Promise<Turn> {
    const token = await this.inflight.claimHere(key, ttlMs);
    if (token === undefined) return { kind: 'held' };
    let answer: [number, string?];
    try {
      answer = (await this.#client.eval(TURN, 2, this.#keyOf(key), this.inflight.redisKey(key), token, pxOf(ttlMs))) as [number, string?];
    } catch (err) {
      this.#onError(err);
      const known = await this.#memory.get(key);
      if (known === undefined) return { kind: 'mine', token };
      await this.inflight.releaseHere(key, token);
      return { kind: 'accepted', id: known };
    }
    const [outcome, id] = answer;
    if (outcome === 1 && id !== undefined) {
      await this.inflight.releaseHere(key, token);
      return { kind: 'accepted', id };
    }
    if (outcome !== 2) {
      await this.inflight.releaseHere(key, token); // another replica holds it
      return { kind: 'held' };
    }
    const unsynced = await this.#unsynced.get(key);
    if (unsynced === undefined) return { kind: 'mine', token };
    await this.inflight.release(key, token);
    return { kind: 'accepted', id: unsynced };
  }

  /** `put` then `inflight.release`, in one round trip; the same fallbacks. */
  async settle(key: string, token: string, cakemailId: string, ttlMs: number): Promise<void> {
    await this.#memory.put(key, cakemailId, ttlMs);
    try {
      await this.#client.eval(SETTLE, 2, this.#keyOf(key), this.inflight.redisKey(key), cakemailId, pxOf(ttlMs), token);
      await this.#unsynced.delete(key);
    } catch (err) {
      this.#onError(err);
      await this.#unsynced.put(key, cakemailId, ttlMs);
    }
    await this.inflight.releaseHere(key, token);
  }

  async delete(key: string): Promise<void> {
    await this.#memory.delete(key);
    await this.#unsynced.delete(key);
    try {
      await this.#client.del(this.#keyOf(key));
    } catch (err) {
      this.#onError(err);
    }
  }

  async close(): Promise<void> {
    if (!this.#ownsClient) return;
    await this.#client.quit().catch(() => this.#client.disconnect());
  }
}
