/**
 * SMTP message → `POST /v2/emails` body.
 *
 * `parseMessage()` streams the raw message through mailparser once: text and HTML decoded to
 * UTF-8 from any charset and transfer encoding, attachments typed and base64-encoded once (as
 * they stream), control headers read, forwarded headers unfolded and cleaned, and a fingerprint
 * of the message computed on the way. `readControlHeaders()` validates the gateway's `x-…`
 * headers. `prepareEmail()` serializes the body once, so the fan-out to N recipients sends the
 * same bytes N times with only the `email` field changed.
 */
import { createHash } from 'node:crypto';
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import { MailParser } from 'mailparser';
import type { AttachmentStream, MessageText } from 'mailparser';
import { Replies, reply } from '@cakemail-smtp/smtp-core';
import { ALLOWED_EXTENSIONS, Base64Collector, EXTENSION_OF, apiFilename, attachmentTypeOf, signatureMismatch } from './attachments.js';
import { cleanBody } from './body.js';
import type { EncodedBody } from './client.js';
import {
  MAX_FORWARDED_HEADERS,
  MAX_FORWARDED_HEADER_BYTES,
  MAX_FORWARDED_HEADERS_TOTAL_BYTES,
  isForwardedHeader,
  neutralizeEncodedWords,
  splitHeaderLine,
  stripControl,
} from './headers.js';
import type { AttachmentType, EmailBody, EmailHeader, EmailTracking, EmailType } from './types.js';

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

/** Headers left out of the fingerprint: added or rewritten on the way, not by the author. */
const TRACE_HEADERS = new Set(['received', 'return-path', 'dkim-signature', 'x-received', 'x-google-dkim-signature', 'delivered-to']);

/** Messages up to this size are read whole and tried on the fast path first. */
const SIMPLE_MAX_BYTES = 256 * 1024;

export interface ParseOptions {
  /** Try the fast path for simple single-part messages (default true; tests compare both paths). */
  readonly simple?: boolean;
}

/**
 * Parses the raw message. Always consumes the whole stream. Throws `S554_ATTACHMENT_REFUSED`
 * (naming the first refused attachment), `S554_ATTACHMENT_MISMATCH` (an attachment whose
 * content is not of its type), `S552_HEADERS_TOO_LARGE` or `S554_MESSAGE_INVALID`.
 *
 * A message of at most 256 KiB is read whole first; when it is a simple single-part text/plain
 * or text/html message (see `parseSimple()`), it is parsed synchronously without mailparser.
 * Any other message goes through mailparser, the bytes read so far replayed first.
 */
export async function parseMessage(message: Readable, options: ParseOptions = {}): Promise<ParsedMessage> {
  if (options.simple === false) return parseWithMailparser([], message);
  const head = await readUpTo(message, SIMPLE_MAX_BYTES);
  if (head.failed) throw Replies.S554_MESSAGE_INVALID;
  if (head.ended) {
    const parsed = parseSimple(head.chunks.length === 1 ? (head.chunks[0] as Buffer) : Buffer.concat(head.chunks));
    if (parsed !== undefined) return parsed;
  }
  return parseWithMailparser(head.chunks, head.ended ? undefined : message);
}

interface Head {
  readonly chunks: Buffer[];
  /** The stream ended within the limit: `chunks` is the whole message. */
  readonly ended: boolean;
  /** The stream failed (it has been resumed, to let it end). */
  readonly failed: boolean;
}

/** Reads until the stream ends or more than `limit` bytes came; then pauses it. */
function readUpTo(message: Readable, limit: number): Promise<Head> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let length = 0;
    const done = (ended: boolean, failed: boolean): void => {
      message.off('data', onData);
      message.off('end', onEnd);
      message.off('error', onError);
      if (failed) message.resume();
      else if (!ended) message.pause();
      resolve({ chunks, ended, failed });
    };
    const onData = (chunk: Buffer | string): void => {
      const buf = typeof chunk === 'string' ? Buffer.from(chunk, 'latin1') : chunk;
      chunks.push(buf);
      length += buf.length;
      if (length > limit) done(false, false);
    };
    const onEnd = (): void => done(true, false);
    const onError = (): void => done(false, true);
    message.on('data', onData);
    message.once('end', onEnd);
    message.once('error', onError);
  });
}

