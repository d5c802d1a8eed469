/**
 * The relay backend: smtp-core's Backend/Session, relaying each message to Cakemail.
 *
 * auth → the authenticator; MAIL FROM → the confirmed-sender check; RCPT → recorded (smtp-core
 * enforces MAX_RECIPIENTS); DATA → parse, map, then one `POST /v2/emails` per envelope recipient
 * with bounded concurrency, every accepted recipient remembered in the accepted store so that a
 * retried message skips it and still reports its id. A recipient is marked in flight while its
 * send waits on Cakemail, so a retry that arrives meanwhile waits for the outcome instead of
 * sending a second copy. When some recipients are accepted and others refused for good, the
 * sender gets a delivery status notification (bounce.ts).
 */
import { hostname } from 'node:os';
import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Dispatcher } from 'undici';
import { z } from 'zod';
import {
  isSmtpError,
  reply,
  Replies,
  type AuthDecision,
  type Backend,
  type ConnectionInfo,
  type Credentials,
  type DataInfo,
  type Session,
  type SmtpError,
} from '@cakemail-smtp/smtp-core';
import { ACCEPTED_TTL_MS, MemoryAcceptedStore, acceptedKey, type AcceptedStore } from './accepted-store.js';
import { CakemailAuthenticator, describe, type AuthSession } from './auth.js';
import { isBounceExempt, sendBounce, type RefusedRecipient } from './bounce.js';
import { CakemailClient, type CallOptions, type SenderInfo } from './client.js';
import { CakemailError } from './errors.js';
import { DEFAULT_INFLIGHT_WAIT_MS, INFLIGHT_MARGIN_MS, MemoryInflightMarks, type InflightMarks } from './inflight.js';
import { ListResolver } from './lists.js';
import { explainHeaders } from './explain.js';
import { parseMessage, prepareEmail, readControlHeaders, type ParsedMessage } from './mapping.js';
import type { RecipientOutcome, RelayObserver } from './observer.js';
import { SenderDirectory } from './senders.js';
import type { EmailType, Logger } from './types.js';

export interface RelayConfig {
  /** CAKEMAIL_API_URL, e.g. `https://api.cakemail.dev`. */
  readonly apiUrl: string;
  /** CAKEMAIL_TIMEOUT_MS: one HTTP attempt. */
  readonly timeoutMs: number;
  /** UPSTREAM_DEADLINE_MS: the whole relay of one message (or one login), retries included. */
  readonly deadlineMs: number;
  /** Default `content.type` when the message has no `x-email-api-type`. */
  readonly emailType: EmailType;
  /** Default list when the message has no `x-list-id`; else the "SMTP Gateway" list. */
  readonly listId?: number;
  /** Parallel `POST /v2/emails` per message. Default 8. */
  readonly concurrency?: number;
  /** CAKEMAIL_CONNECTIONS: keep-alive connections of the client's Pool. Default 256. */
  readonly connections?: number;
  /** AUTH_CACHE_TTL_MS: how long a cached login vouches for a password. Default 60 s. */
  readonly authCacheTtlMs?: number;
  /** INFLIGHT_WAIT_MS: how long a retry waits for a recipient in flight. Default 15 s. */
  readonly inflightWaitMs?: number;
  /** BOUNCE_PARTIAL_FAILURES: bounce recipients refused for good when others were accepted. Default true. */
  readonly bounces?: boolean;
  /** SMTP_HOSTNAME, the bounces' `Reporting-MTA`. Default the OS host name. */
  readonly hostname?: string;
}

export const relayConfigSchema = z.object({
  apiUrl: z.url({ protocol: /^https?$/ }),
  timeoutMs: z.number().int().positive(),
  deadlineMs: z.number().int().positive(),
  emailType: z.enum(['transactional', 'marketing']).default('transactional'),
  listId: z.number().int().positive().optional(),
  concurrency: z.number().int().min(1).max(64).optional(),
  connections: z.number().int().min(1).max(10_000).optional(),
  authCacheTtlMs: z.number().int().min(0).optional(),
  inflightWaitMs: z.number().int().min(0).optional(),
  bounces: z.boolean().default(true),
  hostname: z.string().min(1).optional(),
});

