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

/** One message with a text part and a `bytes`-byte PDF attachment, base64 in 76-character lines. */
export function largeMessage(bytes: number, to: string): Buffer {
  const boundary = 'bench-boundary-0123456789';
  const content = randomBytes(bytes);
  content.write('%PDF-1.7\n', 'latin1'); // the gateway checks an attachment's content against its type
  const base64 = content.toString('base64');
  const lines: string[] = [];
  for (let i = 0; i < base64.length; i += 76) lines.push(base64.slice(i, i + 76));
  const text =
    `From: Bench <${SENDER}>\r\n` +
    `To: <${to}>\r\n` +
    'Subject: bench large attachment\r\n' +
    `Message-ID: <large-${Date.now()}@bench.example>\r\n` +
    DATE +
    'MIME-Version: 1.0\r\n' +
    `Content-Type: multipart/mixed; boundary="${boundary}"\r\n` +
    '\r\n' +
    `--${boundary}\r\n` +
    'Content-Type: text/plain; charset=utf-8\r\n' +
    '\r\n' +
    'The report is attached.\r\n' +
    `--${boundary}\r\n` +
    'Content-Type: application/pdf; name="report.pdf"\r\n' +
    'Content-Disposition: attachment; filename="report.pdf"\r\n' +
    'Content-Transfer-Encoding: base64\r\n' +
    '\r\n' +
    `${lines.join('\r\n')}\r\n` +
    `--${boundary}--\r\n` +
    '.\r\n';
  return Buffer.from(text, 'latin1');
}
