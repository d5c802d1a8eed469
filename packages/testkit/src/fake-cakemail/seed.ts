// Default seed data, exported so tests and the gateway's dev mode can print and use it.

import type { SeedAccount, SeedSender, SeedUser } from './types.js';

export const DEFAULT_ACCOUNT_ID = 1001;
/** A second account; only MULTI_ACCOUNT_USER may use it. */
export const OTHER_ACCOUNT_ID = 1002;

export const DEFAULT_SENDER = Object.freeze({
  id: '1',
  name: 'Dev Sender',
  email: 'sender@example.com',
  confirmed: true,
} satisfies SeedSender);

export const UNCONFIRMED_SENDER = Object.freeze({
  id: '2',
  name: 'Unconfirmed Sender',
  email: 'unconfirmed@example.com',
  confirmed: false,
} satisfies SeedSender);

export const OTHER_ACCOUNT_SENDER = Object.freeze({
  id: '3',
  name: 'Other Sender',
  email: 'other@example.com',
  confirmed: true,
} satisfies SeedSender);

export const DEFAULT_USER = Object.freeze({
  email: 'dev@example.com',
  password: 'dev-password',
  accounts: Object.freeze([DEFAULT_ACCOUNT_ID]),
} satisfies SeedUser);

export const MFA_USER = Object.freeze({
  email: 'mfa@example.com',
  password: 'mfa-password',
  accounts: Object.freeze([DEFAULT_ACCOUNT_ID]),
  mfa: true,
} satisfies SeedUser);

export const MULTI_ACCOUNT_USER = Object.freeze({
  email: 'multi@example.com',
  password: 'multi-password',
  accounts: Object.freeze([DEFAULT_ACCOUNT_ID, OTHER_ACCOUNT_ID]),
} satisfies SeedUser);

export const DEFAULT_USERS: readonly SeedUser[] = Object.freeze([DEFAULT_USER, MFA_USER, MULTI_ACCOUNT_USER]);

/** No lists: the gateway is expected to create "SMTP Gateway" itself. */
export const DEFAULT_ACCOUNTS: readonly SeedAccount[] = Object.freeze([
  Object.freeze({
    id: DEFAULT_ACCOUNT_ID,
    name: 'Dev Account',
    senders: Object.freeze([DEFAULT_SENDER, UNCONFIRMED_SENDER]),
  }),
  Object.freeze({
    id: OTHER_ACCOUNT_ID,
    name: 'Other Account',
    senders: Object.freeze([OTHER_ACCOUNT_SENDER]),
  }),
]);
