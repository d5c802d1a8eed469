/**
 * One SMTP connection's relay session (smtp-core's Session).
 *
 * auth → the authenticator; MAIL FROM → the confirmed-sender check; RCPT → recorded (smtp-core
 * enforces MAX_RECIPIENTS); DATA → parse, map, then the fan-out (fan-out.ts) to every envelope
 * recipient. When some recipients are accepted and others refused for good, the sender gets a
 * delivery status notification (bounce-later.ts).
 */
import type { Readable } from 'node:stream';
import { isSmtpError, Replies, type AuthDecision, type ConnectionInfo, type Credentials, type DataInfo, type Session } from '@cakemail-smtp/smtp-core';
import type { AuthSession } from '../auth.js';
import type { CallOptions, SenderInfo } from '../client.js';
import { CakemailError, errorLogFields } from '../errors.js';
import { readControlHeaders } from '../message/control-headers.js';
import { explainHeaders } from '../message/explain.js';
import { parseMessage } from '../message/parse.js';
import { factsOf, type MessageFacts } from '../message/parsed.js';
import { prepareEmail, type PreparedEmail } from '../message/request-body.js';
import { temporaryReply } from '../outcomes.js';
import { CakemailReplies } from '../replies.js';
import { pickSender, pickSenderId, senderWithAddress } from '../senders.js';
import type { Logger } from '../types.js';
import { ACCEPTED_TTL_MS, acceptedKey } from './accepted-store.js';
import { isBounceExempt, isGatewayBounce } from './bounce.js';
import { bounceLater } from './bounce-later.js';
import type { RelayContext } from './context.js';
import { rememberUnidentified, sendAll, type Accepted, type Failed, type SendJob } from './fan-out.js';
import type { RecipientOutcome, RelayObserver } from './observer.js';
import { enqueueMessage, type QueuedBody, type QueueRequest } from './queue.js';
import { failureReply, withToken } from './upstream.js';

/** MAIL FROM looks for the sender in at most this many of the login's accounts. */
const MAX_ACCOUNTS_CHECKED = 20;

/** What DATA prepared (`#prepare`): all that a message holds while Cakemail answers. */
interface Prepared {
  readonly auth: AuthSession;
  readonly accountId: number;
  readonly sender: SenderInfo;
  readonly listId: number;
  readonly prepared: PreparedEmail;
  readonly facts: MessageFacts;
  readonly opts: CallOptions;
  /** When the client had sent the whole message (epoch ms). */
  readonly started: number;
}

/** What DATA learnt so far, for the observer. */
interface Trail {
  started: number;
  accountId?: number;
  headers: ReturnType<typeof explainHeaders>;
  outcomes: RecipientOutcome[];
}

export class RelaySession implements Session {
  readonly #s: RelayContext;
  readonly #log: Logger;
  readonly #sessionId: string;
  #auth: AuthSession | undefined;
  /** The AUTH username (a queued message names it, see QueuedBody.login). */
  #username = '';
  /** The login's account in which MAIL FROM was found a confirmed sender. */
  #senderAccount: number | undefined;

  constructor(ctx: RelayContext, conn: ConnectionInfo) {
    this.#s = ctx;
    this.#log = ctx.logger.child({ sessionId: conn.id });
    this.#sessionId = conn.id;
  }

  async auth(credentials: Credentials): Promise<AuthDecision> {
    // smtp-core logs the outcome and counts 'invalid' towards the lockout; the reply and the
    // reason are the authenticator's (outcomes.ts loginFailure). MFA: right password, refused login.
    const outcome = await this.#s.auth.authenticate(credentials.username, credentials.password);
    if (!outcome.ok) return { ok: false, reason: outcome.reason === 'mfa' ? 'denied' : outcome.reason, reply: outcome.reply };
    this.#auth = outcome.session;
    this.#username = credentials.username;
    return { ok: true };
  }

