/**
 * One way to connect to Redis (REDIS_URL) for every store the gateway keeps
 * there: commands fail fast (no offline queue, a command timeout) so a Redis
 * that is away never holds up a login or a message, and the first connection
 * must be ready in time, so a wrong REDIS_URL stops the start. Errors go to
 * `onError` only (ioredis would print them), never with the URL, which may
 * hold a password.
 */
import { Redis } from 'ioredis';

export interface RedisConnectOptions {
  /** `redis://` or `rediss://` URL. */
  readonly url: string;
  /** A command slower than this fails. Default 1000 ms. */
  readonly commandTimeoutMs?: number;
  /** The first connection must be ready within this. Default 5000 ms. */
  readonly connectTimeoutMs?: number;
  readonly onError?: (err: unknown) => void;
}

export async function connectRedis(options: RedisConnectOptions): Promise<Redis> {
  const connectTimeoutMs = options.connectTimeoutMs ?? 5000;
  const client = new Redis(options.url, {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    commandTimeout: options.commandTimeoutMs ?? 1000,
    connectTimeout: connectTimeoutMs,
  });
  let lastError: unknown;
  client.on('error', (err: unknown) => {
    lastError = err;
    options.onError?.(err);
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
  return client;
}

/** Closes a client: QUIT when it is connected (pending replies first), else at once. Never rejects. */
export async function quitRedis(client: Redis): Promise<void> {
  if (client.status === 'ready') {
    try {
      await client.quit();
      return;
    } catch {
      // fall through to a hard disconnect
    }
  }
  client.disconnect();
}
