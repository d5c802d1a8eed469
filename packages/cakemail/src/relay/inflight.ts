/**
 * In-flight marks: which (message, recipient) pairs a relay is sending right now, under the
 * accepted store's key. A client that timed out may retry while its first attempt still waits
 * on Cakemail; the retry finds the mark, waits for the outcome, and never sends a second copy.
 *
 * A mark is claimed before the send (set-if-absent, with a TTL so a crashed replica's marks
 * expire) and released after the outcome was stored, by its owner only.
 */
import { randomBytes } from 'node:crypto';
import { ExpirySweep } from '../age-ordered.js';

export interface InflightMarks {
  /**
   * Marks `key` in flight for `ttlMs` unless it is marked already. Answers the mark's owner token
   * when this call made the mark, else undefined. Never rejects.
   */
  claim(key: string, ttlMs: number): Promise<string | undefined>;
  /** Clears the mark when it is still `token`'s. Never rejects. */
  release(key: string, token: string): Promise<void>;
}

/**
 * A mark outlives the longest send by this much (its TTL is UPSTREAM_DEADLINE_MS plus this), so
 * that it is never gone while its send may still be answered, yet a crashed replica's marks clear.
 */
export const INFLIGHT_MARGIN_MS = 15_000;

/** Random per process, so that tokens of different replicas never meet. */
const TOKEN_PREFIX = randomBytes(12).toString('base64url');
let tokens = 0;

/** A mark's owner token: unique in this process (a counter) and across replicas (the prefix). */
export function newMarkToken(): string {
  return `${TOKEN_PREFIX}.${(++tokens).toString(36)}`;
}

/** Marks in this process: one replica, tests, and the fallback while Redis is away. */
export class MemoryInflightMarks implements InflightMarks {
  readonly #marks = new Map<string, { readonly token: string; readonly expiresAt: number }>();
  readonly #now: () => number;
  readonly #sweep = new ExpirySweep(this.#marks);

  constructor(options: { readonly now?: () => number } = {}) {
    this.#now = options.now ?? Date.now;
  }

  async claim(key: string, ttlMs: number, token: string = newMarkToken()): Promise<string | undefined> {
    const now = this.#now();
    const mark = this.#marks.get(key);
    if (mark !== undefined && mark.expiresAt > now) return undefined;
    this.#set(key, token, ttlMs);
    return token;
  }

  async release(key: string, token: string): Promise<void> {
    if (this.#marks.get(key)?.token === token) this.#marks.delete(key);
  }

  get size(): number {
    return this.#marks.size;
  }

  #set(key: string, token: string, ttlMs: number): void {
    const now = this.#now();
    this.#marks.delete(key); // re-insert: Map order is age order
    this.#marks.set(key, { token, expiresAt: now + ttlMs });
    // Marks live about as long as one send: the expired ones at the front (a crashed send's) go
    // once a second (claim() never takes an expired mark for live).
    this.#sweep.run(now);
  }
}
