/**
 * Connections held per client and in all, across both listeners, from accept
 * until the socket or its session closes: what MAX_CONNECTIONS and
 * MAX_CONNECTIONS_PER_IP count. A client is its clientKey() (IPv6 by /64).
 */

export type Refusal = 'connections' | 'connections_per_ip';

export class Slot {
  private released = false;
  key: string | undefined;
  session: string | undefined;

  constructor(private readonly owner: ConnectionSlots) {}

  release(): void {
    if (this.released) return;
    this.released = true;
    this.owner.free(this);
  }
}

/** Connections held per client key and in all, from accept to close. */
export class ConnectionSlots {
  private total = 0;
  private readonly perKey = new Map<string, number>();
  private readonly bySession = new Map<string, Slot>();

  constructor(private readonly limits: { readonly maxConnections: number; readonly maxConnectionsPerIp: number }) {}

  /** Why one more connection would be refused: in all (`global`) and for `key`. */
  refusal(key: string | undefined, global: boolean): Refusal | undefined {
    const { maxConnections, maxConnectionsPerIp } = this.limits;
    if (global && maxConnections > 0 && this.total >= maxConnections) return 'connections';
    if (key !== undefined && maxConnectionsPerIp > 0 && (this.perKey.get(key) ?? 0) >= maxConnectionsPerIp) return 'connections_per_ip';
    return undefined;
  }

  take(): Slot {
    this.total++;
    return new Slot(this);
  }

  /** Counts the slot under its client's key (once the client is known). */
  assign(slot: Slot, key: string): void {
    slot.key = key;
    this.perKey.set(key, (this.perKey.get(key) ?? 0) + 1);
  }

  bindSession(slot: Slot, sessionId: string): void {
    slot.session = sessionId;
    this.bySession.set(sessionId, slot);
  }

  /** The session closed: its slot goes (if the socket did not release it already). */
  releaseSession(sessionId: string): void {
    this.bySession.get(sessionId)?.release();
  }

  /** Held by one client key (tests, logs). */
  held(key: string): number {
    return this.perKey.get(key) ?? 0;
  }

  get size(): number {
    return this.total;
  }

  /** Called by Slot.release(), once per slot. */
  free(slot: Slot): void {
    this.total--;
    if (slot.session !== undefined) this.bySession.delete(slot.session);
    if (slot.key === undefined) return;
    const left = (this.perKey.get(slot.key) ?? 1) - 1;
    if (left > 0) this.perKey.set(slot.key, left);
    else this.perKey.delete(slot.key);
  }
}
