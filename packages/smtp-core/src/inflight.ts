/**
 * The message bytes a replica holds at once, across all its sessions: from a
 * message's first DATA byte until its reply has been sent (so the time the
 * backend holds it, e.g. while relaying it upstream, counts too). One budget
 * is shared by both listeners. A message that would pass the limit is refused
 * with a 4xx (`452 4.3.1` at `MAIL FROM ... SIZE=`, `451 4.3.1` during DATA).
 */
export class InflightBudget {
  #used = 0;

  /** @param limit bytes; 0: no limit. */
  constructor(readonly limit: number) {}

  /** Bytes held now. */
  get used(): number {
    return this.#used;
  }

  /** Bytes that can still be taken (Infinity without a limit). */
  get free(): number {
    return this.limit > 0 ? Math.max(0, this.limit - this.#used) : Infinity;
  }

  /** Takes `bytes` if they fit; false (and nothing taken) if they do not. */
  take(bytes: number): boolean {
    if (bytes > this.free) return false;
    this.#used += bytes;
    return true;
  }

  /** Gives back bytes taken earlier. */
  give(bytes: number): void {
    this.#used = Math.max(0, this.#used - bytes);
  }
}
