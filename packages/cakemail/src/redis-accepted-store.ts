/**
 * The "already accepted" store on Redis (REDIS_URL), shared by every replica:
 * a client's retry after a 4xx may land on another replica behind the load
 * balancer, and must still not send again to the recipients Cakemail accepted.
 *
 * One key per (message, recipient) with the Cakemail id as value and a TTL.
 * Commands fail fast (smtp-core's connectRedis): the relay treats a store error
 * as "not known", sends, and logs that a retry may send again. It never holds a
 * message back because Redis is away.
 */
import type { Redis } from 'ioredis';
import { connectRedis, type RedisConnectOptions } from '@cakemail-smtp/smtp-core';
import type { AcceptedStore } from './accepted-store.js';

export interface RedisAcceptedStoreOptions extends RedisConnectOptions {
  /** Prefix of every key. Default `smtp-gateway:accepted`. */
  readonly keyPrefix?: string;
}

export class RedisAcceptedStore implements AcceptedStore {
  readonly #client: Redis;
  readonly #prefix: string;

  private constructor(client: Redis, prefix: string) {
    this.#client = client;
    this.#prefix = prefix;
  }

  /** Connects; rejects when Redis is not ready within connectTimeoutMs, so a wrong REDIS_URL stops the start. */
  static async connect(options: RedisAcceptedStoreOptions): Promise<RedisAcceptedStore> {
    const { keyPrefix, ...connect } = options;
    return new RedisAcceptedStore(await connectRedis(connect), keyPrefix ?? 'smtp-gateway:accepted');
  }

  async has(key: string): Promise<boolean> {
    return (await this.get(key)) !== undefined;
  }

  async get(key: string): Promise<string | undefined> {
    return (await this.#client.get(`${this.#prefix}:${key}`)) ?? undefined;
  }

  async put(key: string, cakemailId: string, ttlMs: number): Promise<void> {
    await this.#client.set(`${this.#prefix}:${key}`, cakemailId, 'PX', Math.max(1, Math.round(ttlMs)));
  }

  async delete(key: string): Promise<void> {
    await this.#client.del(`${this.#prefix}:${key}`);
  }

  async close(): Promise<void> {
    await this.#client.quit().catch(() => this.#client.disconnect());
  }
}
