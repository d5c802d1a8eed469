/**
 * When the relay bounces: after the reply, for the recipients Cakemail refused for good while
 * others were accepted, once per message. Its failure is logged and counted; it never changes
 * the reply.
 */
import { isSmtpError } from '@cakemail-smtp/smtp-core';
import type { CallOptions, SenderInfo } from '../client.js';
import { CakemailError, errorLogFields } from '../errors.js';
import type { MessageFacts } from '../message/parsed.js';
import type { Logger } from '../types.js';
import { ACCEPTED_TTL_MS, acceptedKey } from './accepted-store.js';
import { isBounceExempt, sendBounce, type RefusedRecipient } from './bounce.js';
import type { RelayContext } from './context.js';
import { knownId, type Failed, type SendJob } from './fan-out.js';
import { withToken } from './upstream.js';

/** A message's refused recipients to bounce, and what the bounce needs to know of the message. */
export interface BounceRequest {
  readonly job: SendJob;
  readonly facts: MessageFacts;
  readonly envelopeFrom: string;
  /** The account's sender that MAIL FROM matched. */
  readonly sender: SenderInfo;
  readonly listId: number;
  readonly refused: readonly Failed[];
  /** When the message arrived (epoch ms). */
  readonly arrival: number;
}

/** Starts sending the bounce in the background (close() waits for it), unless the message is exempt. */
export function bounceLater(ctx: RelayContext, log: Logger, request: BounceRequest): void {
  const { facts, envelopeFrom } = request;
  if (!ctx.cfg.bounces || isBounceExempt(envelopeFrom, facts.original, facts.headers)) return;
  const task = bounce(ctx, log, request).finally(() => ctx.background.delete(task));
  ctx.background.add(task);
}

async function bounce(ctx: RelayContext, log: Logger, request: BounceRequest): Promise<void> {
  const { job, facts, envelopeFrom, sender, listId, refused, arrival } = request;
  const { auth, accountId } = job;
  const opts: CallOptions = { deadline: Date.now() + ctx.cfg.deadlineMs };
  // One bounce per message: a retry after a lost 250 finds this key and sends none.
  const key = acceptedKey(accountId, facts.fingerprint, '\0bounce');
  try {
    if (facts.identified && (await knownId(ctx, log, key, 'bouncing anyway')) !== undefined) return;
    // From and to the account's sender that MAIL FROM matched (x-sender-id may name another).
    const from =
      sender.email.trim().toLowerCase() === envelopeFrom.trim().toLowerCase()
        ? sender
        : await withToken(auth, opts, (token) => ctx.senders.checkSender(token, accountId, envelopeFrom, opts));
    const recipients: RefusedRecipient[] = refused.map((o) => ({
      address: o.rcpt,
      status: o.error.enhancedCode,
      reason: o.upstream?.message ?? o.error.message,
      ...(o.upstream === undefined ? {} : { httpStatus: o.upstream.status }),
    }));
    const result = await sendBounce(
      (body) => withToken(auth, opts, (token) => ctx.client.sendEmail(token, accountId, body, opts)),
      {
        reportingMta: ctx.cfg.hostname,
        sender: from,
        listId,
        refused: recipients,
        original: { subject: facts.subject, ...facts.original },
        arrivalDate: new Date(arrival),
      },
    );
    if (result.status !== 'queued') throw new CakemailError('permanent', `bounce answered status ${result.status}`, { status: 201, reason: 'http' });
    if (facts.identified) await ctx.store.put(key, result.id, ACCEPTED_TTL_MS).catch(() => undefined);
    ctx.onBounce('sent');
    log.info({ event: 'bounce_sent', accountId, id: result.id, refused: refused.length }, 'delivery status notification sent');
  } catch (err) {
    ctx.onBounce('failed');
    log.warn({ event: 'bounce_failed', accountId, err: isSmtpError(err) ? { reply: err.line } : errorLogFields(err) }, 'delivery status notification not sent');
  }
}