/** The message through mailparser: `chunks` first, then the rest of `rest` when given. */
async function parseWithMailparser(chunks: readonly Buffer[], rest: Readable | undefined): Promise<ParsedMessage> {
  const hasher = new FingerprintStream();
  const parser = new MailParser({
    skipHtmlToText: true,
    skipTextToHtml: true,
    skipImageLinks: true,
    skipTextLinks: true,
    checksumAlgo: false,
  });
  const attachments: ParsedAttachment[] = [];
  const unnamed = new Set<ParsedAttachment>();
  const calendars = new Map<string, number>();
  /** Every typed attachment's start, in message order, for the signature check. */
  const heads: Array<{ readonly name: string; readonly type: AttachmentType; readonly head: Buffer }> = [];
  let refused: string | undefined;
  let content: MessageText | undefined;

  parser.on('data', (data: AttachmentStream | MessageText) => {
    if (data.type === 'text') {
      content = data;
      return;
    }
    const type = refused === undefined ? attachmentTypeOf(data.contentType, data.filename) : undefined;
    if (type === undefined) {
      // at most 100 characters: the reply naming it must fit one SMTP reply line (512 octets)
      refused ??= attachmentName(data.filename, data.contentType);
      data.content.on('end', () => data.release?.());
      data.content.resume();
      return;
    }
    const b64 = new Base64Collector({ hash: type === 'calendar' });
    data.content.on('data', (chunk: Buffer) => b64.write(chunk));
    data.content.on('end', () => {
      b64.end();
      const named = Boolean(data.filename);
      const filename = apiFilename(data.filename, type);
      heads.push({ name: attachmentName(data.filename, data.contentType), type, head: b64.head });
      addAttachment(attachments, unnamed, calendars, { filename, type, parts: b64.parts, length: b64.length }, named, b64.digest());
      data.release?.();
    });
  });

  try {
    await new Promise<void>((resolve, reject) => {
      const fail = (err: unknown): void => reject(err instanceof Error ? err : new Error(String(err)));
      parser.once('end', () => resolve());
      parser.once('error', fail);
      hasher.once('error', fail);
      hasher.pipe(parser);
      for (const chunk of chunks) hasher.write(chunk);
      if (rest === undefined) hasher.end();
      else {
        rest.once('error', fail);
        rest.pipe(hasher);
      }
    });
  } catch {
    if (rest !== undefined) {
      rest.unpipe(hasher);
      rest.resume(); // let the stream end; smtp-core replies after it has
    }
    throw Replies.S554_MESSAGE_INVALID;
  }

  if (refused !== undefined) {
    throw reply('S554_ATTACHMENT_REFUSED', `Attachment "${refused}" is not allowed; allowed types: ${ALLOWED_EXTENSIONS}`);
  }
  for (const { name, type, head } of heads) {
    const found = await signatureMismatch(type, head);
    if (found !== undefined) {
      const content = found === 'unknown' ? 'has no recognizable signature' : `looks like ${found}`;
      throw reply('S554_ATTACHMENT_MISMATCH', `Attachment "${name}" is not a valid ${EXTENSION_OF[type]} file: its content ${content}`);
    }
  }

  const first = parser.from?.value[0];
  return finish({
    size: hasher.bytes,
    headerLines: parser.headerLines || [],
    bodyDigest: hasher.bodyDigest(),
    subject: parser.subject,
    from: first?.address ? { address: first.address, name: stripControl(first.name ?? '') } : undefined,
    html: content?.html,
    text: content?.text,
    attachments,
  });
}

/**
 * An attachment's name for a reply: its file name, else its type, without control characters and
 * at most 100 characters, so that the reply naming it fits one SMTP reply line (512 octets).
 */
function attachmentName(filename: string | undefined, contentType: string): string {
  return (stripControl(filename ?? '') || `(unnamed ${stripControl(contentType)})`).slice(0, 100);
}

interface RawParts {
  readonly size: number;
  readonly headerLines: ReadonlyArray<{ readonly key: string; readonly line: string }>;
  readonly bodyDigest: string;
  readonly subject: string | undefined;
  readonly from: ParsedMessage['from'];
  readonly html: string | false | undefined;
  readonly text: string | false | undefined;
  readonly attachments: readonly ParsedAttachment[];
}

/**
 * Headers, control headers, fingerprint and content from what either path parsed. Throws
 * `S552_HEADERS_TOO_LARGE` past the bounds on forwarded headers.
 */