export interface RelayDeps {
  readonly logger: Logger;
  /** Defaults to a MemoryAcceptedStore. */
  readonly store?: AcceptedStore;
  /** Defaults to MemoryInflightMarks (RedisAcceptedStore's `inflight` shares them across replicas). */
  readonly inflight?: InflightMarks;
  /** Told about each bounce: sent, or failed (not sent). */
  readonly onBounce?: (result: 'sent' | 'failed') => void;
  /** Defaults to a CakemailClient on `config.apiUrl`. */
  readonly client?: CakemailClient;
  /** For the default client, e.g. in tests. */
  readonly dispatcher?: Dispatcher;
  readonly authenticator?: CakemailAuthenticator;
  readonly senders?: SenderDirectory;
  readonly lists?: ListResolver;
  /** Told after each DATA what was relayed and the reply (the development inbox). */
  readonly onRelayed?: RelayObserver;
}

export interface RelayBackend extends Backend {
  /** Waits for the bounces being sent, then closes the API client's connections (when the backend created the client). */
  close(): Promise<void>;
}

export function createRelayBackend(config: RelayConfig, deps: RelayDeps): RelayBackend {
  const cfg = Object.freeze(relayConfigSchema.parse(config));
  const ownsClient = deps.client === undefined;
  const client =
    deps.client ??
    new CakemailClient({
      apiUrl: cfg.apiUrl,
      timeoutMs: cfg.timeoutMs,
      connections: cfg.connections ?? DEFAULT_CONNECTIONS,
      ...(deps.dispatcher === undefined ? {} : { dispatcher: deps.dispatcher }),
    });
  const shared: Shared = {
    cfg: {
      ...cfg,
      concurrency: cfg.concurrency ?? 8,
      inflightWaitMs: cfg.inflightWaitMs ?? DEFAULT_INFLIGHT_WAIT_MS,
      hostname: cfg.hostname ?? hostname(),
    },
    client,
    store: deps.store ?? new MemoryAcceptedStore(),
    inflight: deps.inflight ?? new MemoryInflightMarks(),
    onBounce: deps.onBounce ?? (() => {}),
    background: new Set(),
    auth:
      deps.authenticator ??
      new CakemailAuthenticator({
        client,
        deadlineMs: cfg.deadlineMs,
        logger: deps.logger,
        ...(cfg.authCacheTtlMs === undefined ? {} : { cacheTtlMs: cfg.authCacheTtlMs }),
      }),
    senders: deps.senders ?? new SenderDirectory({ client }),
    lists: deps.lists ?? new ListResolver({ client }),
    logger: deps.logger,
    ...(deps.onRelayed === undefined ? {} : { onRelayed: deps.onRelayed }),
  };
  return {
    newSession: (conn) => new RelaySession(shared, conn),
    close: async () => {
      await Promise.allSettled([...shared.background]);
      if (ownsClient) await client.close();
    },
  };
}

interface Shared {
  readonly cfg: z.infer<typeof relayConfigSchema> & {
    readonly concurrency: number;
    readonly inflightWaitMs: number;
    readonly hostname: string;
  };
  readonly client: CakemailClient;
  readonly store: AcceptedStore;
  readonly inflight: InflightMarks;
  readonly onBounce: (result: 'sent' | 'failed') => void;
  /** Bounces being sent after the reply; close() waits for them. */
  readonly background: Set<Promise<void>>;
  readonly auth: CakemailAuthenticator;
  readonly senders: SenderDirectory;
  readonly lists: ListResolver;
  readonly logger: Logger;
  readonly onRelayed?: RelayObserver;
}

/** Keep-alive connections to the API per replica (CAKEMAIL_CONNECTIONS). */
export const DEFAULT_CONNECTIONS = 256;

