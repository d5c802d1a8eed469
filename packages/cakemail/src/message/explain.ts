/**
 * What happened to each header of a message, as data: which API field it became, or that it
 * went to `additional_headers`, or why it was dropped. For people (the development inbox), not
 * for the relay: the keep/drop decision is `isForwardedHeader()` itself, and the forwarded value
 * is the one `parseMessage()` produced, so this file adds words, not rules.
 */
import { CONTROL_HEADERS, TRACE_HEADERS, isForwardedHeader, splitHeaderLine } from './headers.js';
import type { ParsedMessage } from './parsed.js';
import type { EmailHeader } from '../types.js';

export interface HeaderMapping {
  /** The header name as the message spells it. */
  readonly name: string;
  /** The raw header line (folded), as received. */
  readonly raw: string;
  /**
   * `forwarded`: in `additional_headers` (`value` is what was sent); `field`: read into an API
   * field (`field`); `dropped`: not sent (`reason`).
   */
  readonly fate: 'forwarded' | 'field' | 'dropped';
  /** The API field: `additional_headers`, `content.subject`, `tags`, … */
  readonly field?: string;
  readonly value?: string;
  readonly reason?: string;
}

/** The gateway's control headers and the API field each one sets. */
const CONTROL_FIELDS: Readonly<Record<string, string>> = {
  'x-sender-id': 'sender.id',
  'x-account-id': 'account_id (query)',
  'x-list-id': 'list_id',
  'x-email-api-type': 'content.type',
  'x-tags': 'tags',
  'x-track-opens': 'tracking.opens',
  'x-track-clicks-html': 'tracking.clicks_html',
  'x-track-clicks-text': 'tracking.clicks_text',
};

/** Headers read into a field, though not control headers. */
const CONTENT_FIELDS: Readonly<Record<string, { field: string; reason: string }>> = {
  subject: { field: 'content.subject', reason: 'decoded to UTF-8' },
  from: { field: 'sender.name', reason: 'the display name; the address must be a confirmed sender (checked when MAIL FROM is empty)' },
  'content-type': { field: 'content.html / content.text / attachment', reason: 'the MIME structure, decoded' },
  'content-transfer-encoding': { field: 'content.html / content.text / attachment', reason: 'the MIME structure, decoded' },
};

const DROP_REASONS: Readonly<Record<string, string>> = {
  to: 'recipients come from RCPT TO, one API call each (email)',
  bcc: 'never forwarded: it would disclose the blind copies',
  date: 'Cakemail dates the message itself',
  'mime-version': 'transport header: Cakemail builds its own MIME',
  received: 'transport trace',
  'return-path': 'transport trace: Cakemail sets its own bounce address',
  'dkim-signature': 'transport trace: Cakemail signs the message it builds',
};

const OTHER_REASON = 'not forwarded: only Reply-To, Cc, In-Reply-To, References, Message-ID, List-Unsubscribe(-Post) and X- headers are';

/** One entry per header line of the message, in message order. */
export function explainHeaders(parsed: Pick<ParsedMessage, 'headerLines' | 'headers'>): HeaderMapping[] {
  const forwarded: EmailHeader[] = [...parsed.headers];
  return parsed.headerLines.map(({ key, line }): HeaderMapping => {
    const name = splitHeaderLine(line)?.name ?? key;
    if (isForwardedHeader(key)) {
      // parsed.headers holds the forwarded headers in message order; empty values were left out
      const next = forwarded[0];
      if (next !== undefined && next.name.toLowerCase() === key) {
        forwarded.shift();
        return { name, raw: line, fate: 'forwarded', field: 'additional_headers', value: next.value };
      }
      return { name, raw: line, fate: 'dropped', reason: 'empty value' };
    }
    const control = CONTROL_FIELDS[key];
    if (control !== undefined && CONTROL_HEADERS.has(key)) {
      return { name, raw: line, fate: 'field', field: control, reason: 'gateway control header, never forwarded' };
    }
    const content = CONTENT_FIELDS[key];
    if (content !== undefined) return { name, raw: line, fate: 'field', field: content.field, reason: content.reason };
    const reason = DROP_REASONS[key] ?? (key.startsWith('x-') && TRACE_HEADERS.has(key) ? 'transport trace' : OTHER_REASON);
    return { name, raw: line, fate: 'dropped', reason };
  });
}
