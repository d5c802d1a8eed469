/**
 * An optional observer of the relay: after each DATA, what the message was, what Cakemail
 * answered per recipient and the reply the client got. Development tools show it (the dev
 * inbox); the relay never depends on it, and an observer that throws is ignored.
 */
import type { HeaderMapping } from '../message/explain.js';

export type RecipientOutcome =
  | {
      readonly rcpt: string;
      readonly ok: true;
      /** Cakemail's `data.id`. */
      readonly id: string;
      /** Accepted by an earlier attempt of the same message (nothing sent this time). */
      readonly reused: boolean;
    }
  | {
      readonly rcpt: string;
      readonly ok: false;
      /** The reply this recipient's failure maps to, e.g. `451 4.7.1 …`. */
      readonly reply: string;
      readonly temporary: boolean;
    };

export interface RelayedMessage {
  /** The SMTP session id (as in the log lines). */
  readonly sessionId: string;
  /** Epoch milliseconds: when the message's data had been read, and when the reply was decided. */
  readonly started: number;
  readonly finished: number;
  readonly mailFrom: string;
  readonly recipients: readonly string[];
  /** The account the message was sent for, once known. */
  readonly accountId?: number;
  /** Every header line and what became of it; empty when the message could not be parsed. */
  readonly headers: readonly HeaderMapping[];
  /** One per recipient sent to (empty when the message was refused before any send). */
  readonly outcomes: readonly RecipientOutcome[];
  /** The reply line the client got, e.g. `250 2.0.0 Ok: queued as …`. */
  readonly reply: string;
}

export type RelayObserver = (message: RelayedMessage) => void;