/** MAIL FROM looks for the sender in at most this many of the login's accounts. */
const MAX_ACCOUNTS_CHECKED = 20;

/** How often a retry looks again at a recipient in flight elsewhere. */
const INFLIGHT_POLL_MS = 200;

type Outcome =
  | { readonly rcpt: string; readonly ok: true; readonly id: string; readonly reused: boolean; readonly key: string }
  | {
      readonly rcpt: string;
      readonly ok: false;
      readonly error: SmtpError;
      /** What Cakemail answered, for a bounce's Diagnostic-Code. */
      readonly upstream?: { readonly status: number; readonly message: string };
    };

/** What a send to one recipient needs, the same for every recipient of the message. */
interface SendJob {
  readonly auth: AuthSession;
  readonly accountId: number;
  readonly parsed: ParsedMessage;
  readonly prepared: ReturnType<typeof prepareEmail>;
  readonly opts: CallOptions;
  /** A recipient in flight elsewhere is waited for until then (epoch ms). */
  readonly waitUntil: number;
}

/** What DATA learnt so far, for the observer. */
interface Trail {
  started: number;
  accountId?: number;
  headers: ReturnType<typeof explainHeaders>;
  outcomes: RecipientOutcome[];
}

class RelaySession implements Session {
  readonly #s: Shared;
  readonly #log: Logger;
  readonly #sessionId: string;
  #auth: AuthSession | undefined;
  /** The login's account in which MAIL FROM was found a confirmed sender. */
  #senderAccount: number | undefined;

  constructor(shared: Shared, conn: ConnectionInfo) {
    this.#s = shared;
    this.#log = shared.logger.child({ sessionId: conn.id });
    this.#sessionId = conn.id;
  }

  async auth(credentials: Credentials): Promise<AuthDecision> {
    // smtp-core logs the outcome; the reply is the authenticator's.
    try {
      this.#auth = await this.#s.auth.login(credentials.username, credentials.password);
      return { ok: true };
    } catch (err) {
      if (err === Replies.S535_AUTH_INVALID) return { ok: false, reason: 'invalid', reply: Replies.S535_AUTH_INVALID };
      if (err === Replies.S535_AUTH_MFA) return { ok: false, reason: 'denied', reply: Replies.S535_AUTH_MFA };
      if (err === Replies.S454_AUTH_UNAVAILABLE) return { ok: false, reason: 'unavailable', reply: Replies.S454_AUTH_UNAVAILABLE };
      throw err;
    }
  }

