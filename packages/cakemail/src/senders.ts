/**
 * The confirmed senders of each account, cached briefly (one `GET /brands/default/senders`
 * walk per account and TTL, shared by concurrent callers), and the sender checks.
 */
import type { CallOptions, SenderInfo } from './client.js';
import { CakemailReplies, Refusals } from './replies.js';

export interface SenderApi {
  listSenders(token: string, accountId: number, opts: CallOptions): Promise<SenderInfo[]>;
}

export interface SenderDirectoryOptions {
  readonly client: SenderApi;
  /** How long an account's sender list is reused. Default 60 s. */
  readonly ttlMs?: number;
  readonly now?: () => number;
}

export class SenderDirectory {
  readonly #client: SenderApi;
  readonly #ttl: number;
  readonly #now: () => number;
  readonly #cache = new Map<number, { readonly senders: readonly SenderInfo[]; readonly until: number }>();
  readonly #inflight = new Map<number, Promise<readonly SenderInfo[]>>();

  constructor(options: SenderDirectoryOptions) {
    this.#client = options.client;
    this.#ttl = options.ttlMs ?? 60_000;
    this.#now = options.now ?? Date.now;
  }

  /** The account's confirmed senders. Throws the client's CakemailError on failure. */
  async confirmed(token: string, accountId: number, opts: CallOptions): Promise<readonly SenderInfo[]> {
    const hit = this.#cache.get(accountId);
    if (hit && hit.until > this.#now()) return hit.senders;
    let pending = this.#inflight.get(accountId);
    if (!pending) {
      pending = this.#client
        .listSenders(token, accountId, opts)
        .then((all) => {
          const senders = all.filter((s) => s.confirmed);
          this.#cache.set(accountId, { senders, until: this.#now() + this.#ttl });
          return senders;
        })
        .finally(() => this.#inflight.delete(accountId));
      this.#inflight.set(accountId, pending);
    }
    return pending;
  }

  /** The confirmed sender whose email is `address` (case-insensitive), or undefined (an empty address included). */
  async findSender(token: string, accountId: number, address: string, opts: CallOptions): Promise<SenderInfo | undefined> {
    const wanted = address.trim().toLowerCase();
    if (wanted === '') return undefined;
    return (await this.confirmed(token, accountId, opts)).find((s) => s.email.trim().toLowerCase() === wanted);
  }

  /** The confirmed sender whose email is `address`; else `S553_SENDER_NOT_ALLOWED`. */
  async checkSender(token: string, accountId: number, address: string, opts: CallOptions): Promise<SenderInfo> {
    const found = await this.findSender(token, accountId, address, opts);
    if (!found) throw CakemailReplies.S553_SENDER_NOT_ALLOWED;
    return found;
  }

  /** The confirmed sender with this id (`x-sender-id`); else `S553_SENDER_NOT_ALLOWED`. */
  async checkSenderId(token: string, accountId: number, senderId: string, opts: CallOptions): Promise<SenderInfo> {
    const found = (await this.confirmed(token, accountId, opts)).find((s) => s.id === senderId);
    if (!found) throw Refusals.unknownSenderId();
    return found;
  }
}
