/**
 * How a login attempt becomes counter keys. Usernames are case-insensitive and
 * never kept in clear (not in Redis, not in memory): they are keyed by a
 * truncated SHA-256. Addresses as clientKey() counts them: IPv4-mapped IPv6
 * folded onto IPv4, IPv6 by its /64.
 */
import { createHash } from 'node:crypto';
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

/** `::ffff:192.0.2.1` is `192.0.2.1`, and an IPv6 client is its /64 (see client-address.ts). */
export function normalizeIp(ip: string): string {
  return clientKey(ip);
}

/** 32 hex characters (128 bits) of SHA-256 over the normalized username. */
export function usernameHash(username: string): string {
  return createHash('sha256').update(normalizeUsername(username), 'utf8').digest('hex').slice(0, 32);
}

export function attemptKeys(username: string, ip: string): AttemptKeys {
  const address = normalizeIp(ip);
  return { pair: `${usernameHash(username)}@${address}`, ip: address };
}
