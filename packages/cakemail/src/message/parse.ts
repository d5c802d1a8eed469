/**
 * SMTP message → what the relay sends. `parseMessage()` reads the stream and picks the path:
 * the fast path (fast-path.ts) for a simple message read whole, else mailparser
 * (mailparser.ts). Both end in `finish()` (parsed.ts). `readControlHeaders()`
 * (control-headers.ts) validates the gateway's `x-…` headers; `prepareEmail()`
 * (request-body.ts) serializes the body once, so the fan-out to N recipients sends the same
 * bytes N times with only the `email` field changed.
 */
import type { Readable } from 'node:stream';
import { BodyEscaper } from './escaped-body.js';
import { MAX_SIMPLE_HEADER_BYTES, parseSimple, simpleHead } from './fast-path.js';
import { parseWithMailparser } from './mailparser.js';
import { finish, type ParsedMessage } from './parsed.js';
import { CakemailReplies } from '../replies.js';

/** Messages up to this size are read whole and tried on the fast path first. */
const SIMPLE_MAX_BYTES = 256 * 1024;

/**
 * Parses the raw message. Always consumes the whole stream. Throws `S554_ATTACHMENT_REFUSED`
 * (naming the first refused attachment), `S554_ATTACHMENT_MISMATCH` (an attachment whose
 * content is not of its type), `S552_HEADERS_TOO_LARGE` or `S554_MESSAGE_INVALID`.
 *
 * A message of at most 256 KiB is read whole first; when it is a simple single-part text/plain
 * or text/html message (see `parseSimple()`), it is parsed synchronously without mailparser.
 * Any other message goes through mailparser, the bytes read so far replayed first.
 */
export async function parseMessage(message: Readable): Promise<ParsedMessage> {
  const head = await readUpTo(message, SIMPLE_MAX_BYTES);
  if (head.failed) throw CakemailReplies.S554_MESSAGE_INVALID;
  if (head.ended) {
    const parsed = parseSimple(head.chunks.length === 1 ? (head.chunks[0] as Buffer) : Buffer.concat(head.chunks));
    if (parsed !== undefined) return parsed;
  } else {
    const parsed = await parseLargeSimple(head.chunks, message);
    if (parsed !== undefined) return parsed;
  }
  return parseWithMailparser(head.chunks, head.ended ? undefined : message);
}

/**
 * A simple message (parseSimple's rules) larger than SIMPLE_MAX_BYTES: its header block read
 * from the first chunks, its body escaped for JSON as the rest arrives (escaped-body.ts), the raw
 * bytes dropped as they are. Undefined, with nothing read from `message`, when not simple.
 */
async function parseLargeSimple(chunks: readonly Buffer[], message: Readable): Promise<ParsedMessage | undefined> {
  // The header block is at most MAX_SIMPLE_HEADER_BYTES: the first chunks that cover it.
  let n = 0;
  let covered = 0;
  while (n < chunks.length && covered < MAX_SIMPLE_HEADER_BYTES + 4) covered += (chunks[n++] as Buffer).length;
  const first = n === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks.slice(0, n));
  const head = simpleHead(first);
  if (head === undefined) return undefined;
  const escaper = new BodyEscaper(head.html ? 'html' : 'text');
  escaper.write(first.subarray(head.end + 4));
  for (const chunk of chunks.slice(n)) escaper.write(chunk);
  const read = await readChunks(message, (chunk) => {
    escaper.write(chunk);
    return true;
  });
  if (read === 'failed') throw CakemailReplies.S554_MESSAGE_INVALID;
  const { digest, body } = escaper.end();
  return finish({
    size: head.end + 4 + escaper.bytes,
    headerLines: head.headerLines,
    bodyDigest: digest,
    subject: head.subject,
    from: head.from,
    html: undefined,
    text: undefined,
    escaped: body,
    attachments: [],
  });
}

interface Head {
  readonly chunks: Buffer[];
  /** The stream ended within the limit: `chunks` is the whole message. */
  readonly ended: boolean;
  /** The stream failed (it has been resumed, to let it end). */
  readonly failed: boolean;
}

/** Reads until the stream ends or more than `limit` bytes came; then pauses it. */
async function readUpTo(message: Readable, limit: number): Promise<Head> {
  const chunks: Buffer[] = [];
  let length = 0;
  const read = await readChunks(message, (chunk) => {
    chunks.push(chunk);
    length += chunk.length;
    return length <= limit;
  });
  return { chunks, ended: read === 'ended', failed: read === 'failed' };
}

/**
 * Hands `message`'s chunks to `take` until it ends, fails (then it is resumed, to let it end: smtp-core
 * replies after it has) or `take` answers false (then it is paused, for a later reader). A stream
 * that ended, or was destroyed, before this is called answers at once.
 */
function readChunks(message: Readable, take: (chunk: Buffer) => boolean): Promise<'ended' | 'stopped' | 'failed'> {
  return new Promise((resolve) => {
    if (message.readableEnded) return resolve('ended');
    if (message.destroyed) return resolve('failed');
    const done = (outcome: 'ended' | 'stopped' | 'failed'): void => {
      message.off('data', onData);
      message.off('end', onEnd);
      message.off('error', onError);
      message.off('close', onError);
      if (outcome === 'failed') message.resume();
      else if (outcome === 'stopped') message.pause();
      resolve(outcome);
    };
    const onData = (chunk: Buffer | string): void => {
      if (!take(typeof chunk === 'string' ? Buffer.from(chunk, 'latin1') : chunk)) done('stopped');
    };
    const onEnd = (): void => done('ended');
    // 'close' before 'end': destroyed (the connection dropped, a limit broken).
    const onError = (): void => done('failed');
    message.on('data', onData);
    message.once('end', onEnd);
    message.once('error', onError);
    message.once('close', onError);
    message.resume(); // a reader before this one may have paused it
  });
}
