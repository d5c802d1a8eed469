/**
 * The messages the load sends. Every message is unique (its Message-ID and recipient), so the
 * gateway's accepted-recipient store never short-cuts a send as a retry.
 */
import { randomBytes } from 'node:crypto';

export const SENDER = 'sender@example.com';
const DATE = 'Date: Mon, 1 Dec 2025 10:00:00 +0000\r\n';
const FILLER = 'The quick brown fox jumps over the lazy dog, then files its expense report. ';

/** The fixed-width part of a header block, so every message of a run has the same size. */
function head(seq: string, to: string): string {
  return (
    `From: Bench <${SENDER}>\r\n` +
    `To: <${to}>\r\n` +
    `Subject: bench ${seq}\r\n` +
    `Message-ID: <${seq}@bench.example>\r\n` +
    DATE +
    'MIME-Version: 1.0\r\n' +
    'Content-Type: text/plain; charset=utf-8\r\n' +
    '\r\n'
  );
}

/** Body lines of 72 characters filling `bytes`, then the final dot. */
function body(bytes: number): Buffer {
  let text = '';
  while (text.length < bytes) {
    const room = bytes - text.length;
    const line = FILLER.repeat(2).slice(0, Math.max(0, Math.min(70, room - 2)));
    text += `${line}\r\n`;
  }
  return Buffer.from(`${text}.\r\n`, 'latin1');
}

export interface SmallMessages {
  /** The recipient and the message bytes (final dot included) for sequence number `n`. */
  next(n: number): { to: string; data: Buffer };
  /** The message size before the final dot. */
  readonly size: number;
}

/** `size`-byte single-recipient text messages. */
export function smallMessages(size: number, tag: string): SmallMessages {
  const seqWidth = 12;
  const sample = head('x'.repeat(seqWidth), `r${tag}-${'x'.repeat(seqWidth)}@example.net`);
  const tail = body(Math.max(4, size - sample.length));
  return {
    size: sample.length + tail.length - 3,
    next(n) {
      const seq = String(n).padStart(seqWidth, '0');
      const to = `r${tag}-${seq}@example.net`;
      return { to, data: Buffer.concat([Buffer.from(head(seq, to), 'latin1'), tail]) };
    },
  };
}

/** The S3 message kinds: what their bodies hold. */
export const LARGE_KINDS = ['text', 'html', 'attachment', 'control'] as const;
export type LargeKind = (typeof LARGE_KINDS)[number];

/** `count` lines of `line` + CRLF, as bytes. */
function lines(line: string, count: number): Buffer {
  return Buffer.from(`${line}\r\n`.repeat(Math.max(1, count)), 'latin1');
}

/** C0 control characters that JSON escapes as `\u00XX` (six bytes each): not TAB, LF or CR. */
const C0 = Array.from({ length: 32 }, (_, i) => i)
  .filter((c) => c !== 0 && c !== 0x09 && c !== 0x0a && c !== 0x0d)
  .map((c) => String.fromCharCode(c))
  .join('');

/**
 * A header block and body of about `bytes` bytes (final dot excluded) of one kind:
 * - `text`: text/plain, 70-character ASCII lines;
 * - `html`: text/html, paragraphs of the same text;
 * - `attachment`: multipart/mixed, a short text part and a PDF in base64 (76-character lines);
 * - `control`: text/plain whose lines are C0 control characters (issue 8: each becomes six bytes
 *   of JSON unless the relay removes or refuses them).
 * The body is built once; `message(to, seq)` adds the per-message header lines.
 */
export function largeMessages(kind: LargeKind, bytes: number): { message(to: string, seq: number): Buffer } {
  const boundary = 'bench-boundary-0123456789';
  const lineCount = (width: number): number => Math.ceil(bytes / (width + 2));
  let contentHeaders: string;
  let body: Buffer;
  switch (kind) {
    case 'text':
      contentHeaders = 'Content-Type: text/plain; charset=utf-8\r\n';
      body = lines(FILLER.repeat(2).slice(0, 70), lineCount(70));
      break;
    case 'html':
      contentHeaders = 'Content-Type: text/html; charset=utf-8\r\n';
      body = lines(`<p>${FILLER.slice(0, 63)}</p>`, lineCount(70));
      break;
    case 'control':
      contentHeaders = 'Content-Type: text/plain; charset=us-ascii\r\n';
      body = lines(C0.repeat(3).slice(0, 70), lineCount(70));
      break;
    case 'attachment': {
      contentHeaders = `Content-Type: multipart/mixed; boundary="${boundary}"\r\n`;
      const content = randomBytes(Math.floor((bytes * 3) / 4));
      content.write('%PDF-1.7\n', 'latin1'); // the gateway checks an attachment's content against its type
      const base64 = content.toString('base64');
      const wrapped: string[] = [];
      for (let i = 0; i < base64.length; i += 76) wrapped.push(base64.slice(i, i + 76));
      body = Buffer.from(
        `--${boundary}\r\n` +
          'Content-Type: text/plain; charset=utf-8\r\n' +
          '\r\n' +
          'The report is attached.\r\n' +
          `--${boundary}\r\n` +
          'Content-Type: application/pdf; name="report.pdf"\r\n' +
          'Content-Disposition: attachment; filename="report.pdf"\r\n' +
          'Content-Transfer-Encoding: base64\r\n' +
          '\r\n' +
          `${wrapped.join('\r\n')}\r\n` +
          `--${boundary}--\r\n`,
        'latin1',
      );
      break;
    }
  }
  const end = Buffer.from('.\r\n', 'latin1');
  return {
    message(to, seq) {
      const head =
        `From: Bench <${SENDER}>\r\n` +
        `To: <${to}>\r\n` +
        `Subject: bench large ${kind}\r\n` +
        `Message-ID: <large-${kind}-${seq}-${Date.now()}@bench.example>\r\n` +
        DATE +
        'MIME-Version: 1.0\r\n' +
        contentHeaders +
        '\r\n';
      return Buffer.concat([Buffer.from(head, 'latin1'), body, end]);
    },
  };
}