function finish(raw: RawParts): ParsedMessage {
  const headers: EmailHeader[] = [];
  const control = new Map<string, string[]>();
  const fp = createHash('sha256');
  let identified = false;
  let total = 0;
  for (const { key, line } of raw.headerLines) {
    if (!TRACE_HEADERS.has(key)) fp.update(line).update('\n');
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
      throw reply(
        'S552_HEADERS_TOO_LARGE',
        `Header ${header.name.slice(0, 100)} is too long to forward: ${bytes} bytes, at most ${MAX_FORWARDED_HEADER_BYTES}`,
      );
    }
    total += bytes;
    if (total > MAX_FORWARDED_HEADERS_TOTAL_BYTES) {
      throw reply('S552_HEADERS_TOO_LARGE', `Headers too large to forward: more than ${MAX_FORWARDED_HEADERS_TOTAL_BYTES} bytes in all`);
    }
    if (headers.push(header) > MAX_FORWARDED_HEADERS) {
      throw reply('S552_HEADERS_TOO_LARGE', `Too many headers to forward: more than ${MAX_FORWARDED_HEADERS}`);
    }
  }
  fp.update('\0').update(raw.bodyDigest);

  return {
    size: raw.size,
    fingerprint: fp.digest('hex'),
    identified,
    subject: stripControl(raw.subject ?? '') || NO_SUBJECT,
    from: raw.from,
    html: nonEmpty(raw.html ? cleanBody(raw.html) : undefined),
    text: nonEmpty(raw.text ? cleanBody(raw.text.replace(/\n$/, '')) : undefined),
    headers,
    control,
    attachments: raw.attachments,
    original: originalHeaders(raw.headerLines),
    headerLines: raw.headerLines,
  };
}

/** Content-Type values the fast path decodes exactly as mailparser does: no decoding at all. */
const SIMPLE_CONTENT_TYPE = /^text\/(plain|html)(?:[ \t]*;[ \t]*charset[ \t]*=[ \t]*(?:"(?:utf-8|us-ascii)"|utf-8|us-ascii))?[ \t]*$/i;
const SIMPLE_ENCODING = /^(?:7bit|8bit|binary)$/i;
const HEADER_NAME = /^[!-9;-~]+$/;
const ADDRESS = '[A-Za-z0-9._+-]+@[A-Za-z0-9-]+(?:\\.[A-Za-z0-9-]+)+';
const BARE_ADDRESS = new RegExp(`^<?(${ADDRESS})>?$`);
const NAMED_ADDRESS = new RegExp(`^([A-Za-z0-9]+(?: [A-Za-z0-9]+)*) <(${ADDRESS})>$`);
const MAX_SIMPLE_HEADER_BYTES = 32 * 1024;
const MAX_SIMPLE_HEADER_LINES = 256;

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
    if (!HEADER_NAME.test(name)) return undefined;
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

  const body = raw.subarray(end + 4);
  const content = body.toString('utf8').replace(/\r?\n/g, '\n');
  return finish({
    size: raw.length,
    headerLines,
    bodyDigest: createHash('sha256').update(body).digest('hex'),
    subject,
    from,
    html: html ? content : undefined,
    text: html ? undefined : content,
    attachments: [],
  });
}

/** A header value as mailparser reads it (libmime `decodeHeader`): unfolded and trimmed. */
function headerValue(line: string): string {
  const unfolded = line.replace(/(?:\r?\n|\r)[ \t]*/g, ' ').trim();
  return unfolded.slice(unfolded.indexOf(':') + 1).trim();
}

/**
 * Adds an attachment, except a calendar identical to one already there (same content):
 * nodemailer's calendar invitation (`icalEvent`) carries the same calendar twice, as the
 * text/calendar alternative (unnamed) and as an attachment (`invite.ics` or the name given),
 * and the invitation must go out once. The one kept takes the attachment's name when the first
 * was unnamed. Other attachments are sent as they come, duplicates included.
 *
 * Calendars are compared by the sha256 of their content (`digest`, computed as they streamed),
 * looked up in `calendars` (digest → index in `list`): each part is hashed once, so the work is
 * linear in the message, whatever the number of parts.
 */
function addAttachment(
  list: ParsedAttachment[],
  unnamed: Set<ParsedAttachment>,
  calendars: Map<string, number>,
  a: ParsedAttachment,
  named: boolean,
  digest: string | undefined,
): void {
  if (a.type === 'calendar' && digest !== undefined) {
    const i = calendars.get(digest);
    const earlier = i === undefined ? undefined : list[i];
    if (i !== undefined && earlier !== undefined) {
      if (named && unnamed.has(earlier)) {
        list[i] = { ...earlier, filename: a.filename };
        unnamed.delete(earlier);
      }
      return;
    }
    calendars.set(digest, list.length);
  }
  list.push(a);
  if (!named) unnamed.add(a);
}