  async mail(from: string): Promise<void> {
    // The null sender: the From header is checked at DATA time instead.
    if (from === '') return;
    const auth = this.#requireAuth();
    const opts = { deadline: Date.now() + this.#s.cfg.deadlineMs };
    // The default account first; a sender of another of the login's accounts is accepted too
    // (the message may pick that account with x-account-id; DATA checks against the one used).
    for (const accountId of auth.accounts.slice(0, MAX_ACCOUNTS_CHECKED)) {
      try {
        await this.#withToken(auth, opts, (token) => this.#s.senders.checkSender(token, accountId, from, opts));
        this.#senderAccount = accountId;
        return;
      } catch (err) {
        if (err === Replies.S553_SENDER_NOT_ALLOWED) continue;
        throw this.#toReply(err, 'sender check');
      }
    }
    throw Replies.S553_SENDER_NOT_ALLOWED;
  }

  async rcpt(_to: string): Promise<void> {
    // Recorded by smtp-core (DataInfo.to); the limit is enforced there.
  }

  async data(message: Readable, info: DataInfo): Promise<string> {
    const observe = this.#s.onRelayed;
    if (observe === undefined) return this.#relay(message, info, undefined);
    const trail: Trail = { started: Date.now(), headers: [], outcomes: [] };
    let line = Replies.S451_INTERNAL.line;
    try {
      const text = await this.#relay(message, info, trail);
      line = `250 2.0.0 ${text}`;
      return text;
    } catch (err) {
      line = (isSmtpError(err) ? err : Replies.S451_INTERNAL).line;
      throw err;
    } finally {
      try {
        const { started, accountId, headers, outcomes } = trail;
        observe({
          sessionId: this.#sessionId,
          started,
          finished: Date.now(),
          mailFrom: info.from,
          recipients: [...info.to],
          ...(accountId === undefined ? {} : { accountId }),
          headers,
          outcomes,
          reply: line,
        });
      } catch (err) {
        this.#log.warn({ err: describe(err) }, 'relay observer failed');
      }
    }
  }

  async #relay(message: Readable, info: DataInfo, trail: Trail | undefined): Promise<string> {
    const auth = this.#requireAuth();
    const parsed = await parseMessage(message);
    // The upstream deadline starts once the client has sent the whole message.
    const started = Date.now();
    if (trail) {
      trail.started = started;
      trail.headers = explainHeaders(parsed);
    }
    const opts: CallOptions = { deadline: started + this.#s.cfg.deadlineMs };
    const options = readControlHeaders(parsed.control, this.#s.cfg.emailType);
    // x-account-id, else the account whose confirmed sender MAIL FROM is, else the login's first.
    const accountId = options.accountId ?? this.#senderAccount ?? auth.defaultAccountId;
    if (accountId === undefined || !auth.accounts.includes(accountId)) throw Replies.S550_ACCOUNT_NOT_ALLOWED;
    if (trail) trail.accountId = accountId;

    let sender: SenderInfo;
    let listId: number;
    try {
      sender = await this.#withToken(auth, opts, (token) =>
        options.senderId !== undefined
          ? this.#s.senders.checkSenderId(token, accountId, options.senderId, opts)
          : this.#s.senders.checkSender(token, accountId, info.from || (parsed.from?.address ?? ''), opts),
      );
      listId =
        options.listId ??
        this.#s.cfg.listId ??
        (await this.#withToken(auth, opts, (token) => this.#s.lists.resolve(token, accountId, sender.id, opts)));
    } catch (err) {
      throw this.#toReply(err, 'sender or list lookup');
    }

    const prepared = prepareEmail(parsed, options, {
      senderId: sender.id,
      ...(parsed.from?.name ? { senderName: parsed.from.name } : {}),
      listId,
    });
    this.#log.debug({ from: info.from, headerFrom: parsed.from?.address, to: info.to }, 'relaying message');

    const job: SendJob = {
      auth,
      accountId,
      parsed,
      prepared,
      opts,
      waitUntil: Math.min(started + this.#s.cfg.inflightWaitMs, opts.deadline),
    };
    const outcomes = await mapLimit(info.to, this.#s.cfg.concurrency, (rcpt) => this.#sendOne(job, rcpt));

    if (trail) {
      trail.outcomes = outcomes.map((o) =>
        o.ok ? { rcpt: o.rcpt, ok: true, id: o.id, reused: o.reused } : { rcpt: o.rcpt, ok: false, reply: o.error.line, temporary: o.error.temporary },
      );
    }
    const accepted = outcomes.filter((o): o is Extract<Outcome, { ok: true }> => o.ok);
    const failed = outcomes.filter((o): o is Extract<Outcome, { ok: false }> => !o.ok);
    const temporary = failed.filter((o) => o.error.temporary);
    const refused = failed.filter((o) => !o.error.temporary);
    if (!parsed.identified) await this.#rememberUnidentified(accepted, temporary.length > 0);
    this.#log.info(
      {
        event: 'relayed',
        accountId,
        fingerprint: parsed.fingerprint.slice(0, 16),
        bytes: prepared.size,
        recipients: info.to.length,
        accepted: accepted.length,
        alreadyAccepted: accepted.filter((o) => o.reused).length,
        refused: refused.length,
        temporaryFailures: temporary.length,
        ids: accepted.map((o) => o.id),
        durationMs: Date.now() - started,
      },
      temporary.length ? 'relay incomplete, client will retry' : 'relayed to Cakemail',
    );
    if (refused.length) {
      this.#log.debug({ refused: refused.map((o) => ({ to: o.rcpt, reply: o.error.line })) }, 'recipients refused by Cakemail');
    }

    if (temporary.length > 0) {
      // Accepted recipients are in the store already: the retry skips them.
      const rateLimited = temporary.find((o) => o.error === Replies.S451_UPSTREAM_RATE_LIMITED);
      throw (rateLimited ?? temporary[0])?.error ?? Replies.S451_UPSTREAM_UNAVAILABLE;
    }
    const first = accepted[0];
    if (first === undefined) throw refused[0]?.error ?? Replies.S451_INTERNAL;
    if (refused.length > 0) this.#bounceLater(job, info.from, sender, listId, refused, started);
    let text = `Ok: queued as ${first.id}${accepted.length > 1 ? ` (+${accepted.length - 1} more)` : ''}`;
    if (refused.length > 0) text += `; not sent to ${namesOf(refused.map((o) => o.rcpt))}: ${refused[0]?.error.message ?? ''}`;
    return text.length > 400 ? `${text.slice(0, 397)}...` : text;
  }

  reset(): void {
    this.#senderAccount = undefined;
  }

  logout(): void {
    this.#auth = undefined;
  }

  /**
   * A message without Message-ID and Date: identical bytes may be a new message
   * (a cron job, a printer), so its recipients are remembered only while the
   * client owes a retry (a 4xx), and forgotten once the retry is answered.
   */
  async #rememberUnidentified(accepted: ReadonlyArray<Extract<Outcome, { ok: true }>>, retryExpected: boolean): Promise<void> {
    try {
      await Promise.all(
        accepted.map((o) =>
          retryExpected ? (o.reused ? undefined : this.#s.store.put(o.key, o.id, ACCEPTED_TTL_MS)) : o.reused ? this.#s.store.delete(o.key) : undefined,
        ),
      );
    } catch (err) {
      this.#log.warn({ err: describe(err) }, 'accepted store unavailable, a retry may send some recipients again');
    }
  }

  async #sendOne(job: SendJob, rcpt: string): Promise<Outcome> {
    const { auth, accountId, parsed, prepared, opts } = job;
    const key = acceptedKey(accountId, parsed.fingerprint, rcpt);
    // Only an identified message can be a retry of one in flight (see #rememberUnidentified).
    let mark: string | undefined;
    if (parsed.identified) {
      const turn = await this.#takeTurn(key, job.waitUntil);
      if (turn.kind === 'accepted') return { rcpt, ok: true, id: turn.id, reused: true, key };
      if (turn.kind === 'busy') return { rcpt, ok: false, error: Replies.S451_DELIVERY_IN_PROGRESS };
      mark = turn.token;
    } else {
      const known = await this.#known(key, 'sending anyway');
      if (known !== undefined) return { rcpt, ok: true, id: known, reused: true, key };
    }
    try {
      const result = await this.#withToken(auth, opts, (token) =>
        this.#s.client.sendEmail(token, accountId, prepared.forRecipient(rcpt), opts),
      );
      if (result.status !== 'queued') {
        return {
          rcpt,
          ok: false,
          error: reply('S550_UPSTREAM_REJECTED', `Cakemail rejected the message (status ${result.status})`),
          upstream: { status: 201, message: `status ${result.status}` },
        };
      }
      // Remembered at once (before the mark is cleared), so a retry after a 250 lost on the way,
      // or one waiting on the mark, sends nothing twice.
      if (parsed.identified) {
        try {
          await this.#s.store.put(key, result.id, ACCEPTED_TTL_MS);
        } catch (err) {
          this.#log.warn({ err: describe(err) }, 'accepted store unavailable, a retry may send this recipient again');
        }
      }
      return { rcpt, ok: true, id: result.id, reused: false, key };
    } catch (err) {
      const error = this.#toReply(err, 'send');
      const upstream =
        err instanceof CakemailError && err.status !== undefined && !error.temporary
          ? { status: err.status, message: err.apiMessage || error.message }
          : undefined;
      return { rcpt, ok: false, error, ...(upstream === undefined ? {} : { upstream }) };
    } finally {
      if (mark !== undefined) await this.#s.inflight.release(key, mark);
    }
  }

  /** The accepted store's id for `key`; a store error counts as not known. */
  async #known(key: string, then: string): Promise<string | undefined> {
    try {
      return await this.#s.store.get(key);
    } catch (err) {
      this.#log.warn({ err: describe(err) }, `accepted store unavailable, ${then}`);
      return undefined;
    }
  }

