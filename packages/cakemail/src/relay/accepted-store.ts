/**
 * The "already accepted" store: which (message, recipient) pairs Cakemail has queued, and the
 * id it gave them. When a client retries a message after a 4xx (or after losing the 250),
 * the relay skips the recipients found here and still reports their ids.
 *
 * The interface is async so that a shared store (RedisAcceptedStore) backs many replicas; the
 * memory implementation bounds both age (TTL, 24 h by default) and size (oldest first).
 */
import { hash } from 'node:crypto';
import { ExpirySweep, trimOldest } from '../age-ordered.js';
import type { InflightMarks } from './inflight.js';

export interface AcceptedStore {
  /** Cakemail's id for this key, or undefined. */
  get(key: string): Promise<string | undefined>;
  put(key: string, cakemailId: string, ttlMs: number): Promise<void>;
  delete(key: string): Promise<void>;
}

/**
 * A send's turn at one recipient: Cakemail's id when it was accepted already, the in-flight mark's
 * token when this send may go, or `held` when another send holds the mark.
 */
export type Turn = { readonly kind: 'accepted'; readonly id: string } | { readonly kind: 'mine'; readonly token: string } | { readonly kind: 'held' };

/**
 * A store that keeps the in-flight marks too (RedisAcceptedStore and its `inflight`): it takes a
 * send's turn (the store read, the mark claimed) and settles it (the id written, the mark
 * released) in one round trip each, where the two interfaces take two. Never rejects.
 */
export interface MarkingStore extends AcceptedStore {
  readonly inflight: InflightMarks;
  turn(key: string, ttlMs: number): Promise<Turn>;
  settle(key: string, token: string, cakemailId: string, ttlMs: number): Promise<void>;
}

export const ACCEPTED_TTL_MS = 24 * 60 * 60 * 1000;

export interface MemoryAcceptedStoreOptions {
  /** Most entries kept; the oldest go first. Default 100 000. */
  readonly maxEntries?: number;
  readonly now?: () => number;
}

export class MemoryAcceptedStore implements AcceptedStore {
  readonly #entries = new Map<string, { readonly id: string; readonly expiresAt: number }>();
  readonly #max: number;
  readonly #now: () => number;
  readonly #sweep = new ExpirySweep(this.#entries);

  constructor(options: MemoryAcceptedStoreOptions = {}) {
    this.#max = options.maxEntries ?? 100_000;
    this.#now = options.now ?? Date.now;
  }

  async get(key: string): Promise<string | undefined> {
    const e = this.#entries.get(key);
    if (!e) return undefined;
    if (e.expiresAt <= this.#now()) {
      this.#entries.delete(key);
      return undefined;
    }
    return e.id;
  }

  async put(key: string, cakemailId: string, ttlMs: number = ACCEPTED_TTL_MS): Promise<void> {
    const now = this.#now();
    this.#entries.delete(key); // re-insert: Map order is age order
    this.#entries.set(key, { id: cakemailId, expiresAt: now + ttlMs });
    // In batches, not an entry per put (age-ordered.ts): once a second, or over the bound.
    this.#sweep.run(now);
    trimOldest(this.#entries, this.#max);
  }

  async delete(key: string): Promise<void> {
    this.#entries.delete(key);
  }

  get size(): number {
    return this.#entries.size;
  }
}

/**
 * The store key of one recipient of one message: sha256 over the account, the message
 * fingerprint and the recipient (lower-cased).
 */
export function acceptedKey(accountId: number, messageFingerprint: string, recipient: string): string {
  return hash('sha256', `${accountId}\0${messageFingerprint}\0${recipient.toLowerCase()}`, 'base64url');
}
