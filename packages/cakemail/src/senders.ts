/**
 * The confirmed senders of each account, cached briefly (one `GET /brands/default/senders`
 * walk per account and TTL, shared by concurrent callers), and the sender checks.
 *
 * With `staleIfUnavailableMs` (queue mode only, set by createRelayBackend), a walk that fails
 * temporarily (5xx, 429, timeout, connection refused) answers the account's last list instead,
 * if it was fetched less than that long ago. A sender not on that list stays unknown (553).
 */
import type { CallOptions, SenderInfo } from './client.js';
import { CakemailError, errorLogFields } from './errors.js';
import { CakemailReplies, Refusals } from './replies.js';
import type { Logger } from './types.js';

export interface SenderApi {
  listSenders(token: string, accountId: number, opts: CallOptions): Promise<SenderInfo[]>;
}

export interface SenderDirectoryOptions {
  readonly client: SenderApi;
  /** How long an account's sender list is reused. Default 60 s. */
  readonly ttlMs?: number;
  /**
   * Queue mode only (default 0: off). When a walk fails temporarily, the account's last list is
   * answered if it was fetched less than this long ago (stale-if-unavailable).
   */
  readonly staleIfUnavailableMs?: number;
  readonly logger?: Logger;
  readonly now?: () => number;
}

export class SenderDirectory {
  readonly #client: SenderApi;
  readonly #ttl: number;
  readonly #staleMs: number;
  readonly #logger: Logger | undefined;
  readonly #now: () => number;
  readonly #cache = new Map<number, { readonly senders: readonly SenderInfo[]; readonly fetchedAt: number }>();
  readonly #inflight = new Map<number, Promise<readonly SenderInfo[]>>();

  constructor(options: SenderDirectoryOptions) {
    this.#client = options.client;
    this.#ttl = options.ttlMs ?? 60_000;
    this.#staleMs = options.staleIfUnavailableMs ?? 0;
    this.#logger = options.logger;
    this.#now = options.now ?? Date.now;
  }

  /** The account's confirmed senders. Throws the client's CakemailError on failure. */
  async confirmed(token: string, accountId: number, opts: CallOptions): Promise<readonly SenderInfo[]> {
    const hit = this.cached(accountId);
    if (hit !== undefined) return hit;
    let pending = this.#inflight.get(accountId);
    if (!pending) {
      pending = this.#client
        .listSenders(token, accountId, opts)
        .then(
          (all) => {
            const senders = all.filter((s) => s.confirmed);
            this.#cache.set(accountId, { senders, fetchedAt: this.#now() });
            return senders;
          },
          (err: unknown) => this.#stale(accountId, err),
        )
        .finally(() => this.#inflight.delete(accountId));
      this.#inflight.set(accountId, pending);
    }
    return pending;
  }

  /** The account's confirmed senders while cached within the TTL (what confirmed() answers without a call), else undefined. */
  cached(accountId: number): readonly SenderInfo[] | undefined {
    const hit = this.#cache.get(accountId);
    return hit !== undefined && this.#now() < hit.fetchedAt + this.#ttl ? hit.senders : undefined;
  }

  /** After a failed walk: the last list when stale-if-unavailable allows it (logged once per walk), else the error. */
  #stale(accountId: number, err: unknown): readonly SenderInfo[] {
    const last = this.#cache.get(accountId);
    if (!(err instanceof CakemailError && err.temporary) || last === undefined || this.#now() >= last.fetchedAt + this.#staleMs) throw err;
    const fetched = new Date(last.fetchedAt).toISOString();
    this.#logger?.warn(
      { err: errorLogFields(err), accountId, fetchedAt: fetched },
      `Cakemail senders unavailable: using the confirmed senders fetched at ${fetched}`,
    );
    return last.senders;
  }

  /** The confirmed sender whose email is `address` (case-insensitive), or undefined (an empty address included). */
  async findSender(token: string, accountId: number, address: string, opts: CallOptions): Promise<SenderInfo | undefined> {
    if (address.trim() === '') return undefined;
    return senderWithAddress(await this.confirmed(token, accountId, opts), address);
  }

  /** The confirmed sender whose email is `address`; else `S553_SENDER_NOT_ALLOWED`. */
  async checkSender(token: string, accountId: number, address: string, opts: CallOptions): Promise<SenderInfo> {
    return pickSender(await this.confirmed(token, accountId, opts), address);
  }

  /** The confirmed sender with this id (`x-sender-id`); else `S553_SENDER_NOT_ALLOWED`. */
  async checkSenderId(token: string, accountId: number, senderId: string, opts: CallOptions): Promise<SenderInfo> {
    return pickSenderId(await this.confirmed(token, accountId, opts), senderId);
  }
}

/** The sender of `senders` whose email is `address` (case-insensitive), or undefined (an empty address included). */
export function senderWithAddress(senders: readonly SenderInfo[], address: string): SenderInfo | undefined {
  const wanted = address.trim().toLowerCase();
  if (wanted === '') return undefined;
  return senders.find((s) => s.email.trim().toLowerCase() === wanted);
}

/** checkSender on a list of confirmed senders: the one whose email is `address`; else `S553_SENDER_NOT_ALLOWED`. */
export function pickSender(senders: readonly SenderInfo[], address: string): SenderInfo {
  const found = senderWithAddress(senders, address);
  if (!found) throw CakemailReplies.S553_SENDER_NOT_ALLOWED;
  return found;
}

/** checkSenderId on a list of confirmed senders: the one with this id; else the unknown-sender-id refusal. */
export function pickSenderId(senders: readonly SenderInfo[], senderId: string): SenderInfo {
  const found = senders.find((s) => s.id === senderId);
  if (!found) throw Refusals.unknownSenderId();
  return found;
}
