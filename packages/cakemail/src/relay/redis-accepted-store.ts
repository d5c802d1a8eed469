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
 * The in-flight marks (`inflight`) share the connection and fall back the same way.
 * `connect` opens a client of the store's own; `using` takes one shared with
 * other stores, which its maker closes.
 */
import type { Redis } from 'ioredis';
import { connectRedis, type RedisConnectOptions } from '@cakemail-smtp/smtp-core';
import { MemoryAcceptedStore, type AcceptedStore } from './accepted-store.js';
import { RedisInflightMarks } from './redis-inflight.js';

export interface RedisAcceptedStoreSettings {
  /** Prefix of every key. Default `smtp-gateway:accepted`; in-flight marks use `<prefix>:inflight`. */
  readonly keyPrefix?: string;
  /** Most entries kept in this replica's memory. Default 100 000. */
  readonly memoryEntries?: number;
  /** Told about every Redis error; the store never rejects. */
  readonly onError?: (err: unknown) => void;
}

export interface RedisAcceptedStoreOptions extends RedisConnectOptions, RedisAcceptedStoreSettings {}

export class RedisAcceptedStore implements AcceptedStore {
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

  async get(key: string): Promise<string | undefined> {
    let shared: string | null;
    try {
      shared = await this.#client.get(`${this.#prefix}:${key}`);
    } catch (err) {
      this.#onError(err);
      return this.#memory.get(key);
    }
    return shared ?? this.#unsynced.get(key);
  }

  async put(key: string, cakemailId: string, ttlMs: number): Promise<void> {
    await this.#memory.put(key, cakemailId, ttlMs);
    try {
      await this.#client.set(`${this.#prefix}:${key}`, cakemailId, 'PX', Math.max(1, Math.round(ttlMs)));
      await this.#unsynced.delete(key);
    } catch (err) {
      this.#onError(err);
      await this.#unsynced.put(key, cakemailId, ttlMs);
    }
  }

  async delete(key: string): Promise<void> {
    await this.#memory.delete(key);
    await this.#unsynced.delete(key);
    try {
      await this.#client.del(`${this.#prefix}:${key}`);
    } catch (err) {
      this.#onError(err);
    }
  }

  async close(): Promise<void> {
    if (!this.#ownsClient) return;
    await this.#client.quit().catch(() => this.#client.disconnect());
  }
}
