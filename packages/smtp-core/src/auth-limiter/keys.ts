/**
 * How a login attempt becomes counter keys. Usernames are case-insensitive and
 * never kept in clear (not in Redis, not in memory): they are keyed by a
 * truncated HMAC-SHA-256 under a secret key (AUTH_LOCKOUT_KEY), so whoever
 * reads the store cannot test guessed usernames against it, as they could a
 * plain hash. Addresses as clientKey() counts them: IPv4-mapped IPv6 folded
 * onto IPv4, IPv6 by its /64.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { clientKey } from '../client-address.js';

/** The counter keys for one (username, IP) attempt. */
export interface AttemptKeys {
  /** `<userHash>@<ip>`: failures of this username from this address. */
  readonly pair: string;
  /** `<ip>`: failures from this address, any username. */
  readonly ip: string;
}

/** `User@Example.com ` and `user@example.com` are one login. */
export function normalizeUsername(username: string): string {
  return username.trim().toLowerCase();
}

/** The shortest key usernameHash() takes: 32 bytes, the HMAC-SHA-256 output size. */
export const MIN_USERNAME_KEY_BYTES = 32;

/** The HMAC key of usernames: at least 32 bytes; a string is taken as its UTF-8 bytes. */
export type UsernameKey = string | Uint8Array;

/** Throws a RangeError, which never shows the key, when it is too short. */
export function checkUsernameKey(key: UsernameKey): Buffer {
  const bytes = typeof key === 'string' ? Buffer.from(key, 'utf8') : Buffer.from(key);
  if (bytes.length < MIN_USERNAME_KEY_BYTES) {
    throw new RangeError(`the username key must be at least ${MIN_USERNAME_KEY_BYTES} bytes, got ${bytes.length}`);
  }
  return bytes;
}

/** A random key for this process: counters that only this process reads. */
export function randomUsernameKey(): Buffer {
  return randomBytes(MIN_USERNAME_KEY_BYTES);
}

/** 32 hex characters (128 bits) of HMAC-SHA-256(key, normalized username). */
export function usernameHash(username: string, key: UsernameKey): string {
  return createHmac('sha256', key).update(normalizeUsername(username), 'utf8').digest('hex').slice(0, 32);
}

export function attemptKeys(username: string, ip: string, key: UsernameKey): AttemptKeys {
  const address = clientKey(ip);
  return { pair: `${usernameHash(username, key)}@${address}`, ip: address };
}
