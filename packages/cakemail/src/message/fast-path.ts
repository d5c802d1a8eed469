/**
 * The fast path: a simple single-part message parsed without mailparser, with the very result
 * mailparser gives (a test compares both on a corpus).
 */
import { hash } from 'node:crypto';
import { FIELD_NAME } from './headers.js';
import { finish, type ParsedMessage } from './parsed.js';

/** Content-Type values the fast path decodes exactly as mailparser does: no decoding at all. */
const SIMPLE_CONTENT_TYPE = /^text\/(plain|html)(?:[ \t]*;[ \t]*charset[ \t]*=[ \t]*(?:"(?:utf-8|us-ascii)"|utf-8|us-ascii))?[ \t]*$/i;
const SIMPLE_ENCODING = /^(?:7bit|8bit|binary)$/i;
const ADDRESS = '[A-Za-z0-9._+-]+@[A-Za-z0-9-]+(?:\\.[A-Za-z0-9-]+)+';
const BARE_ADDRESS = new RegExp(`^<?(${ADDRESS})>?$`);
const NAMED_ADDRESS = new RegExp(`^([A-Za-z0-9]+(?: [A-Za-z0-9]+)*) <(${ADDRESS})>$`);
export const MAX_SIMPLE_HEADER_BYTES = 32 * 1024;
const MAX_SIMPLE_HEADER_LINES = 256;

/** What the header block of a simple message gives (see parseSimple for what simple means). */
export interface SimpleHead {
  /** Where the header block ends: the body starts 4 bytes later, after its blank line. */
  readonly end: number;
  readonly headerLines: Array<{ key: string; line: string }>;
  readonly subject: string | undefined;
  readonly from: ParsedMessage['from'];
  /** text/html; else text/plain. */
  readonly html: boolean;
}

/**
 * The header block at the start of `raw` (which may hold only part of the body), when the
 * message is simple; undefined otherwise.
 */
export function simpleHead(raw: Buffer): SimpleHead | undefined {
  const end = raw.indexOf('\r\n\r\n');
  if (end <= 0 || end > MAX_SIMPLE_HEADER_BYTES) return undefined;
  for (let i = 0; i < end; i++) {
    const b = raw[i] as number;
    if (b >= 0x20 && b < 0x7f) continue;
    if (b === 0x09) continue;
    if (b === 0x0d && raw[i + 1] === 0x0a) continue;
    if (b === 0x0a && raw[i - 1] === 0x0d) continue;
    return undefined;
  }
  const physical = raw.toString('latin1', 0, end).split('\r\n');
  if (physical.length > MAX_SIMPLE_HEADER_LINES) return undefined;
  const headerLines: Array<{ key: string; line: string }> = [];
  for (const text of physical) {
    const c = text.charCodeAt(0);
    if (c === 0x20 || c === 0x09) {
      const last = headerLines[headerLines.length - 1];
      if (last === undefined) return undefined;
      last.line += `\r\n${text}`;
      continue;
    }
    const colon = text.indexOf(':');
    if (colon <= 0) return undefined;
    const name = text.slice(0, colon);
    if (!FIELD_NAME.test(name)) return undefined;
    headerLines.push({ key: name.toLowerCase(), line: text });
  }

  let subject: string | undefined;
  let fromValue: string | undefined;
  let contentType: string | undefined;
  let encoding: string | undefined;
  for (const { key, line } of headerLines) {
    switch (key) {
      // as mailparser does: an empty value is skipped, the first non-empty one counts
      case 'subject':
        subject ||= headerValue(line);
        break;
      case 'from':
        fromValue ||= headerValue(line);
        break;
      case 'content-type':
        if (contentType !== undefined) return undefined;
        contentType = headerValue(line);
        break;
      case 'content-transfer-encoding':
        if (encoding !== undefined) return undefined;
        encoding = headerValue(line);
        break;
      case 'content-disposition':
        return undefined;
    }
  }
  let html = false;
  if (contentType !== undefined) {
    const m = SIMPLE_CONTENT_TYPE.exec(contentType);
    if (!m) return undefined;
    html = m[1]?.toLowerCase() === 'html';
  }
  if (encoding !== undefined && !SIMPLE_ENCODING.test(encoding)) return undefined;
  if (subject?.includes('=?')) return undefined;

  let from: ParsedMessage['from'];
  if (fromValue !== undefined && fromValue !== '') {
    if (/xn--/i.test(fromValue)) return undefined;
    const named = NAMED_ADDRESS.exec(fromValue);
    const bare = named ? undefined : BARE_ADDRESS.exec(fromValue);
    if (named) from = { address: named[2] as string, name: named[1] as string };
    else if (bare && (fromValue.startsWith('<') === fromValue.endsWith('>'))) from = { address: bare[1] as string, name: '' };
    else return undefined;
  }

  return { end, headerLines, subject, from, html };
}

/**
 * The fast path: the whole message in `raw`, parsed without mailparser when it is simple, that
 * is when the result is certainly the one mailparser gives (a test compares both on a corpus):
 *
 * - the header block is printable ASCII with CRLF line ends (folding allowed), every header
 *   `Name: value` with a plain name, at most 32 KiB and 256 lines, no mbox `From ` line;
 * - one Content-Type at most, `text/plain` or `text/html` with no parameter but a UTF-8 or
 *   US-ASCII charset (mailparser does not convert these); no Content-Disposition; one
 *   Content-Transfer-Encoding at most, 7bit, 8bit or binary (no decoding either);
 * - a Subject without encoded-words; a From that is a bare address or `Name Words <address>`
 *   in plain ASCII (no punycode domain).
 *
 * Answers undefined for any other message, which then goes through mailparser.
 */
export function parseSimple(raw: Buffer): ParsedMessage | undefined {
  const head = simpleHead(raw);
  if (head === undefined) return undefined;
  const { end, headerLines, subject, from, html } = head;
  const body = raw.subarray(end + 4);
  // \r?\n → \n: a bare LF is already one.
  const content = body.toString('utf8').replaceAll('\r\n', '\n');
  return finish({
    size: raw.length,
    headerLines,
    bodyDigest: hash('sha256', body, 'hex'),
    subject,
    from,
    html: html ? content : undefined,
    text: html ? undefined : content,
    attachments: [],
  });
}

/** A header value as mailparser reads it (libmime `decodeHeader`): unfolded and trimmed. */
function headerValue(line: string): string {
  const unfolded = (line.includes('\r') || line.includes('\n') ? line.replace(/(?:\r?\n|\r)[ \t]*/g, ' ') : line).trim();
  return unfolded.slice(unfolded.indexOf(':') + 1).trim();
}
