/* global process, console */
/**
 * What a put costs once a cache is full: the accepted store (MemoryAcceptedStore, 100,000
 * entries by default) filled to its bound, then written on, against the same store trimming one
 * entry per put as it did before `trimOldest` (age-ordered.ts), in the same process.
 *
 *   pnpm --filter @cakemail-smtp/cakemail run build
 *   node packages/cakemail/scripts/full-caches.mjs [ENTRIES]
 *
 * Prints ns per put for both, and their ratio. Run it on an idle core (`taskset -c 1 node …`).
 */
import { hash } from 'node:crypto';
import { MemoryAcceptedStore } from '../dist/relay/accepted-store.js';

const entries = Number(process.argv[2] ?? 100_000);
const keys = Array.from({ length: entries * 4 }, (_, i) => hash('sha256', `key ${i}`, 'base64url'));

/** The store as it was: every put trims the oldest entry past the bound, one at a time. */
class OneByOne {
  #entries = new Map();
  constructor(max) {
    this.max = max;
  }
  async put(key, id, ttlMs) {
    const now = Date.now();
    this.#entries.delete(key);
    this.#entries.set(key, { id, expiresAt: now + ttlMs });
    for (const [k, e] of this.#entries) {
      if (this.#entries.size > this.max || e.expiresAt <= now) this.#entries.delete(k);
      else break;
    }
  }
}

async function nsPerPut(store) {
  for (let i = 0; i < entries; i++) await store.put(keys[i], 'id', 86_400_000); // fill to the bound
  const t0 = process.hrtime.bigint();
  for (let i = entries; i < keys.length; i++) await store.put(keys[i], 'id', 86_400_000);
  return Number(process.hrtime.bigint() - t0) / (keys.length - entries);
}

const before = await nsPerPut(new OneByOne(entries));
const now = await nsPerPut(new MemoryAcceptedStore({ maxEntries: entries }));
console.log(`accepted store full at ${entries} entries: ${now.toFixed(0)} ns a put, trimmed one by one ${before.toFixed(0)} ns (${(before / now).toFixed(1)} ×)`);
