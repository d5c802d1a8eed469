/**
 * The parsed message, as both parse paths (the fast path and mailparser) hand it on, and the
 * step they share: headers sorted into forwarded and control headers, the fingerprint, the
 * subject and body cleaned, the headers a bounce reports.
 */
import type { EscapedBody } from './escaped-body.js';
import { cleanBody } from './body.js';
import { headerFingerprint } from './fingerprint.js';
import {
  MAX_FORWARDED_HEADERS,
  MAX_FORWARDED_HEADER_BYTES,
  MAX_FORWARDED_HEADERS_TOTAL_BYTES,
  isForwardedHeader,
  neutralizeEncodedWords,
  splitHeaderLine,
  stripControl,
} from './headers.js';
import { Refusals } from '../replies.js';
import type { AttachmentType, EmailHeader } from '../types.js';

export const NO_SUBJECT = '(no subject)';

export interface ParsedAttachment {
  readonly filename: string;
  readonly type: AttachmentType;
  /** Base64 text as ASCII buffers, in order. */
  readonly parts: readonly Buffer[];
  readonly length: number;
}

export interface ParsedMessage {
  /** Bytes of the raw message as the client sent it (after dot-unstuffing). */
  readonly size: number;
  /** sha256 (hex) of the message without its trace headers, see `FingerprintStream`. */
  readonly fingerprint: string;
  /**
   * The message carries a Message-ID or a Date, so identical bytes mean the same
   * message (a retry), not a new one that happens to look the same.
   */
  readonly identified: boolean;
  /** Decoded, without control characters; `(no subject)` when missing or empty. */
  readonly subject: string;
  /** The first From address and its display name (decoded, without control characters). */
  readonly from: { readonly address: string; readonly name: string } | undefined;
  /** Decoded, without the control characters JSON would inflate (see `cleanBody`). */
  readonly html: string | undefined;
  readonly text: string | undefined;
  /**
   * A large simple message's text or HTML, already escaped for JSON as it arrived
   * (escaped-body.ts); `html` and `text` are then undefined.
   */
  readonly escaped?: EscapedBody;
  /** The forwarded headers, in message order, within the bounds of `headers.ts`. */
  readonly headers: readonly EmailHeader[];
  /** The gateway's control headers (lower-case name → unfolded values in order). */
  readonly control: ReadonlyMap<string, readonly string[]>;
  readonly attachments: readonly ParsedAttachment[];
  /** Headers a delivery status notification reports or checks (see originalHeaders()). */
  readonly original: OriginalHeaders;
  /** The raw header lines (lower-case name, folded line), in message order. */
  readonly headerLines: ReadonlyArray<{ readonly key: string; readonly line: string }>;
}

/**
 * What the relay keeps of a parsed message while Cakemail answers (the accepted store's key, a
 * bounce, a queued copy): not its text, HTML, attachments or raw header lines, which the
 * request body already holds. Every message in flight holds this much, so it stays small.
 */
export type MessageFacts = Pick<ParsedMessage, 'fingerprint' | 'identified' | 'subject' | 'original' | 'headers'>;

/** A new object with only `parsed`'s facts, so that the rest of the parse can be collected. */
export function factsOf(parsed: ParsedMessage): MessageFacts {
  return { fingerprint: parsed.fingerprint, identified: parsed.identified, subject: parsed.subject, original: parsed.original, headers: parsed.headers };
}

/** The first Message-ID, Date and Auto-Submitted of a message, unfolded, without control characters. */
export interface OriginalHeaders {
  readonly messageId?: string;
  readonly date?: string;
  readonly autoSubmitted?: string;
}

const ORIGINAL_HEADERS: ReadonlyMap<string, keyof OriginalHeaders> = new Map([
  ['message-id', 'messageId'],
  ['date', 'date'],
  ['auto-submitted', 'autoSubmitted'],
]);

function originalHeaders(lines: RawParts['headerLines']): OriginalHeaders {
  const out: { -readonly [K in keyof OriginalHeaders]: string } = {};
  for (const { key, line } of lines) {
    const field = ORIGINAL_HEADERS.get(key);
    if (field === undefined || out[field] !== undefined) continue;
    const value = splitHeaderLine(line)?.value;
    if (value) out[field] = value.length > 998 ? value.slice(0, 998) : value;
  }
  return out;
}

/** What a parse path read, before `finish()`. */
export interface RawParts {
  readonly size: number;
  readonly headerLines: ReadonlyArray<{ readonly key: string; readonly line: string }>;
  readonly bodyDigest: string;
  readonly subject: string | undefined;
  readonly from: ParsedMessage['from'];
  readonly html: string | false | undefined;
  readonly text: string | false | undefined;
  readonly escaped?: EscapedBody | undefined;
  readonly attachments: readonly ParsedAttachment[];
}

/**
 * Headers, control headers, fingerprint and content from what either path parsed. Throws
 * `S552_HEADERS_TOO_LARGE` past the bounds on forwarded headers.
 */
export function finish(raw: RawParts): ParsedMessage {
  const headers: EmailHeader[] = [];
  const control = new Map<string, string[]>();
  let identified = false;
  let total = 0;
  for (const { key, line } of raw.headerLines) {
    if (key === 'message-id' || key === 'date') identified = true;
    if (key.startsWith('x-') && !isForwardedHeader(key)) {
      const h = splitHeaderLine(line);
      if (h) {
        const values = control.get(key);
        if (values) values.push(h.value);
        else control.set(key, [h.value]);
      }
      continue;
    }
    if (!isForwardedHeader(key)) continue;
    // undefined for a name that is not an RFC 5322 field name: such a header is dropped
    const h = splitHeaderLine(line);
    if (!h || !h.value) continue;
    const header = { name: h.name, value: neutralizeEncodedWords(h.value) };
    const bytes = Buffer.byteLength(header.name) + 2 + Buffer.byteLength(header.value);
    if (bytes > MAX_FORWARDED_HEADER_BYTES) {
      throw Refusals.headerTooLong(header.name, bytes, MAX_FORWARDED_HEADER_BYTES);
    }
    total += bytes;
    if (total > MAX_FORWARDED_HEADERS_TOTAL_BYTES) {
      throw Refusals.headersTooLarge(MAX_FORWARDED_HEADERS_TOTAL_BYTES);
    }
    if (headers.push(header) > MAX_FORWARDED_HEADERS) {
      throw Refusals.tooManyHeaders(MAX_FORWARDED_HEADERS);
    }
  }

  return {
    size: raw.size,
    fingerprint: headerFingerprint(raw.headerLines, raw.bodyDigest),
    identified,
    subject: stripControl(raw.subject ?? '') || NO_SUBJECT,
    from: raw.from,
    html: nonEmpty(raw.html ? cleanBody(raw.html) : undefined),
    text: nonEmpty(raw.text ? cleanBody(raw.text.endsWith('\n') ? raw.text.slice(0, -1) : raw.text) : undefined),
    ...(raw.escaped === undefined ? {} : { escaped: raw.escaped }),
    headers,
    control,
    attachments: raw.attachments,
    original: originalHeaders(raw.headerLines),
    headerLines: raw.headerLines,
  };
}


function nonEmpty(s: string | undefined): string | undefined {
  return s === undefined || s === '' ? undefined : s;
}
