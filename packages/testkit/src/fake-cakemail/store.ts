// In-memory accounts, senders, lists and users.

import type { ListRecord, SeedAccount, SeedList, SeedSender, SeedUser, SenderRecord } from './types.js';

interface Account {
  id: number;
  name: string;
  senders: SenderRecord[];
  lists: ListRecord[];
}

export class Store {
  private readonly accounts = new Map<number, Account>();
  private readonly users = new Map<string, SeedUser>();
  private nextSenderId = 1;
  private nextListId = 1;

  constructor(
    accounts: readonly SeedAccount[],
    users: readonly SeedUser[],
    private readonly nowSeconds: () => number,
  ) {
    for (const account of accounts) this.addAccount(account);
    for (const user of users) this.addUser(user);
  }

  addAccount(seed: SeedAccount): void {
    if (!Number.isInteger(seed.id) || seed.id < 1) throw new Error(`fake-cakemail: bad account id ${seed.id}`);
    if (this.accounts.has(seed.id)) throw new Error(`fake-cakemail: account ${seed.id} already exists`);
    this.accounts.set(seed.id, { id: seed.id, name: seed.name ?? `Account ${seed.id}`, senders: [], lists: [] });
    for (const sender of seed.senders ?? []) this.addSender(seed.id, sender);
    for (const list of seed.lists ?? []) this.addList(seed.id, list);
  }

  addUser(user: SeedUser): void {
    if (user.accounts.length === 0) throw new Error(`fake-cakemail: user ${user.email} needs at least one account`);
    for (const id of user.accounts) this.account(id);
    this.users.set(user.email.toLowerCase(), { ...user, accounts: [...user.accounts] });
  }

  setPassword(email: string, password: string): void {
    const user = this.users.get(email.toLowerCase());
    if (user === undefined) throw new Error(`fake-cakemail: no user ${email}`);
    user.password = password;
  }

  user(email: string): SeedUser | undefined {
    return this.users.get(email.toLowerCase());
  }

  hasAccount(id: number): boolean {
    return this.accounts.has(id);
  }

  addSender(accountId: number, seed: SeedSender): SenderRecord {
    const account = this.account(accountId);
    const id = seed.id ?? String(this.nextSenderId);
    if (this.findSender(id) !== undefined) throw new Error(`fake-cakemail: sender ${id} already exists`);
    const numeric = Number(id);
    if (Number.isInteger(numeric) && numeric >= this.nextSenderId) this.nextSenderId = numeric + 1;
    const sender: SenderRecord = {
      id,
      name: seed.name,
      email: seed.email,
      confirmed: seed.confirmed,
      confirmedOn: seed.confirmed ? this.nowSeconds() : undefined,
      language: seed.language ?? 'en_US',
    };
    account.senders.push(sender);
    return { ...sender };
  }

  confirmSender(accountId: number, senderId: string, confirmed: boolean): void {
    const sender = this.account(accountId).senders.find((s) => s.id === senderId);
    if (sender === undefined) throw new Error(`fake-cakemail: no sender ${senderId} in account ${accountId}`);
    sender.confirmed = confirmed;
    sender.confirmedOn = confirmed ? this.nowSeconds() : undefined;
  }

  addList(accountId: number, seed: SeedList): ListRecord {
    const account = this.account(accountId);
    const id = seed.id ?? this.nextListId;
    if (this.findList(id) !== undefined) throw new Error(`fake-cakemail: list ${id} already exists`);
    if (id >= this.nextListId) this.nextListId = id + 1;
    const list: ListRecord = {
      id,
      name: seed.name,
      status: seed.status ?? 'active',
      language: seed.language ?? 'en_US',
      createdOn: this.nowSeconds(),
      defaultSenderId: seed.defaultSenderId,
    };
    account.lists.push(list);
    return { ...list };
  }

  /** Live records (for the routes); the public helpers copy them. */
  sendersOf(accountId: number): readonly SenderRecord[] {
    return this.accounts.get(accountId)?.senders ?? [];
  }

  listsOf(accountId: number): readonly ListRecord[] {
    return this.accounts.get(accountId)?.lists ?? [];
  }

  private account(id: number): Account {
    const account = this.accounts.get(id);
    if (account === undefined) throw new Error(`fake-cakemail: no account ${id}`);
    return account;
  }

  private findSender(id: string): SenderRecord | undefined {
    for (const account of this.accounts.values()) {
      const found = account.senders.find((s) => s.id === id);
      if (found !== undefined) return found;
    }
    return undefined;
  }

  private findList(id: number): ListRecord | undefined {
    for (const account of this.accounts.values()) {
      const found = account.lists.find((l) => l.id === id);
      if (found !== undefined) return found;
    }
    return undefined;
  }
}
