// Public types of the fake Cakemail API.

import type { ATTACHMENT_TYPES, EMAIL_TYPES, SUBMIT_STATUSES } from './enums.js';
import type { DevInbox } from './inbox/index.js';

/** The routes the gateway uses; fault switches and counts are keyed by them. */
export type RouteKey = 'token' | 'senders' | 'lists' | 'createList' | 'send';

/** Counts also cover calls to paths the fake does not serve. */
export type CountKey = RouteKey | 'other';

export type SubmitStatus = (typeof SUBMIT_STATUSES)[number];

// ---- seed -------------------------------------------------------------------

export interface SeedUser {
  email: string;
  password: string;
  /** Account ids this user can act for; the first is the token's default account. */
  accounts: readonly number[];
  /** A user with MFA gets `{ challenge }` from `POST /token` instead of a token. */
  mfa?: boolean;
}

export interface SeedSender {
  /** Generated ("1", "2", …) when omitted. Sender ids are strings in the spec. */
  id?: string;
  name: string;
  email: string;
  confirmed: boolean;
  language?: string;
}

export interface SeedList {
  /** Generated when omitted. List ids are integers in the spec. */
  id?: number;
  name: string;
  status?: string;
  language?: string;
  defaultSenderId?: string;
}

export interface SeedAccount {
  id: number;
  name?: string;
  senders?: readonly SeedSender[];
  lists?: readonly SeedList[];
}

// ---- stored records (what the inspection helpers return) --------------------

export interface SenderRecord {
  id: string;
  name: string;
  email: string;
  confirmed: boolean;
  /** Unix seconds; set when confirmed. */
  confirmedOn: number | undefined;
  language: string;
}

export interface ListRecord {
  id: number;
  name: string;
  status: string;
  language: string;
  /** Unix seconds. */
  createdOn: number;
  defaultSenderId: string | undefined;
}

// ---- faults -------------------------------------------------------------------

/**
 * One fault switch. Give exactly one action (`status`, `reset`, `hang` or `sendStatus`),
 * or only `delayMs` to slow a route down. `delayMs` combines with any action.
 */
export interface Fault {
  /** Answer with this HTTP status instead of handling the call. */
  status?: number;
  /** JSON body for `status`; defaults to a spec-shaped `{ detail: [...] }` for that status. */
  body?: unknown;
  /** Extra response headers for `status`. */
  headers?: Readonly<Record<string, string>>;
  /** Shorthand for a `Retry-After: <seconds>` header. */
  retryAfter?: number;
  /** Wait this long before answering (or before the action). */
  delayMs?: number;
  /** Destroy the socket without answering. */
  reset?: boolean;
  /** Never answer (the socket is freed by `close()` or by the client). */
  hang?: boolean;
  /** `send` only: validate and accept the call, but answer 201 with this status. */
  sendStatus?: Exclude<SubmitStatus, 'queued'>;
  /** Apply to the first N matching calls, then switch off. Default: until cleared. */
  times?: number;
  /** `send` only: apply only when the recipient (`email`) equals this, case-insensitively. */
  match?: { email?: string };
}

export interface ActiveFault {
  readonly route: RouteKey;
  readonly fault: Readonly<Fault>;
  /** Remaining applications; `undefined` means unlimited. */
  readonly remaining: number | undefined;
  /** How many calls this switch has affected so far. */
  readonly hits: number;
}

export interface FaultSwitches {
  /** Replace the route's faults with this one. */
  set(route: RouteKey, fault: Fault): void;
  /** Add a fault after the route's existing ones (the first applicable one wins). */
  add(route: RouteKey, fault: Fault): void;
  /** Remove the faults of one route, or of all routes. */
  clear(route?: RouteKey): void;
  /** The switches still armed. */
  list(route?: RouteKey): ActiveFault[];
}

// ---- recording ------------------------------------------------------------------

/** What a fault did to a recorded call. */
export type FaultEffect = 'status' | 'reset' | 'hang' | 'delay' | 'sendStatus';

