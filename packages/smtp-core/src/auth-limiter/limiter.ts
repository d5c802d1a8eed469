/**
 * Brute-force lockout across connections: failed AUTH counted per
 * (username, IP) pair and per IP over a fixed window, on rate-limiter-flexible
 * counters. This file holds the policy and the memory store; redis.ts the
 * Redis store. The caller turns a lock into `454 4.7.0` (S454_AUTH_LOCKED).
 *
 * Only (username, IP) pairs and IPs are ever locked, never a username alone:
 * an attacker elsewhere must not be able to lock a customer out.
 */
import { RateLimiterMemory, type RateLimiterAbstract, type RateLimiterRes } from 'rate-limiter-flexible';
import { attemptKeys, checkUsernameKey, randomUsernameKey, type UsernameKey } from './keys.js';

/** What failed, for the onError hook. `redis` is the connection itself. */
export type AuthLimiterOperation = 'check' | 'fail' | 'succeed' | 'redis';

export interface AuthLimiterOptions {
  /** Failures of one username from one IP that lock the pair. */
  readonly pairLimit: number;
  /** Failures from one IP, any usernames, that lock the IP. */
  readonly ipLimit: number;
  /** The counting window and the lock's length, rounded up to whole seconds. */
  readonly windowMs: number;
  /**
   * The HMAC key usernames are hashed with (at least 32 bytes; a string is
   * taken as its UTF-8 bytes). Replicas that share counters share it. Default:
   * a random key for this process, which only suits counters kept in memory.
   */
  readonly usernameKey?: UsernameKey;
  /**
   * Told about store errors, which the limiter otherwise swallows (it never
   * rejects). Usernames are not in the error. Default: ignore.
   */
  readonly onError?: (err: unknown, during: AuthLimiterOperation) => void;
}

export type AuthLock =
  | { readonly locked: false }
  | { readonly locked: true; readonly scope: 'pair' | 'ip'; readonly retryAfterMs: number };

export interface AuthLimiter {
  /**
   * Before checking credentials. Resolves the lock that applies, if any (the
   * longer one when both do). Never rejects: a store error counts as no lock.
   * While locked, do not check the credentials at all, and call neither fail()
   * nor succeed().
   */
  check(username: string, ip: string): Promise<AuthLock>;
  /** After a failed login (wrong credentials only, not upstream errors). Never rejects. */
  fail(username: string, ip: string): Promise<void>;
  /** After a successful login: forgets the pair's failures, not the IP's. Never rejects. */
  succeed(username: string, ip: string): Promise<void>;
  close(): Promise<void>;
}

/** The two counters a store keeps: rate-limiter-flexible limiters sharing one window. */
export interface Counters {
  readonly pair: RateLimiterAbstract;
  readonly ip: RateLimiterAbstract;
}

/** Validated options, the window in the whole seconds rate-limiter-flexible counts in. */
export interface LimiterSettings {
  readonly pairLimit: number;
  readonly ipLimit: number;
  readonly windowSec: number;
  readonly usernameKey: Buffer;
  readonly onError: (err: unknown, during: AuthLimiterOperation) => void;
}

const unlocked: AuthLock = Object.freeze({ locked: false });

export function limiterSettings(options: AuthLimiterOptions): LimiterSettings {
  const { pairLimit, ipLimit, windowMs } = options;
  for (const [name, value] of [['pairLimit', pairLimit], ['ipLimit', ipLimit], ['windowMs', windowMs]] as const) {
    if (!Number.isSafeInteger(value) || value < 1) throw new RangeError(`${name} must be a positive integer, got ${value}`);
  }
  const hook = options.onError;
  return {
    pairLimit,
    ipLimit,
    windowSec: Math.ceil(windowMs / 1000),
    usernameKey: options.usernameKey === undefined ? randomUsernameKey() : checkUsernameKey(options.usernameKey),
    // A throwing hook must not break the never-rejects promise.
    onError: hook
      ? (err, during) => {
          try {
            hook(err, during);
          } catch {
            // ignored on purpose
          }
        }
      : () => {},
  };
}

