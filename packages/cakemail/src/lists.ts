/**
 * The list a message goes to when neither `x-list-id` nor the configured default names one:
 * a list called "SMTP Gateway", found or created once per account and remembered; concurrent
 * messages for the same account share the one lookup. A resolved id is kept for the life of
 * the process, so once known it needs no call, and a Cakemail outage does not affect it (with a
 * queue, the session runs it even when the token cannot be refreshed, see session.ts `#lookup`).
 */
import type { CallOptions, CreateListInput, ListInfo } from './client.js';

export const GATEWAY_LIST_NAME = 'SMTP Gateway';

export interface ListApi {
  findListByName(token: string, accountId: number, name: string, opts: CallOptions): Promise<ListInfo | undefined>;
  createList(token: string, accountId: number, input: CreateListInput, opts: CallOptions): Promise<number>;
}

export class ListResolver {
  readonly #client: ListApi;
  readonly #name: string;
  readonly #ids = new Map<number, number>();
  readonly #inflight = new Map<number, Promise<number>>();

  constructor(options: { readonly client: ListApi; readonly name?: string }) {
    this.#client = options.client;
    this.#name = options.name ?? GATEWAY_LIST_NAME;
  }

  /** The gateway list's id for the account when resolved already (what resolve() answers without a call), else undefined. */
  known(accountId: number): number | undefined {
    return this.#ids.get(accountId);
  }

  /** The gateway list's id for the account; `senderId` becomes its default sender if created. */
  async resolve(token: string, accountId: number, senderId: string, opts: CallOptions): Promise<number> {
    const known = this.#ids.get(accountId);
    if (known !== undefined) return known;
    let pending = this.#inflight.get(accountId);
    if (!pending) {
      pending = (async () => {
        const found = await this.#client.findListByName(token, accountId, this.#name, opts);
        const id = found?.id ?? (await this.#client.createList(token, accountId, { name: this.#name, senderId }, opts));
        this.#ids.set(accountId, id);
        return id;
      })().finally(() => this.#inflight.delete(accountId));
      this.#inflight.set(accountId, pending);
    }
    return pending;
  }
}
