/**
 * The mailparser path: any message, streamed once through mailparser, text and HTML decoded to
 * UTF-8 from any charset and transfer encoding, attachments typed and base64-encoded as they
 * stream, the body hashed on the way for the fingerprint.
 */
import type { Readable } from 'node:stream';
import { MailParser } from 'mailparser';
import type { AttachmentStream, MessageText } from 'mailparser';
import { ALLOWED_EXTENSIONS, Base64Collector, EXTENSION_OF, apiFilename, attachmentTypeOf, signatureMismatch } from './attachments.js';
import { FingerprintStream } from './fingerprint.js';
import { stripControl } from './headers.js';
import { finish, type ParsedAttachment, type ParsedMessage } from './parsed.js';
import { CakemailReplies, Refusals } from '../replies.js';
import type { AttachmentType } from '../types.js';

/** The message through mailparser: `chunks` first, then the rest of `rest` when given. */
export async function parseWithMailparser(chunks: readonly Buffer[], rest: Readable | undefined): Promise<ParsedMessage> {
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
    throw CakemailReplies.S554_MESSAGE_INVALID;
  }

  if (refused !== undefined) {
    throw Refusals.attachmentRefused(refused, ALLOWED_EXTENSIONS);
  }
  for (const { name, type, head } of heads) {
    const found = await signatureMismatch(type, head);
    if (found !== undefined) {
      const content = found === 'unknown' ? 'has no recognizable signature' : `looks like ${found}`;
      throw Refusals.attachmentMismatch(name, EXTENSION_OF[type], content);
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