function nonEmpty(s: string | undefined): string | undefined {
  return s === undefined || s === '' ? undefined : s;
}

/**
 * Passes the raw message through and hashes its body (everything after the first empty line).
 * Headers are hashed from mailparser's header lines instead, trace headers left out, so that
 * the same message retried through another hop (one more Received) has the same fingerprint.
 */
export class FingerprintStream extends Transform {
  readonly #hash = createHash('sha256');
  #inBody = false;
  #newlines = 1; // the message start counts as a line start: an empty first line ends the header
  /** Bytes passed through. */
  bytes = 0;

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.#inBody) this.#hash.update(chunk);
    else {
      for (let i = 0; i < chunk.length; i++) {
        const b = chunk[i];
        if (b === 0x0a) {
          if (++this.#newlines === 2) {
            this.#inBody = true;
            this.#hash.update(chunk.subarray(i + 1));
            break;
          }
        } else if (b !== 0x0d) this.#newlines = 0;
      }
    }
    done(null, chunk);
  }

  bodyDigest(): string {
    return this.#hash.copy().digest('hex');
  }
}

/** The control headers, validated. */
export interface MessageOptions {
  readonly senderId?: string;
  readonly accountId?: number;
  readonly listId?: number;
  readonly type: EmailType;
  readonly tags?: readonly string[];
  readonly tracking?: EmailTracking;
}

const TAG = /^[a-zA-Z0-9_-]{1,255}$/;
/** The control headers that select one thing (all but `x-tags`, whose values are merged). */
const SINGLE_CONTROL_HEADERS = [
  'x-sender-id',
  'x-account-id',
  'x-list-id',
  'x-email-api-type',
  'x-track-opens',
  'x-track-clicks-html',
  'x-track-clicks-text',
] as const;

/**
 * Reads `x-sender-id`, `x-account-id`, `x-list-id`, `x-email-api-type`, `x-tags` and
 * `x-track-*`. Throws `S554_AMBIGUOUS_HEADER` (one of them but `x-tags` present more than once,
 * empty ones included: the gateway never guesses which one was meant), `S550_BAD_TAG`,
 * `S550_ACCOUNT_NOT_ALLOWED` (not a number) or `S550_BAD_CONTROL_HEADER`. `x-tags` may appear
 * many times: its tags are merged.
 */
export function readControlHeaders(control: ReadonlyMap<string, readonly string[]>, defaultType: EmailType): MessageOptions {
  for (const name of SINGLE_CONTROL_HEADERS) {
    const count = control.get(name)?.length ?? 0;
    if (count > 1) throw reply('S554_AMBIGUOUS_HEADER', `The ${name} header appears ${count} times; it must appear once`);
  }
  const one = (name: string): string | undefined => {
    const v = control.get(name)?.[0];
    return v === undefined || v === '' ? undefined : v;
  };
  const bad = (name: string, why: string): never => {
    throw reply('S550_BAD_CONTROL_HEADER', `Invalid ${name} header: ${why}`);
  };
  const opts: { -readonly [K in keyof MessageOptions]: MessageOptions[K] } = { type: defaultType };

  const senderId = one('x-sender-id');
  if (senderId !== undefined) opts.senderId = senderId;

  const account = one('x-account-id');
  if (account !== undefined) {
    if (!/^\d{1,15}$/.test(account) || Number(account) < 1) throw Replies.S550_ACCOUNT_NOT_ALLOWED;
    opts.accountId = Number(account);
  }

  const list = one('x-list-id');
  if (list !== undefined) {
    if (!/^\d{1,15}$/.test(list) || Number(list) < 1) bad('x-list-id', 'expected a list id (a positive number)');
    opts.listId = Number(list);
  }

  const type = one('x-email-api-type')?.toLowerCase();
  if (type !== undefined) {
    if (type !== 'marketing' && type !== 'transactional') bad('x-email-api-type', 'expected marketing or transactional');
    opts.type = type as EmailType;
  }

  const rawTags = control.get('x-tags');
  if (rawTags) {
    const tags = new Set<string>();
    for (const tag of rawTags.flatMap((v) => v.split(',')).map((t) => t.trim())) {
      if (tag === '') continue;
      if (!TAG.test(tag)) {
        throw reply('S550_BAD_TAG', `Invalid tag "${tag.slice(0, 100)}": tags may contain only letters, digits, - and _`);
      }
      tags.add(tag);
    }
    if (tags.size > 0) opts.tags = [...tags];
  }

  const tracking: { opens?: boolean; clicks_html?: boolean; clicks_text?: boolean } = {};
  for (const [header, field] of [
    ['x-track-opens', 'opens'],
    ['x-track-clicks-html', 'clicks_html'],
    ['x-track-clicks-text', 'clicks_text'],
  ] as const) {
    const v = one(header)?.toLowerCase();
    if (v === undefined) continue;
    if (v !== 'true' && v !== 'false') bad(header, 'expected true or false');
    tracking[field] = v === 'true';
  }
  if (Object.keys(tracking).length > 0) opts.tracking = tracking;
  return opts;
}