  async mail(from: string): Promise<void> {
    // The null sender: the From header is checked at DATA time instead.
    if (from === '') return;
    const auth = this.#requireAuth();
    const opts = { deadline: Date.now() + this.#s.cfg.deadlineMs };
    // The default account first; a sender of another of the login's accounts is accepted too
    // (the message may pick that account with x-account-id; DATA checks against the one used).
    for (const accountId of auth.accounts.slice(0, MAX_ACCOUNTS_CHECKED)) {
      let found: SenderInfo | undefined;
      try {
        // With a fresh token and the account's senders cached, the lookup would make no call.
        const cached = auth.fresh ? this.#s.senders.cached(accountId) : undefined;
        found =
          cached !== undefined
            ? senderWithAddress(cached, from)
            : await this.#lookup(auth, opts, (token) => this.#s.senders.findSender(token, accountId, from, opts));
      } catch (err) {
        throw failureReply(this.#log, err, 'sender check');
      }
      if (found !== undefined) {
        this.#senderAccount = accountId;
        return;
      }
    }
    throw CakemailReplies.S553_SENDER_NOT_ALLOWED;
  }

  async rcpt(_to: string): Promise<void> {
    // Recorded by smtp-core (DataInfo.to); the limit is enforced there.
  }

  data(message: Readable, info: DataInfo): Promise<string> {
    // Without an observer, #relay's own promise (an async wrapper would add a promise and the
    // resolving functions of a thenable to every message in flight).
    return this.#s.onRelayed === undefined ? this.#relay(message, info, undefined) : this.#observed(message, info, this.#s.onRelayed);
  }

  async #observed(message: Readable, info: DataInfo, observe: RelayObserver): Promise<string> {
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
        this.#log.warn({ err: errorLogFields(err) }, 'relay observer failed');
      }
    }
  }

  async #relay(message: Readable, info: DataInfo, trail: Trail | undefined): Promise<string> {
    // From here on, only what `#prepare` answers is held while Cakemail answers.
    const { auth, accountId, sender, listId, prepared, facts, opts, started } = await this.#prepare(message, info, trail);
    // What a queued copy holds (QUEUE_MODE fallback and always).
    const queued = (recipients: readonly string[], lastError?: string): QueueRequest => {
      const noBounce = isBounceExempt(info.from, facts.original, facts.headers);
      const body: QueuedBody = {
        v: 1,
        accountId,
        login: this.#username,
        request: prepared.stored,
        fingerprint: facts.fingerprint,
        identified: facts.identified,
        sender: { id: sender.id, email: sender.email },
        listId,
        original: {
          subject: facts.subject,
          ...(facts.original.messageId === undefined ? {} : { messageId: facts.original.messageId }),
          ...(facts.original.date === undefined ? {} : { date: facts.original.date }),
        },
        noBounce,
        arrival: started,
      };
      const isBounce = isGatewayBounce(info.from, facts.headers);
      return { body, auth, envelopeFrom: info.from, recipients, isBounce, ...(lastError === undefined ? {} : { lastError }) };
    };

    const rq = this.#s.queue;
    if (rq?.mode === 'always') {
      // Stored before the reply, every recipient; the workers relay it (no POST on the client's path).
      const answer = await enqueueMessage(rq, this.#log, queued(info.to));
      if (!answer.ok) throw answer.reply;
      this.#log.info(
        { event: 'queued', accountId, fingerprint: facts.fingerprint.slice(0, 16), bytes: prepared.size, recipients: info.to.length, queueId: answer.id },
        'queued for delivery to Cakemail',
      );
      return `Ok: queued as ${answer.id}`;
    }

    const job: SendJob = {
      auth,
      accountId,
      prepared,
      opts,
      waitUntil: Math.min(started + this.#s.cfg.inflightWaitMs, opts.deadline),
      keyOf: (rcpt) => acceptedKey(accountId, facts.fingerprint, rcpt),
      track: facts.identified,
      acceptedTtlMs: ACCEPTED_TTL_MS,
    };
    const outcomes = await sendAll(this.#s, this.#log, job, info.to);

    if (trail) {
      trail.outcomes = outcomes.map((o) =>
        o.ok ? { rcpt: o.rcpt, ok: true, id: o.id, reused: o.reused } : { rcpt: o.rcpt, ok: false, reply: o.error.line, temporary: o.error.temporary },
      );
    }
    const accepted = outcomes.filter((o): o is Accepted => o.ok);
    const failed = outcomes.filter((o): o is Failed => !o.ok);
    const temporary = failed.filter((o) => o.error.temporary);
    const refused = failed.filter((o) => !o.error.temporary);
    // QUEUE_MODE=fallback: what failed temporarily is queued (when the queue takes it), and the
    // client is answered 250. What Cakemail refused for good never is.
    let queueId: string | undefined;
    if (rq !== undefined && temporary.length > 0) {
      const first = temporary[0];
      const answer = await enqueueMessage(rq, this.#log, queued(temporary.map((o) => o.rcpt), first?.detail ?? first?.error.message));
      if (answer.ok) queueId = answer.id;
    }
    const retryExpected = temporary.length > 0 && queueId === undefined;
    if (!facts.identified) await rememberUnidentified(this.#s, this.#log, accepted, retryExpected);
    this.#log.info(
      {
        event: 'relayed',
        accountId,
        fingerprint: facts.fingerprint.slice(0, 16),
        bytes: prepared.size,
        recipients: info.to.length,
        accepted: accepted.length,
        alreadyAccepted: accepted.filter((o) => o.reused).length,
        refused: refused.length,
        temporaryFailures: temporary.length,
        ids: accepted.map((o) => o.id),
        ...(queueId === undefined ? {} : { queueId, queued: temporary.length }),
        durationMs: Date.now() - started,
      },
      retryExpected ? 'relay incomplete, client will retry' : queueId === undefined ? 'relayed to Cakemail' : 'relay incomplete, the rest queued',
    );
    if (refused.length) {
      this.#log.debug({ refused: refused.map((o) => ({ to: o.rcpt, reply: o.error.line })) }, 'recipients refused by Cakemail');
    }

    // Accepted recipients are in the store already: the retry skips them.
    if (retryExpected) throw temporaryReply(temporary.map((o) => o.error));
    const first = accepted[0];
    if (first === undefined && queueId === undefined) throw refused[0]?.error ?? Replies.S451_INTERNAL;
    if (refused.length > 0) {
      bounceLater(this.#s, this.#log, { job, facts, envelopeFrom: info.from, sender, listId, refused, arrival: started });
    }
    const ids = first === undefined ? '' : `${first.id}${accepted.length > 1 ? ` (+${accepted.length - 1} more)` : ''}`;
    let text =
      queueId === undefined
        ? `Ok: queued as ${ids}`
        : `Ok: queued as ${queueId}; delivery to Cakemail deferred` +
          (temporary.length < info.to.length ? ` for ${temporary.length} of ${info.to.length} recipients` : '') +
          (first === undefined ? '' : `; accepted by Cakemail: ${ids}`);
    if (refused.length > 0) text += `; not sent to ${namesOf(refused.map((o) => o.rcpt))}: ${refused[0]?.error.message ?? ''}`;
    return text.length > 400 ? `${text.slice(0, 397)}...` : text;
  }

  /**
   * DATA's first half: parse, map, then the account, sender and list the message goes with, and
   * its request body. The parse itself (text, HTML, header lines) is dropped when this returns:
   * the body holds what Cakemail needs, and `facts` what the relay needs later.
   */
  async #prepare(message: Readable, info: DataInfo, trail: Trail | undefined): Promise<Prepared> {
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
    if (accountId === undefined || !auth.accounts.includes(accountId)) throw CakemailReplies.S550_ACCOUNT_NOT_ALLOWED;
    if (trail) trail.accountId = accountId;

    let sender: SenderInfo;
    let listId: number;
    try {
      const { senders, lists } = this.#s;
      const { senderId } = options;
      const address = info.from || (parsed.from?.address ?? '');
      // With a fresh token, what the cache holds is the lookup's answer without a call (or promise).
      const cached = auth.fresh ? senders.cached(accountId) : undefined;
      if (cached !== undefined) sender = senderId !== undefined ? pickSenderId(cached, senderId) : pickSender(cached, address);
      else {
        sender = await this.#lookup(auth, opts, (token) =>
          senderId !== undefined ? senders.checkSenderId(token, accountId, senderId, opts) : senders.checkSender(token, accountId, address, opts),
        );
      }
      const senderOfList = sender.id;
      listId =
        options.listId ??
        this.#s.cfg.listId ??
        (auth.fresh ? lists.known(accountId) : undefined) ??
        (await this.#lookup(auth, opts, (token) => lists.resolve(token, accountId, senderOfList, opts)));
    } catch (err) {
      throw failureReply(this.#log, err, 'sender or list lookup');
    }

    const prepared = prepareEmail(parsed, options, {
      senderId: sender.id,
      ...(parsed.from?.name ? { senderName: parsed.from.name } : {}),
      listId,
    });
    this.#log.debug({ from: info.from, headerFrom: parsed.from?.address, to: info.to }, 'relaying message');
    return { auth, accountId, sender, listId, prepared, facts: factsOf(parsed), opts, started };
  }

  reset(): void {
    this.#senderAccount = undefined;
  }

  logout(): void {
    this.#auth = undefined;
  }

  /**
   * A sender or list lookup with the login's token (withToken). With a queue, when the token
   * cannot be refreshed because Cakemail is unavailable, the lookup runs with the token as it
   * stands: what it holds (the list id, senders within their TTL) needs no call, and a call it
   * needs fails as Cakemail is failing, so it answers its last known answer (senders.ts) or the
   * failure. Without a queue, the failed refresh is the failure.
   */
  async #lookup<T>(auth: AuthSession, opts: CallOptions, fn: (token: string) => Promise<T>): Promise<T> {
    if (this.#s.queue !== undefined) {
      try {
        await auth.accessToken(opts);
      } catch (err) {
        if (!(err instanceof CakemailError && err.temporary)) throw err;
        return fn(auth.tokens.accessToken);
      }
    }
    return withToken(auth, opts, fn);
  }

  #requireAuth(): AuthSession {
    if (!this.#auth) throw Replies.S530_AUTH_REQUIRED;
    return this.#auth;
  }
}

function namesOf(addresses: readonly string[]): string {
  const shown = addresses.slice(0, 5).join(', ');
  return addresses.length > 5 ? `${shown} and ${addresses.length - 5} more` : shown;
}
