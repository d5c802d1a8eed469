/**
 * The "already accepted" store on Redis (REDIS_URL), shared by every replica:
 * a client's retry after a 4xx may land on another replica behind the load
 * balancer, and must still not send again to the recipients Cakemail accepted.
 *
 * One key per (message, recipient) with the Cakemail id as value and a TTL.
 * Commands fail fast (no offline queue, a command timeout): the relay treats a
 * store error as "not known", sends, and logs that a retry may send again. It
 * never holds a message back because Redis is away.
 */
import { Redis } from 'ioredis';
import type { AcceptedStore } from './accepted-store.js';

export interface RedisAcceptedStoreOptions {
  /** `redis://` or `rediss://` URL. */
  readonly url: string;
  /** Prefix of every key. Default `smtp-gateway:accepted`. */
  readonly keyPrefix?: string;
  /** A command slower than this fails. Default 1000 ms. */
  readonly commandTimeoutMs?: number;
  /** The first connection must be ready within this. Default 5000 ms. */
  readonly connectTimeoutMs?: number;
  /** Told about connection errors (never with the URL, which may hold a password). */
  readonly onError?: (err: unknown) => void;
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
    const connectTimeoutMs = options.connectTimeoutMs ?? 5000;
    const client = new Redis(options.url, {
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      commandTimeout: options.commandTimeoutMs ?? 1000,
      connectTimeout: connectTimeoutMs,
    });
    client.on('error', (err: unknown) => options.onError?.(err));
    try {
      await client.connect();
    } catch (err) {
      client.disconnect();
      throw new Error(`Redis is not reachable for the accepted-recipient store: ${(err as Error).message}`, { cause: err });
    }
    return new RedisAcceptedStore(client, options.keyPrefix ?? 'smtp-gateway:accepted');
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