export interface RecordedCall {
  /** 1, 2, 3… in arrival order. */
  seq: number;
  /** ISO time of arrival. */
  time: string;
  route: CountKey;
  method: string;
  path: string;
  query: Record<string, string>;
  /** Lower-case names; `authorization` shown as `Bearer ***`. */
  headers: Record<string, string>;
  /** Parsed JSON or form body (`password` and `refresh_token` shown as `***`), or the raw text when unparsable. */
  body: unknown;
  /** `null` when the fake reset the connection or hung. */
  status: number | null;
  /** The JSON answered, if any (`access_token` and `refresh_token` shown as `***`). */
  response: unknown;
  durationMs: number;
  fault?: FaultEffect;
}

export interface SentEmail {
  /** The `data.id` answered. */
  id: string;
  accountId: number;
  status: SubmitStatus;
  body: SubmitEmailBody;
  time: string;
}

// ---- the spec's request bodies (after validation) --------------------------------

export interface EmailAttachment {
  filename: string;
  type: (typeof ATTACHMENT_TYPES)[number];
  content: string;
}

export interface SubmitEmailBody {
  sender: { id: string; name?: string };
  email: string;
  list_id: number;
  contact_id?: number;
  content: {
    type: (typeof EMAIL_TYPES)[number];
    subject: string;
    html?: string;
    text?: string;
    encoding?: string;
    template?: { id: number };
    custom_attributes?: { name: string; value: string }[];
    markup?: Record<string, unknown>;
  };
  tags?: string[];
  tracking?: { opens?: boolean; clicks_html?: boolean; clicks_text?: boolean };
  additional_headers?: { name: string; value: string }[];
  attachment?: EmailAttachment | EmailAttachment[];
}

// ---- the fake ------------------------------------------------------------------

export interface FakeCakemailOptions {
  /** Replace the default users (DEFAULT_USERS). */
  users?: readonly SeedUser[];
  /** Replace the default accounts (DEFAULT_ACCOUNTS). */
  accounts?: readonly SeedAccount[];
  /** Access token lifetime when the client gives no `expiration_seconds`. Default 3600. */
  tokenTtlSeconds?: number;
  /** `'full'` (default) records every call; `'counts'` only counts calls per route. */
  record?: 'full' | 'counts';
  /** Largest request body accepted; larger gets 413. Default 64 MiB. */
  maxBodyBytes?: number;
  /** The spec's schema answers MFA with 200 `{challenge}`; its prose says 401. Default 200. */
  mfaChallengeStatus?: 200 | 401;
  /** Clock in epoch milliseconds, for token expiry. Default `Date.now`. */
  now?: () => number;
}

export interface FakeCakemail {
  /** Base URL, e.g. `http://127.0.0.1:41234`; throws before `listen()`. */
  readonly url: string;
  listen(port?: number, host?: string): Promise<string>;
  /** Stop listening and drop every connection, hung ones included. */
  close(): Promise<void>;

  /** Every call received, in order (empty in `'counts'` mode). */
  readonly calls: readonly RecordedCall[];
  /** Recorded calls of one route. */
  callsTo(route: CountKey): RecordedCall[];
  /** Calls per route, in both recording modes. */
  counts(): Record<CountKey, number>;
  /** Emails answered 201 (queued, or rejected/error by a fault), in order. */
  sent(): SentEmail[];
  /** Forget recorded calls, counts, sent emails and faults. Data and tokens stay. */
  reset(): void;

  readonly faults: FaultSwitches;
  /** The development inbox served at the base URL; `note()` adds the gateway's side of a message. */
  readonly inbox: DevInbox;

  addUser(user: SeedUser): void;
  addAccount(account: SeedAccount): void;
  addSender(accountId: number, sender: SeedSender): SenderRecord;
  addList(accountId: number, list: SeedList): ListRecord;
  /** Mark a sender confirmed (or not). */
  confirmSender(accountId: number, senderId: string, confirmed?: boolean): void;
  senders(accountId: number): SenderRecord[];
  lists(accountId: number): ListRecord[];
  /** Make every access token issued so far expired (refresh tokens stay valid). */
  expireTokens(): void;
  /**
   * Change a user's password, as the user would at Cakemail: `POST /token` with the old one answers
   * 401 from now on. Tokens already issued stay valid (see `revokeTokens`). Throws for an unknown user.
   */
  setPassword(email: string, password: string): void;
  /**
   * Revoke every token issued to this user: its access tokens answer 401 `Invalid token` and a
   * refresh with its refresh tokens 401 `Invalid refresh token`, in the spec's error shape.
   * Answers how many refresh tokens were revoked.
   */
  revokeTokens(email: string): number;
}
