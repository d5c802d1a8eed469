/**
 * Header helpers: unfolding raw header lines, stripping control characters, neutralizing
 * RFC 2047 encoded-words whose decoded text would carry CR/LF, and the keep/drop rules for
 * `additional_headers`.
 */
import type { EmailHeader } from '../types.js';

/** Headers the gateway reads and never forwards (the API fields carry them). */
export const CONTROL_HEADERS: ReadonlySet<string> = new Set([
  'x-sender-id',
  'x-account-id',
  'x-list-id',
  'x-email-api-type',
  'x-tags',
  'x-track-opens',
  'x-track-clicks-html',
  'x-track-clicks-text',
]);

/** Non-X headers forwarded in `additional_headers`. */
export const KEPT_HEADERS: ReadonlySet<string> = new Set([
  'reply-to',
  'cc',
  'in-reply-to',
  'references',
  'message-id',
  'list-unsubscribe',
  'list-unsubscribe-post',
]);

/**
 * Bounds on `additional_headers`; past them the message is refused (`552 5.3.4`). Real mail
 * forwards a few dozen headers (a message that went through Exchange carries up to about 60
 * X- headers); the longest is References in a long thread, a few KiB. Postfix's
 * `header_size_limit` (102400 bytes for one header) sets the per-header bound.
 */
export const MAX_FORWARDED_HEADERS = 256;
/** One forwarded header, `Name: value` in UTF-8 bytes. */
export const MAX_FORWARDED_HEADER_BYTES = 102_400;
/** All forwarded headers together. */
export const MAX_FORWARDED_HEADERS_TOTAL_BYTES = 256 * 1024;

/**
 * Transport traces, added or rewritten on the way, not by the author: never forwarded, and left
 * out of the fingerprint.
 */
export const TRACE_HEADERS: ReadonlySet<string> = new Set([
  'received',
  'return-path',
  'dkim-signature',
  'x-received',
  'x-google-dkim-signature',
  'delivered-to',
]);

/**
 * Whether a header (lower-case name) goes to `additional_headers`. Everything not kept is
 * dropped: Bcc, the control headers, Received, Return-Path, DKIM-Signature, Content-Type,
 * Content-Transfer-Encoding, MIME-Version, To/From/Subject/Date (carried by API fields or set by
 * Cakemail) and any other non-X header (Sender, Organization, ARC-*, …).
 */
export function isForwardedHeader(name: string): boolean {
  if (KEPT_HEADERS.has(name)) return true;
  return name.startsWith('x-') && !CONTROL_HEADERS.has(name) && !TRACE_HEADERS.has(name);
}

/**
 * C0, DEL, C1 (U+0080-U+009F, NEL among them) and the Unicode line breaks (LS, PS) that some
 * parsers (Python's splitlines(), for one) take for line ends.
 */
// eslint-disable-next-line no-control-regex
const CONTROL = /[\x00-\x1f\x7f-\x9f\u2028\u2029]+/g;
/**
 * The bidirectional formatting characters (LRM, RLM, ALM, the embeddings and overrides
 * U+202A-U+202E, the isolates U+2066-U+2069): invisible, they reorder what a reader sees, as in
 * a name that shows `moc.example@` for `@example.com`.
 */
const BIDI = /[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;
// eslint-disable-next-line no-control-regex
const HAS_CONTROL = /[\x00-\x1f\x7f-\x9f\u2028\u2029\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/;

/**
 * For one-line API fields (subject, sender name, header values, texts from the API): control
 * characters (C0, DEL, C1, Unicode line breaks) become one space, bidirectional formatting
 * characters are removed, runs of spaces become one, and the result is trimmed.
 */
export function stripControl(text: string): string {
  // Most values hold none of it: one scan instead of three replaces.
  if (!HAS_CONTROL.test(text) && !text.includes('  ')) return text.trim();
  return text.replace(CONTROL, ' ').replace(BIDI, '').replace(/ {2,}/g, ' ').trim();
}

/** Whether `stripControl` would change more than spaces in `text`. */
export function hasControl(text: string): boolean {
  return HAS_CONTROL.test(text);
}

/**
 * RFC 5322 field name: printable US-ASCII (33-126) except the colon. A name with a space, a
 * control character or an 8-bit byte is not a header the gateway can forward.
 */
export const FIELD_NAME = /^[!-9;-~]+$/;

const utf8 = new TextDecoder('utf-8', { fatal: true });
const NON_ASCII = /[\u0080-\uffff]/;

/**
 * A raw header line as mailparser gives it (`Name: value`, folded, bytes as latin1) →
 * `{name, value}` with the value unfolded, UTF-8 decoded when it is valid UTF-8, and without
 * control characters; undefined when the name is not an RFC 5322 field name (`FIELD_NAME`).
 */
export function splitHeaderLine(line: string): EmailHeader | undefined {
  const colon = line.indexOf(':');
  if (colon <= 0) return undefined;
  // obsolete syntax (RFC 5322 4.5) allows white space before the colon
  const before = line.charCodeAt(colon - 1);
  const name = before === 0x20 || before === 0x09 ? line.slice(0, colon).replace(/[ \t]+$/, '') : line.slice(0, colon);
  if (!FIELD_NAME.test(name)) return undefined;
  let value = line.slice(colon + 1);
  if (value.includes('\n')) value = value.replace(/\r?\n(?=[ \t])/g, '');
  // ASCII reads the same in latin1 and UTF-8: only a value with 8-bit bytes is decoded
  if (NON_ASCII.test(value)) {
    try {
      value = utf8.decode(Buffer.from(value, 'latin1'));
    } catch {
      // not UTF-8: keep the latin1 reading
    }
  }
  return { name, value: stripControl(value) };
}

const ENCODED_WORD = /=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?=/g;

/** Decodes one RFC 2047 encoded-word's payload; undefined when the charset is unknown. */
export function decodeEncodedWord(charset: string, encoding: string, payload: string): { text: string; known: boolean } {
  const bytes =
    encoding.toUpperCase() === 'B'
      ? Buffer.from(payload, 'base64')
      : Buffer.from(
          payload.replace(/_/g, ' ').replace(/=([0-9a-fA-F]{2})/g, (_m, h: string) => String.fromCharCode(parseInt(h, 16))),
          'latin1',
        );
  const cs = charset.replace(/\*.*$/, ''); // RFC 2231 language suffix
  try {
    return { text: new TextDecoder(cs).decode(bytes), known: true };
  } catch {
    return { text: bytes.toString('latin1'), known: false };
  }
}

/**
 * Encoded-words are kept as they are (headers stay ASCII, the receiver decodes them), except
 * those whose decoded text holds control characters (an attempt to smuggle CR/LF): these are
 * replaced by their cleaned text, re-encoded as UTF-8 base64.
 */
export function neutralizeEncodedWords(value: string): string {
  return value.replace(ENCODED_WORD, (word, charset: string, enc: string, payload: string) => {
    const { text } = decodeEncodedWord(charset, enc, payload);
    if (!hasControl(text)) return word;
    return `=?UTF-8?B?${Buffer.from(stripControl(text), 'utf8').toString('base64')}?=`;
  });
}