/** Counters in this process. */
export function memoryCounters(settings: LimiterSettings, keyPrefix: string): Counters {
  // RateLimiterMemory gives every key a timer (unref'd) that deletes it when its
  // window or lock ends, so memory holds at most the pairs and IPs that failed
  // within one window: it grows with the failure rate, which the per-connection
  // limits bound, and shrinks back once an attack stops. There is no hard cap.
  const counter = (points: number, scope: string): RateLimiterMemory =>
    new RateLimiterMemory({ points, duration: settings.windowSec, keyPrefix: `${keyPrefix}:${scope}` });
  return { pair: counter(settings.pairLimit, 'pair'), ip: counter(settings.ipLimit, 'ip') };
}

function lockOf(res: RateLimiterRes | null, limit: number, scope: 'pair' | 'ip'): AuthLock {
  // msBeforeNext <= 0: expired but not yet swept.
  if (res === null || res.consumedPoints < limit || res.msBeforeNext <= 0) return unlocked;
  return { locked: true, scope, retryAfterMs: res.msBeforeNext };
}

function longer(a: AuthLock, b: AuthLock): AuthLock {
  if (!a.locked) return b;
  if (!b.locked) return a;
  return b.retryAfterMs > a.retryAfterMs ? b : a;
}

/**
 * The policy over a store. With a `fallback`, an operation the primary store
 * fails (Redis down or too slow) is reported to onError and done on the
 * fallback instead: fail-open for logins, still counting per replica.
 */
export function createAuthLimiter(
  settings: LimiterSettings,
  primary: Counters,
  fallback: Counters | undefined,
  close: () => Promise<void>,
): AuthLimiter {
  const { pairLimit, ipLimit, windowSec, usernameKey, onError } = settings;

  async function on<T>(during: AuthLimiterOperation, op: (counters: Counters) => Promise<T>): Promise<T> {
    try {
      return await op(primary);
    } catch (err) {
      if (!fallback) throw err;
      onError(err, during);
      return op(fallback);
    }
  }

  return {
    async check(username, ip) {
      const keys = attemptKeys(username, ip, usernameKey);
      try {
        const [pair, address] = await on('check', (c) => Promise.all([c.pair.get(keys.pair), c.ip.get(keys.ip)]));
        return longer(lockOf(address, ipLimit, 'ip'), lockOf(pair, pairLimit, 'pair'));
      } catch (err) {
        onError(err, 'check');
        return unlocked;
      }
    },

    async fail(username, ip) {
      const keys = attemptKeys(username, ip, usernameKey);
      try {
        await on('fail', async (c) => {
          const [pair, address] = await Promise.all([c.pair.penalty(keys.pair), c.ip.penalty(keys.ip)]);
          // The failure that reaches a limit locks for a whole window from now,
          // not just for what is left of the window the failures started.
          await Promise.all([
            pair.consumedPoints === pairLimit ? c.pair.block(keys.pair, windowSec) : undefined,
            address.consumedPoints === ipLimit ? c.ip.block(keys.ip, windowSec) : undefined,
          ]);
        });
      } catch (err) {
        onError(err, 'fail');
      }
    },

    async succeed(username, ip) {
      const { pair } = attemptKeys(username, ip, usernameKey);
      try {
        // Also forget failures the fallback counted during an outage.
        await Promise.all([on('succeed', (c) => c.pair.delete(pair)), fallback?.pair.delete(pair)]);
      } catch (err) {
        onError(err, 'succeed');
      }
    },

    close,
  };
}

/** Counts in this process only: one replica, or tests. */
export function createMemoryAuthLimiter(options: AuthLimiterOptions): AuthLimiter {
  const settings = limiterSettings(options);
  return createAuthLimiter(settings, memoryCounters(settings, 'auth'), undefined, async () => {});
}
