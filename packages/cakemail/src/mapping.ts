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
import { ALLOWED_EXTENSIONS, Base64Collector, apiFilename, attachmentTypeOf } from './attachments.js';
import type { EncodedBody } from './client.js';
import { isForwardedHeader, neutralizeEncodedWords, splitHeaderLine, stripControl } from './headers.js';
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
  readonly html: string | undefined;
  readonly text: string | undefined;
  /** The forwarded headers, in message order. */
  readonly headers: readonly EmailHeader[];
  /** The gateway's control headers (lower-case name → unfolded values in order). */
  readonly control: ReadonlyMap<string, readonly string[]>;
  readonly attachments: readonly ParsedAttachment[];
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
 * Parses the raw message. Always consumes the whole stream. Throws
 * `S554_ATTACHMENT_REFUSED` (naming the first refused attachment) or `S554_MESSAGE_INVALID`.
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
      refused ??= (stripControl(data.filename ?? '') || `(unnamed ${stripControl(data.contentType)})`).slice(0, 100);
      data.content.on('end', () => data.release?.());
      data.content.resume();
      return;
    }
    const b64 = new Base64Collector();
    data.content.on('data', (chunk: Buffer) => b64.write(chunk));
    data.content.on('end', () => {
      b64.end();
      const named = Boolean(data.filename);
      addAttachment(attachments, unnamed, { filename: apiFilename(data.filename, type), type, parts: b64.parts, length: b64.length }, named);
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

  const first = parser.from?.value[0];
  return finish({
    headerLines: parser.headerLines || [],
    bodyDigest: hasher.bodyDigest(),
    subject: parser.subject,
    from: first?.address ? { address: first.address, name: stripControl(first.name ?? '') } : undefined,
    html: content?.html,
    text: content?.text,
    attachments,
  });
}

interface RawParts {
  readonly headerLines: ReadonlyArray<{ readonly key: string; readonly line: string }>;
  readonly bodyDigest: string;
  readonly subject: string | undefined;
  readonly from: ParsedMessage['from'];
  readonly html: string | false | undefined;
  readonly text: string | false | undefined;
  readonly attachments: readonly ParsedAttachment[];
}

/** Headers, control headers, fingerprint and content from what either path parsed. */
function finish(raw: RawParts): ParsedMessage {
  const headers: EmailHeader[] = [];
  const control = new Map<string, string[]>();
  const fp = createHash('sha256');
  let identified = false;
  for (const { key, line } of raw.headerLines) {
    if (!TRACE_HEADERS.has(key)) fp.update(line).update('\n');
    if (key === 'message-id' || key === 'date') identified = true;
    if (key.startsWith('x-') && !isForwardedHeader(key)) {
      const h = splitHeaderLine(line);
      if (h) control.set(key, [...(control.get(key) ?? []), h.value]);
      continue;
    }
    if (!isForwardedHeader(key)) continue;
    const h = splitHeaderLine(line);
    if (h && h.value) headers.push({ name: h.name, value: neutralizeEncodedWords(h.value) });
  }
  fp.update('\0').update(raw.bodyDigest);

  return {
    fingerprint: fp.digest('hex'),
    identified,
    subject: stripControl(raw.subject ?? '') || NO_SUBJECT,
    from: raw.from,
    html: nonEmpty(raw.html || undefined),
    text: nonEmpty(raw.text ? raw.text.replace(/\n$/, '') : undefined),
    headers,
    control,
    attachments: raw.attachments,
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
 */
function addAttachment(list: ParsedAttachment[], unnamed: Set<ParsedAttachment>, a: ParsedAttachment, named: boolean): void {
  if (a.type === 'calendar') {
    const i = list.findIndex((b) => b.type === 'calendar' && sameContent(a, b));
    const earlier = list[i];
    if (earlier !== undefined) {
      if (named && unnamed.has(earlier)) {
        list[i] = { ...earlier, filename: a.filename };
        unnamed.delete(earlier);
      }
      return;
    }
  }
  list.push(a);
  if (!named) unnamed.add(a);
}

function sameContent(a: ParsedAttachment, b: ParsedAttachment): boolean {
  if (a.type !== b.type || a.length !== b.length) return false;
  const x = a.parts.length === 1 ? (a.parts[0] as Buffer) : Buffer.concat(a.parts as Buffer[]);
  const y = b.parts.length === 1 ? (b.parts[0] as Buffer) : Buffer.concat(b.parts as Buffer[]);
  return x.equals(y);
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

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
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

/**
 * Reads `x-sender-id`, `x-account-id`, `x-list-id`, `x-email-api-type`, `x-tags` and
 * `x-track-*`. Throws `S550_BAD_TAG`, `S550_ACCOUNT_NOT_ALLOWED` (not a number) or
 * `S550_BAD_CONTROL_HEADER`.
 */
export function readControlHeaders(control: ReadonlyMap<string, readonly string[]>, defaultType: EmailType): MessageOptions {
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
    const tags: string[] = [];
    for (const tag of rawTags.flatMap((v) => v.split(',')).map((t) => t.trim())) {
      if (tag === '') continue;
      if (!TAG.test(tag)) {
        throw reply('S550_BAD_TAG', `Invalid tag "${tag.slice(0, 100)}": tags may contain only letters, digits, - and _`);
      }
      if (!tags.includes(tag)) tags.push(tag);
    }
    if (tags.length > 0) opts.tags = tags;
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
 * The body serialized once. `forRecipient(email)` answers the bytes of one recipient's request:
 * a short head with `email` and the shared rest (content, attachments) by reference.
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
