/**
 * Delivery status notifications (bounces) through the Email API. The API builds its own MIME
 * and takes no `multipart/report`, so the RFC 3464 fields travel in an
 * ordinary email: from the account's sender that MAIL FROM matched, to that same address,
 * subject `Undelivered Mail Returned to Sender`, a text and an HTML part with the per-recipient
 * fields and the original's Subject, Message-ID and Date (never its body), and the headers
 * `Auto-Submitted: auto-replied` (RFC 3834) and `X-Gateway-Bounce: yes`.
 *
 * The module builds and sends; bounce-later.ts decides when, and counts.
 */
import type { SenderInfo, SendResult } from '../client.js';
import type { OriginalHeaders } from '../message/parsed.js';
import type { EmailBody, EmailHeader } from '../types.js';

export const BOUNCE_SUBJECT = 'Undelivered Mail Returned to Sender';

/** The display name of the bounce's sender. */
export const BOUNCE_SENDER_NAME = 'Mail Delivery System';

/** One recipient that will not get the message. */
export interface RefusedRecipient {
  readonly address: string;
  /** RFC 3463 status, `5.x.x`. */
  readonly status: string;
  /** The HTTP status Cakemail answered (201 for a `rejected`/`error` status in the answer). */
  readonly httpStatus?: number;
  /** Cakemail's message, or the reply the client was given. */
  readonly reason: string;
}

export interface BounceInput {
  /** `Reporting-MTA: dns; <reportingMta>`: SMTP_HOSTNAME. */
  readonly reportingMta: string;
  /** The account's confirmed sender that MAIL FROM matched: the bounce is from and to it. */
  readonly sender: Pick<SenderInfo, 'id' | 'email'>;
  /** The list the original message used. */
  readonly listId: number;
  readonly refused: readonly RefusedRecipient[];
  readonly original: { readonly subject: string } & OriginalHeaders;
  /** When the gateway received the original. */
  readonly arrivalDate: Date;
  /** The lines that explain what happened, before the recipients; default: refused while others got it. */
  readonly explanation?: readonly string[];
}

/** The default explanation: a message relayed at once, some recipients refused for good. */
const PARTIAL_EXPLANATION: readonly string[] = [
  'Your message was accepted, but it could not be delivered to the recipients below:',
  'Cakemail refused them for good. The other recipients got it.',
];

/** The `POST /v2/emails` body of the bounce. */
export function buildBounce(input: BounceInput): EmailBody {
  const text = bounceText(input);
  return {
    sender: { id: input.sender.id, name: BOUNCE_SENDER_NAME },
    email: input.sender.email,
    list_id: input.listId,
    content: {
      type: 'transactional',
      subject: BOUNCE_SUBJECT,
      text,
      html: `<pre>${escapeHtml(text)}</pre>`,
      encoding: 'utf-8',
    },
    tracking: { opens: false, clicks_html: false, clicks_text: false },
    additional_headers: BOUNCE_HEADERS,
  };
}

const BOUNCE_HEADERS: readonly EmailHeader[] = Object.freeze([
  Object.freeze({ name: 'Auto-Submitted', value: 'auto-replied' }),
  Object.freeze({ name: 'X-Gateway-Bounce', value: 'yes' }),
]);

/** Sends the bounce with a caller that holds the account's token. Rejects as the send does. */
export async function sendBounce(send: (body: EmailBody) => Promise<SendResult>, input: BounceInput): Promise<SendResult> {
  return send(buildBounce(input));
}

/**
 * True when a message must never cause a bounce: the null sender (`MAIL FROM:<>`), an
 * `X-Gateway-Bounce: yes` header, or an `Auto-Submitted` other than `no` (RFC 3834).
 */
export function isBounceExempt(
  envelopeFrom: string,
  original: OriginalHeaders,
  headers: readonly EmailHeader[],
): boolean {
  if (isGatewayBounce(envelopeFrom, headers)) return true;
  const auto = original.autoSubmitted?.split(/[;(]/)[0]?.trim().toLowerCase();
  return auto !== undefined && auto !== '' && auto !== 'no';
}

/** A bounce itself: the null sender, or a gateway's own bounce (`X-Gateway-Bounce: yes`). */
export function isGatewayBounce(envelopeFrom: string, headers: readonly EmailHeader[]): boolean {
  if (envelopeFrom.trim() === '') return true;
  return headers.some((h) => h.name.toLowerCase() === 'x-gateway-bounce' && h.value.trim().toLowerCase() === 'yes');
}

function bounceText(input: BounceInput): string {
  const lines = [
    `This is the mail system at host ${input.reportingMta}.`,
    '',
    ...(input.explanation ?? PARTIAL_EXPLANATION),
    '',
    ...input.refused.map((r) => `<${r.address}>: ${r.reason}`),
    '',
    '--- Delivery report (RFC 3464) ---',
    '',
    `Reporting-MTA: dns; ${input.reportingMta}`,
    `Arrival-Date: ${input.arrivalDate.toUTCString().replace('GMT', '+0000')}`,
  ];
  for (const r of input.refused) {
    lines.push(
      '',
      `Final-Recipient: rfc822; ${r.address}`,
      'Action: failed',
      `Status: ${r.status}`,
      `Diagnostic-Code: ${r.httpStatus === undefined ? `smtp; ${r.reason}` : `http; ${r.httpStatus} ${r.reason}`}`,
    );
  }
  const o = input.original;
  lines.push(
    '',
    '--- Headers of the original message ---',
    '',
    `Subject: ${o.subject}`,
    ...(o.messageId === undefined ? [] : [`Message-ID: ${o.messageId}`]),
    ...(o.date === undefined ? [] : [`Date: ${o.date}`]),
    '',
  );
  return lines.join('\n');
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