export interface ResolvedEnvelope {
  readonly senderId: string;
  /** The From display name; omitted when empty. */
  readonly senderName?: string;
  readonly listId: number;
}

/**
 * A request may take at most twice the message's bytes plus this, for the JSON frame (field
 * names, sender, list, tags, tracking).
 */
export const REQUEST_FRAME_ALLOWANCE = 64 * 1024;

/**
 * The body serialized once. `forRecipient(email)` answers the bytes of one recipient's request:
 * a short head with `email` and the shared rest (content, attachments) by reference.
 *
 * A request is never more than about twice its message: at most `2 × parsed.size +
 * REQUEST_FRAME_ALLOWANCE` bytes, else the constructor throws `S552_CONVERTED_TOO_BIG`. Content
 * stays within that (see the README's "Request size"), but for a part in an 8-bit legacy
 * charset whose characters take three UTF-8 bytes each (windows-1252 `€`, Shift_JIS half-width
 * katakana): a message made mostly of those is refused.
 */
export class PreparedEmail {
  readonly #shared: readonly Buffer[];
  readonly #sharedLength: number;

  constructor(parsed: ParsedMessage, options: MessageOptions, envelope: ResolvedEnvelope) {
    const body: Record<string, unknown> = {
      sender: envelope.senderName ? { id: envelope.senderId, name: envelope.senderName } : { id: envelope.senderId },
      list_id: envelope.listId,
      content: {
        type: options.type,
        subject: parsed.subject,
        ...(parsed.html === undefined ? {} : { html: parsed.html }),
        ...(parsed.text === undefined ? {} : { text: parsed.text }),
        encoding: 'utf-8',
      },
    };
    if (options.tags) body['tags'] = options.tags;
    if (options.tracking) body['tracking'] = options.tracking;
    if (parsed.headers.length > 0) body['additional_headers'] = parsed.headers;
    const json = JSON.stringify(body);
    const shared: Buffer[] = [];
    if (parsed.attachments.length === 0) shared.push(Buffer.from(json.slice(1), 'utf8'));
    else {
      shared.push(Buffer.from(`${json.slice(1, -1)},"attachment":[`, 'utf8'));
      parsed.attachments.forEach((a, i) => {
        shared.push(Buffer.from(`${i ? ',' : ''}{"filename":${JSON.stringify(a.filename)},"type":"${a.type}","content":"`, 'utf8'));
        shared.push(...a.parts);
        shared.push(Buffer.from('"}', 'utf8'));
      });
      shared.push(Buffer.from(']}', 'utf8'));
    }
    this.#shared = shared;
    this.#sharedLength = shared.reduce((n, b) => n + b.length, 0);
    const limit = 2 * parsed.size + REQUEST_FRAME_ALLOWANCE;
    if (this.#sharedLength > limit) {
      throw reply(
        'S552_CONVERTED_TOO_BIG',
        `Message too large once converted for Cakemail: ${this.#sharedLength} bytes, more than twice its size; send it in UTF-8`,
      );
    }
  }

  /** Size of one request body, roughly (without the recipient). */
  get size(): number {
    return this.#sharedLength;
  }

  forRecipient(email: string): EncodedBody {
    const head = Buffer.from(`{"email":${JSON.stringify(email)},`, 'utf8');
    return { chunks: [head, ...this.#shared], length: head.length + this.#sharedLength };
  }

  /** The body as an object (tests, debugging): parses the bytes `forRecipient` would send. */
  toJSON(email: string): EmailBody {
    const { chunks } = this.forRecipient(email);
    return JSON.parse(Buffer.concat(chunks).toString('utf8')) as EmailBody;
  }
}

export function prepareEmail(parsed: ParsedMessage, options: MessageOptions, envelope: ResolvedEnvelope): PreparedEmail {
  return new PreparedEmail(parsed, options, envelope);
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
