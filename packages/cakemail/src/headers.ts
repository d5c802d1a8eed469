/**
 * Header helpers: unfolding raw header lines, stripping control characters, neutralizing
 * RFC 2047 encoded-words whose decoded text would carry CR/LF, and the keep/drop rules for
 * `additional_headers`.
 */
import type { EmailHeader } from './types.js';

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

/** X- headers that are transport traces, not the sender's: dropped like Received. */
export const DROPPED_X_HEADERS: ReadonlySet<string> = new Set(['x-received', 'x-google-dkim-signature']);

/**
 * Whether a header (lower-case name) goes to `additional_headers`. Everything not kept is
 * dropped: Bcc, the control headers, Received, Return-Path, DKIM-Signature, Content-Type,
 * Content-Transfer-Encoding, MIME-Version, To/From/Subject/Date (carried by API fields or set by
 * Cakemail) and any other non-X header (Sender, Organization, ARC-*, …).
 */
export function isForwardedHeader(name: string): boolean {
  if (KEPT_HEADERS.has(name)) return true;
  return name.startsWith('x-') && !CONTROL_HEADERS.has(name) && !DROPPED_X_HEADERS.has(name);
}

/** Control characters (CR, LF, NUL, TAB, …) become one space; the result is trimmed. */
export function stripControl(text: string): string {
  // C0, DEL, and the Unicode line breaks (NEL, LS, PS) that some parsers (Python's
  // splitlines(), for one) take for line ends
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\x00-\x1f\x7f\u0085\u2028\u2029]+/g, ' ').replace(/ {2,}/g, ' ').trim();
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * A raw header line as mailparser gives it (`Name: value`, folded, bytes as latin1) →
 * `{name, value}` with the value unfolded, UTF-8 decoded when it is valid UTF-8, and without
 * control characters.
 */
export function splitHeaderLine(line: string): EmailHeader | undefined {
  const colon = line.indexOf(':');
  if (colon <= 0) return undefined;
  const name = stripControl(line.slice(0, colon));
  let value = line.slice(colon + 1).replace(/\r?\n(?=[ \t])/g, '');
  const bytes = Buffer.from(value, 'latin1');
  try {
    value = utf8.decode(bytes);
  } catch {
    // not UTF-8: keep the latin1 reading
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
    // eslint-disable-next-line no-control-regex
    if (!/[\x00-\x1f\x7f\u0085\u2028\u2029]/.test(text)) return word;
    return `=?UTF-8?B?${Buffer.from(stripControl(text), 'utf8').toString('base64')}?=`;
  });
}
