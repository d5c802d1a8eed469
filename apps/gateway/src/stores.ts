/**
 * Where the gateway keeps what replicas share: the lockout counters, the
 * accepted-recipient store and the in-flight marks. With REDIS_URL, one Redis
 * client serves all three (written through to memory, used while Redis is
 * away); without it, each replica keeps them in memory. The URL may hold a
 * password: never logged. At most one warning every 30 s while Redis is away.
 */
import {
  connectRedis,
  createMemoryAuthLimiter,
  createRedisAuthLimiter,
  quitRedis,
  type AuthLimiter,
} from '@cakemail-smtp/smtp-core';
import { RedisAcceptedStore } from '@cakemail-smtp/cakemail';
import type { Config } from './config/index.js';
import type { Logger } from './logger.js';

export interface Stores {
  readonly authLimiter: AuthLimiter;
  /** With Redis only: the relay keeps these in memory otherwise. */
  readonly accepted?: RedisAcceptedStore;
  /** Closes the stores, then the Redis client. */
  close(): Promise<void>;
}

export interface StoresOptions {
  readonly lockout: Config['lockout'];
  readonly redis: Config['redis'];
  /** The accepted-recipient store is the relay's: none for a replaced backend (tests). */
  readonly accepted: boolean;
  readonly logger: Logger;
}

export async function openStores(options: StoresOptions): Promise<Stores> {
  const { logger, lockout } = options;
  let lastWarning = 0;
  const warn = (store: string, err: unknown): void => {
    if (Date.now() - lastWarning < 30_000) return;
    lastWarning = Date.now();
    logger.warn({ store, err: err instanceof Error ? err.message : String(err) }, 'Redis unavailable');
  };
  const lockoutWarning = (err: unknown): void => warn('lockout (counting in memory meanwhile)', err);
  const acceptedWarning = (err: unknown): void => warn('accepted (answering from memory meanwhile)', err);
  const ready = (store: 'redis' | 'memory'): void =>
    logger.info({ store }, 'lockout counters, accepted-recipient store and in-flight marks');

  if (!options.redis) {
    const authLimiter = createMemoryAuthLimiter({ ...lockout, onError: lockoutWarning });
    ready('memory');
    return { authLimiter, close: () => authLimiter.close() };
  }

  // Rejects when Redis is not ready in time, so a wrong REDIS_URL stops the start.
  // Once connected, each store reports the client's errors itself.
  let connecting = true;
  const client = await connectRedis({
    url: options.redis.url,
    onError: (err) => {
      if (connecting) (options.accepted ? acceptedWarning : lockoutWarning)(err);
    },
  });
  connecting = false;
  const accepted = options.accepted ? RedisAcceptedStore.using(client, { onError: acceptedWarning }) : undefined;
  // loadConfig requires the key with REDIS_URL; an empty one is refused here too.
  const authLimiter = await createRedisAuthLimiter({ ...lockout, usernameKey: lockout.usernameKey ?? '', client, onError: lockoutWarning });
  ready('redis');
  return {
    authLimiter,
    ...(accepted ? { accepted } : {}),
    async close() {
      await authLimiter.close();
      await accepted?.close();
      await quitRedis(client);
    },
  };
}