  /**
   * Marks the recipient in flight and answers its id instead when it was accepted already. When
   * another attempt holds the mark, waits until that one is accepted (its id is answered), its
   * mark is gone (this attempt takes it and sends), or `waitUntil` (busy: the client gets 451
   * and retries later). The store is read after the claim, so an attempt accepted and cleared
   * just before it is still seen.
   */
  async #takeTurn(
    key: string,
    waitUntil: number,
  ): Promise<{ readonly kind: 'mine'; readonly token: string } | { readonly kind: 'accepted'; readonly id: string } | { readonly kind: 'busy' }> {
    const ttlMs = this.#s.cfg.deadlineMs + INFLIGHT_MARGIN_MS;
    let waited = false;
    for (;;) {
      const token = await this.#s.inflight.claim(key, ttlMs);
      if (token !== undefined) {
        const known = await this.#known(key, 'sending anyway');
        if (known === undefined) return { kind: 'mine', token };
        await this.#s.inflight.release(key, token);
        return { kind: 'accepted', id: known };
      }
      if (!waited) this.#log.info({ event: 'inflight_wait' }, 'a delivery of this message is in flight, waiting for its outcome');
      waited = true;
      const left = waitUntil - Date.now();
      if (left <= 0) return { kind: 'busy' };
      await sleep(Math.min(INFLIGHT_POLL_MS, left));
      const known = await this.#known(key, 'waiting on');
      if (known !== undefined) return { kind: 'accepted', id: known };
    }
  }

  /**
   * Sends a delivery status notification for the recipients refused for good, after the reply
   * (close() waits for it). Its failure is logged and counted; it never changes the reply.
   */
  #bounceLater(
    job: SendJob,
    envelopeFrom: string,
    sender: SenderInfo,
    listId: number,
    refused: ReadonlyArray<Extract<Outcome, { ok: false }>>,
    arrival: number,
  ): void {
    if (!this.#s.cfg.bounces || isBounceExempt(envelopeFrom, job.parsed.original, job.parsed.headers)) return;
    const task = this.#bounce(job, envelopeFrom, sender, listId, refused, arrival).finally(() => this.#s.background.delete(task));
    this.#s.background.add(task);
  }

  async #bounce(
    job: SendJob,
    envelopeFrom: string,
    sender: SenderInfo,
    listId: number,
    refused: ReadonlyArray<Extract<Outcome, { ok: false }>>,
    arrival: number,
  ): Promise<void> {
    const { auth, accountId, parsed } = job;
    const opts: CallOptions = { deadline: Date.now() + this.#s.cfg.deadlineMs };
    // One bounce per message: a retry after a lost 250 finds this key and sends none.
    const key = acceptedKey(accountId, parsed.fingerprint, '\0bounce');
    try {
      if (parsed.identified && (await this.#known(key, 'bouncing anyway')) !== undefined) return;
      // From and to the account's sender that MAIL FROM matched (x-sender-id may name another).
      const from =
        sender.email.trim().toLowerCase() === envelopeFrom.trim().toLowerCase()
          ? sender
          : await this.#withToken(auth, opts, (token) => this.#s.senders.checkSender(token, accountId, envelopeFrom, opts));
      const recipients: RefusedRecipient[] = refused.map((o) => ({
        address: o.rcpt,
        status: o.error.enhancedCode,
        reason: o.upstream?.message ?? o.error.message,
        ...(o.upstream === undefined ? {} : { httpStatus: o.upstream.status }),
      }));
      const result = await sendBounce(
        (body) => this.#withToken(auth, opts, (token) => this.#s.client.sendEmail(token, accountId, body, opts)),
        {
          reportingMta: this.#s.cfg.hostname,
          sender: from,
          listId,
          refused: recipients,
          original: { subject: parsed.subject, ...parsed.original },
          arrivalDate: new Date(arrival),
        },
      );
      if (result.status !== 'queued') throw new CakemailError('permanent', `bounce answered status ${result.status}`, { status: 201, reason: 'http' });
      if (parsed.identified) await this.#s.store.put(key, result.id, ACCEPTED_TTL_MS).catch(() => undefined);
      this.#s.onBounce('sent');
      this.#log.info({ event: 'bounce_sent', accountId, id: result.id, refused: refused.length }, 'delivery status notification sent');
    } catch (err) {
      this.#s.onBounce('failed');
      this.#log.warn({ event: 'bounce_failed', accountId, err: isSmtpError(err) ? { reply: err.line } : describe(err) }, 'delivery status notification not sent');
    }
  }

  /** Runs `fn` with the access token; after a 401, refreshes once and runs it again. */
  async #withToken<T>(auth: AuthSession, opts: CallOptions, fn: (token: string) => Promise<T>): Promise<T> {
    let token: string;
    try {
      token = await auth.accessToken(opts);
    } catch (err) {
      throw asTemporary(err);
    }
    try {
      return await fn(token);
    } catch (err) {
      if (!(err instanceof CakemailError) || err.kind !== 'auth') throw err;
    }
    try {
      const fresh = await auth.refreshAfterUnauthorized(token, opts);
      return await fn(fresh);
    } catch (err) {
      throw asTemporary(err);
    }
  }

  /** Any failure → the SMTP reply the client sees; never internal detail. */
  #toReply(err: unknown, what: string): SmtpError {
    if (isSmtpError(err)) return err;
    if (err instanceof CakemailError) {
      if (err.kind === 'temporary' || err.kind === 'auth') {
        this.#log.warn({ err: describe(err), during: what }, 'Cakemail temporarily unavailable');
        return err.status === 429 ? Replies.S451_UPSTREAM_RATE_LIMITED : Replies.S451_UPSTREAM_UNAVAILABLE;
      }
      this.#log.info({ err: describe(err), during: what }, 'Cakemail refused');
      if (err.status === 403) {
        return err.apiMessage ? reply('S550_UPSTREAM_FORBIDDEN', `Cakemail refused this sender or account: ${err.apiMessage}`) : Replies.S550_UPSTREAM_FORBIDDEN;
      }
      return err.apiMessage ? reply('S550_UPSTREAM_REJECTED', `Cakemail rejected the message: ${err.apiMessage}`) : Replies.S550_UPSTREAM_REJECTED;
    }
    this.#log.error({ err: describe(err), during: what }, 'relay failed');
    return Replies.S451_INTERNAL;
  }

  #requireAuth(): AuthSession {
    if (!this.#auth) throw Replies.S530_AUTH_REQUIRED;
    return this.#auth;
  }
}

/** An auth failure after the one refresh is temporary (the client retries, logs in again). */
function asTemporary(err: unknown): unknown {
  if (err instanceof CakemailError && err.kind === 'auth') {
    return new CakemailError('temporary', `${err.message} (after token refresh)`, {
      reason: err.reason,
      ...(err.status === undefined ? {} : { status: err.status }),
    });
  }
  return err;
}

function namesOf(addresses: readonly string[]): string {
  const shown = addresses.slice(0, 5).join(', ');
  return addresses.length > 5 ? `${shown} and ${addresses.length - 5} more` : shown;
}

/** `fn` over `items` with at most `limit` running at once; results in input order. */
async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}
