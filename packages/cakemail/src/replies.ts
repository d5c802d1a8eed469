/**
 * Cakemail's words: every reply the relay sends about Cakemail, its login, its senders and
 * accounts, or the mapping of a message to the Email API. smtp-core keeps the protocol and limit
 * replies; these are the rest. The texts with a detail in them are built here too, so a change
 * of wording happens in this file only.
 */
import { SmtpError } from '@cakemail-smtp/smtp-core';

type Entry = readonly [code: number, enhanced: string, text: string];

const table = {
  S451_UPSTREAM_UNAVAILABLE: [451, '4.3.0', 'Cakemail is temporarily unavailable, try again later'],
  S451_UPSTREAM_RATE_LIMITED: [451, '4.7.1', 'Cakemail rate limit reached, try again later'],
  S451_DELIVERY_IN_PROGRESS: [451, '4.3.0', 'A delivery of this message is still in progress, try again later'],
  S451_QUEUE_UNAVAILABLE: [451, '4.3.0', 'The message could not be queued, try again later'],
  S452_QUEUE_FULL: [452, '4.3.1', 'Insufficient system storage, try again later'],
  S535_AUTH_MFA: [
    535,
    '5.7.8',
    'This Cakemail account uses multi-factor authentication, which SMTP cannot complete; use an account without MFA',
  ],
  S550_ACCOUNT_NOT_ALLOWED: [550, '5.7.1', 'The x-account-id header names an account this login cannot use'],
  S550_UPSTREAM_FORBIDDEN: [550, '5.7.1', 'Cakemail refused this sender or account'],
  S550_UPSTREAM_REJECTED: [550, '5.6.0', 'Cakemail rejected the message'],
  S550_BAD_TAG: [550, '5.6.0', 'Invalid tag'],
  S550_BAD_CONTROL_HEADER: [550, '5.6.0', 'Invalid gateway control header'],
  S552_HEADERS_TOO_LARGE: [552, '5.3.4', 'Too many or too long headers to forward'],
  S552_CONVERTED_TOO_BIG: [552, '5.3.4', 'Message too large once converted for Cakemail'],
  S553_SENDER_NOT_ALLOWED: [553, '5.7.1', 'Sender address is not a confirmed sender of this Cakemail account'],
  S554_ATTACHMENT_REFUSED: [554, '5.6.1', 'Attachment type not allowed'],
  S554_ATTACHMENT_MISMATCH: [554, '5.6.1', 'Attachment content does not match its type'],
  S554_AMBIGUOUS_HEADER: [554, '5.6.0', 'A gateway control header appears more than once'],
  S554_MESSAGE_INVALID: [554, '5.6.0', 'Message could not be parsed'],
} as const satisfies Record<string, Entry>;

export type CakemailReplyName = keyof typeof table;

/** The table as ready-made errors: `throw CakemailReplies.S553_SENDER_NOT_ALLOWED`. */
export const CakemailReplies: { readonly [K in CakemailReplyName]: SmtpError } = Object.freeze(
  Object.fromEntries(
    Object.entries(table).map(([name, [code, enhanced, text]]) => [name, new SmtpError(code, enhanced, text)]),
  ) as { [K in CakemailReplyName]: SmtpError },
);

/** A table reply with a more specific text, same codes. */
function reply(name: CakemailReplyName, text: string): SmtpError {
  return CakemailReplies[name].withText(text);
}

/** The replies whose text names what was wrong. */
export const Refusals = {
  upstreamForbidden: (apiMessage: string): SmtpError =>
    reply('S550_UPSTREAM_FORBIDDEN', `Cakemail refused this sender or account: ${apiMessage}`),
  upstreamRejected: (apiMessage: string): SmtpError => reply('S550_UPSTREAM_REJECTED', `Cakemail rejected the message: ${apiMessage}`),
  /** A 201 whose status is not `queued`. */
  upstreamStatus: (status: string): SmtpError => reply('S550_UPSTREAM_REJECTED', `Cakemail rejected the message (status ${status})`),
  unknownSenderId: (): SmtpError =>
    reply('S553_SENDER_NOT_ALLOWED', 'The x-sender-id header names no confirmed sender of this Cakemail account'),
  attachmentRefused: (name: string, allowed: string): SmtpError =>
    reply('S554_ATTACHMENT_REFUSED', `Attachment "${name}" is not allowed; allowed types: ${allowed}`),
  attachmentMismatch: (name: string, extension: string, content: string): SmtpError =>
    reply('S554_ATTACHMENT_MISMATCH', `Attachment "${name}" is not a valid ${extension} file: its content ${content}`),
  headerTooLong: (name: string, bytes: number, max: number): SmtpError =>
    reply('S552_HEADERS_TOO_LARGE', `Header ${name.slice(0, 100)} is too long to forward: ${bytes} bytes, at most ${max}`),
  headersTooLarge: (max: number): SmtpError =>
    reply('S552_HEADERS_TOO_LARGE', `Headers too large to forward: more than ${max} bytes in all`),
  tooManyHeaders: (max: number): SmtpError => reply('S552_HEADERS_TOO_LARGE', `Too many headers to forward: more than ${max}`),
  ambiguousHeader: (name: string, count: number): SmtpError =>
    reply('S554_AMBIGUOUS_HEADER', `The ${name} header appears ${count} times; it must appear once`),
  badControlHeader: (name: string, why: string): SmtpError => reply('S550_BAD_CONTROL_HEADER', `Invalid ${name} header: ${why}`),
  badTag: (tag: string): SmtpError =>
    reply('S550_BAD_TAG', `Invalid tag "${tag.slice(0, 100)}": tags may contain only letters, digits, - and _`),
  convertedTooBig: (bytes: number): SmtpError =>
    reply('S552_CONVERTED_TOO_BIG', `Message too large once converted for Cakemail: ${bytes} bytes, more than twice its size; send it in UTF-8`),
} as const;
