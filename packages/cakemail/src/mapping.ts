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
}

/** Headers left out of the fingerprint: added or rewritten on the way, not by the author. */
const TRACE_HEADERS = new Set(['received', 'return-path', 'dkim-signature', 'x-received', 'x-google-dkim-signature', 'delivered-to']);

/**
 * Parses the raw message. Always consumes the whole stream. Throws
 * `S554_ATTACHMENT_REFUSED` (naming the first refused attachment) or `S554_MESSAGE_INVALID`.
 */
export async function parseMessage(message: Readable): Promise<ParsedMessage> {
  const hasher = new FingerprintStream();
  const parser = new MailParser({
    skipHtmlToText: true,
    skipTextToHtml: true,
    skipImageLinks: true,
    skipTextLinks: true,
    checksumAlgo: false,
  });
  const attachments: ParsedAttachment[] = [];
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
      attachments.push({ filename: apiFilename(data.filename, type), type, parts: b64.parts, length: b64.length });
      data.release?.();
    });
  });

  try {
    await new Promise<void>((resolve, reject) => {
      const fail = (err: unknown): void => reject(err instanceof Error ? err : new Error(String(err)));
      parser.once('end', () => resolve());
      parser.once('error', fail);
      hasher.once('error', fail);
      message.once('error', fail);
      message.pipe(hasher).pipe(parser);
    });
  } catch {
    message.unpipe(hasher);
    message.resume(); // let the stream end; smtp-core replies after it has
    throw Replies.S554_MESSAGE_INVALID;
  }

  if (refused !== undefined) {
    throw reply('S554_ATTACHMENT_REFUSED', `Attachment "${refused}" is not allowed; allowed types: ${ALLOWED_EXTENSIONS}`);
  }

  const headerLines = parser.headerLines || [];
  const headers: EmailHeader[] = [];
  const control = new Map<string, string[]>();
  const fp = createHash('sha256');
  for (const { key, line } of headerLines) {
    if (!TRACE_HEADERS.has(key)) fp.update(line).update('\n');
    if (key.startsWith('x-') && !isForwardedHeader(key)) {
      const h = splitHeaderLine(line);
      if (h) control.set(key, [...(control.get(key) ?? []), h.value]);
      continue;
    }
    if (!isForwardedHeader(key)) continue;
    const h = splitHeaderLine(line);
    if (h && h.value) headers.push({ name: h.name, value: neutralizeEncodedWords(h.value) });
  }
  fp.update('\0').update(hasher.bodyDigest());

  const first = parser.from?.value[0];
  const from = first?.address ? { address: first.address, name: stripControl(first.name ?? '') } : undefined;

  return {
    fingerprint: fp.digest('hex'),
    identified: headerLines.some(({ key }) => key === 'message-id' || key === 'date'),
    subject: stripControl(parser.subject ?? '') || NO_SUBJECT,
    from,
    html: nonEmpty(content?.html),
    text: nonEmpty(content?.text?.replace(/\n$/, '')),
    headers,
    control,
    attachments,
  };
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
