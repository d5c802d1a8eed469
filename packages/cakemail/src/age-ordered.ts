/**
 * The caches here keep a Map in age order (an entry written again is deleted and set again, so
 * its insertion order is its age): the oldest entry is the first.
 *
 * Their oldest entries are deleted in batches, never one per insert. V8 leaves a deleted entry
 * as a hole at the front of a Map's table until the table is rebuilt, and every new iteration
 * (`keys().next()` included) steps over all the holes: trimming one entry per insert made an
 * insert into a full Map of 100,000 entries cost about 56 µs, of 10,000 about 7 µs; trimmed in
 * batches, about 0.4 µs (BENCHMARKS.md, "Full caches").
 */

/** Deletes the oldest entries of `map` once it holds more than `max`: down to 15/16 of `max`, in one pass. */
export function trimOldest(map: Map<unknown, unknown>, max: number): void {
  if (map.size <= max) return;
  const keep = max - (max >> 4);
  for (const key of map.keys()) {
    if (map.size <= keep) break;
    map.delete(key);
  }
}

/**
 * Drops the expired entries at the front of an age-ordered Map (oldest first), in one pass, at
 * most once a second: a lookup checks an entry's expiry itself, so the sweep only frees memory.
 * Looking at every write would step over the holes released entries leave at the front.
 */
export class ExpirySweep {
  static readonly EVERY_MS = 1000;
  #next = 0;

  constructor(private readonly map: Map<unknown, { readonly expiresAt: number }>) {}

  /** Sweeps when a second has passed since the last sweep. */
  run(now: number): void {
    if (now < this.#next) return;
    this.#next = now + ExpirySweep.EVERY_MS;
    for (const [key, e] of this.map) {
      if (e.expiresAt > now) break;
      this.map.delete(key);
    }
  }
}
