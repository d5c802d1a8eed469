/**
 * The fast path of parseMessage() (parseSimple) must give exactly what mailparser gives: every
 * message below is parsed both ways and compared field by field, and the ones the fast path is
 * meant to take are checked to take it (the rest must fall back to mailparser).
 */
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { parseSimple } from '../src/message/fast-path.js';
import { readControlHeaders } from '../src/message/control-headers.js';
import { parseWithMailparser } from '../src/message/mailparser.js';
import { parseMessage } from '../src/message/parse.js';
import type { ParsedMessage } from '../src/message/parsed.js';
import { prepareEmail } from '../src/message/request-body.js';
import { parseVia } from './helpers/message.js';

const crlf = (lines: string[]): string => lines.join('\r\n');

function streamOf(raw: Buffer, chunkSize: number): Readable {
  const chunks: Buffer[] = [];
  for (let i = 0; i < raw.length; i += chunkSize) chunks.push(raw.subarray(i, i + chunkSize));
  return Readable.from(chunks);
}

function comparable(p: ParsedMessage): unknown {
  return { ...p, control: [...p.control.entries()], attachments: p.attachments.map((a) => ({ ...a, parts: Buffer.concat(a.parts as Buffer[]).toString() })) };
}

/** The parse result, or the refusal it throws. */
async function outcome(raw: Buffer, simple: boolean): Promise<unknown> {
  try {
    return comparable(await parseVia(streamOf(raw, 7), simple));
  } catch (err) {
    return { refused: String(err) };
  }
}

async function bothWays(raw: Buffer): Promise<{ fast: unknown; slow: unknown }> {
  return { fast: await outcome(raw, true), slow: await outcome(raw, false) };
}

const body = 'Hello,\r\n\r\nline two with trailing spaces   \r\nlast line\r\n';
const msg = (headers: string[], text = body): Buffer => Buffer.from(`${crlf(headers)}\r\n\r\n${text}`, 'latin1');

const simple: Array<[string, Buffer]> = [
  ['the bench message', msg(['From: Bench <sender@example.com>', 'To: <r@example.net>', 'Subject: bench 1', 'Message-ID: <1@bench.example>', 'Date: Mon, 1 Dec 2025 10:00:00 +0000', 'MIME-Version: 1.0', 'Content-Type: text/plain; charset=utf-8'])],
  ['no Content-Type, no MIME-Version', msg(['From: a@example.com', 'Subject: s'])],
  ['html', msg(['From: a@example.com', 'Subject: s', 'Content-Type: text/html; charset="UTF-8"'], '<p>Hi</p>\r\n<p>there</p>\r\n')],
  ['html without charset', msg(['Subject: s', 'Content-Type: text/html'], '<p>Hi</p>\r\n')],
  ['us-ascii, 7bit', msg(['From: <a.b+c@mail.example.com>', 'Subject: s', 'Content-Type: text/plain; charset=us-ascii', 'Content-Transfer-Encoding: 7bit'])],
  ['8bit utf-8 body', msg(['From: First Last <a@example.com>', 'Subject: s', 'Content-Type: TEXT/PLAIN; CHARSET=UTF-8', 'Content-Transfer-Encoding: 8bit'], Buffer.from('naïve café ✓\r\n', 'utf8').toString('latin1'))],
  ['invalid utf-8 bytes in the body', msg(['Subject: s', 'Content-Type: text/plain; charset=utf-8'], 'caf\xe9 \xff\r\n')],
  ['binary encoding', msg(['Subject: s', 'Content-Transfer-Encoding: binary'], 'x\r\n')],
  ['folded headers, tabs, repeated subject', msg(['Subject: A long\r\n\tsubject   line  ', 'Subject: second', 'X-Custom: one\r\n two', 'X-Tags: a, b', 'X-Track-Opens: true', 'Reply-To: r@example.com', 'References: <a@x>\r\n <b@x>', 'Received: from x by y', 'Cc: c@example.com'])],
  ['empty subject, empty from', msg(['Subject:', 'From:'])],
  ['blank subject', msg(['Subject:    ', 'From: a@example.com'])],
  ['no subject, no from', msg(['X-Other: 1'])],
  ['empty body', msg(['Subject: s'], '')],
  ['body of blank lines', msg(['Subject: s'], '\r\n\r\n')],
  ['body with bare LF, bare CR and NUL', msg(['Subject: s'], 'a\nb\rc\0d\r\n')],
  ['body without final line break', msg(['Subject: s'], 'no newline')],
  ['dot lines and a boundary-looking line', msg(['Subject: s'], '.\r\n--XX\r\n--XX--\r\n')],
  ['control headers', msg(['Subject: s', 'X-Sender-Id: 12', 'X-Account-Id: 3', 'X-List-Id: 4', 'X-Email-Api-Type: marketing', 'X-Track-Clicks-Html: false'])],
  ['header name case, odd characters', msg(['SUBJECT: upper', 'x-weird_name.1: v', 'List-Unsubscribe: <mailto:u@example.com>'])],
  ['colon-less value, colons in values', msg(['Subject: a: b: c', 'X-Time: 10:00:00'])],
  ['Message-ID only', msg(['Message-ID: <x@y>', 'Subject: s'])],
  ['C0 controls, terminal colours, DEL and FF in the body', msg(['Subject: s'], 'a\x01\x07b\x1b[31mred\x1b[0m\x7f\tc\fnext page\x0b\r\n')],
  ['control characters in an html body', msg(['Subject: s', 'Content-Type: text/html'], '<p>a\x02b</p>\x1f\r\n')],
  ['a control header twice, the first empty', msg(['Subject: s', 'X-Account-Id:', 'X-Account-Id: 3'])],
  ['255 forwarded headers (256 header lines, the fast path\'s bound)', msg(['Subject: s', ...Array.from({ length: 253 }, (_, i) => `X-H${i}: v`), 'Cc: c@example.com', 'Reply-To: r@example.com'])],
];

const notSimple: Array<[string, Buffer]> = [
  ['encoded-word subject', msg(['Subject: =?UTF-8?Q?caf=C3=A9?='])],
  ['quoted-printable', msg(['Subject: s', 'Content-Transfer-Encoding: quoted-printable'], 'a=3Db\r\n')],
  ['base64', msg(['Subject: s', 'Content-Transfer-Encoding: base64'], 'aGk=\r\n')],
  ['latin-1 charset', msg(['Subject: s', 'Content-Type: text/plain; charset=iso-8859-1'], 'caf\xe9\r\n')],
  ['format=flowed', msg(['Subject: s', 'Content-Type: text/plain; charset=utf-8; format=flowed'], 'a \r\nb\r\n')],
  ['multipart', msg(['Subject: s', 'Content-Type: multipart/alternative; boundary="XX"'], '--XX\r\nContent-Type: text/plain\r\n\r\nx\r\n--XX--\r\n')],
  ['attachment disposition', msg(['Subject: s', 'Content-Disposition: attachment; filename="a.csv"'])],
  ['two Content-Types', msg(['Subject: s', 'Content-Type: text/plain', 'Content-Type: text/html'])],
  ['quoted display name', msg(['From: "Last, First" <a@example.com>', 'Subject: s'])],
  ['display name with accents', msg(['From: J\xe9r\xf4me <a@example.com>', 'Subject: s'])],
  ['punycode domain', msg(['From: a@xn--caf-dma.example', 'Subject: s'])],
  ['raw 8-bit subject', msg([`Subject: ${Buffer.from('Déjà vu', 'utf8').toString('latin1')}`])],
  ['bare LF headers', Buffer.from('Subject: s\nFrom: a@example.com\n\nbody\n', 'latin1')],
  ['mbox From line', msg(['From sender@example.com Mon Dec  1 10:00:00 2025', 'Subject: s'])],
  ['continuation first', msg([' folded: x', 'Subject: s'])],
  ['no header/body separator', Buffer.from('Subject: s\r\n', 'latin1')],
  ['empty header block', Buffer.from('\r\nbody\r\n', 'latin1')],
  ['NUL in a header', msg(['Subject: a\0b'])],
  ['message/rfc822', msg(['Subject: s', 'Content-Type: message/rfc822'], 'Subject: inner\r\n\r\nx\r\n')],
  ['text/calendar', msg(['Subject: s', 'Content-Type: text/calendar'], 'BEGIN:VCALENDAR\r\n')],
  ['a header name with a space', msg(['Subject: s', 'X-Has Space: 1'])],
  ['white space before the colon (obsolete syntax)', msg(['Subject: s', 'X-Obsolete : 1'])],
  ['a header name with an 8-bit byte', msg(['Subject: s', 'X-Caf\xe9: 1'])],
  ['257 forwarded headers (refused both ways)', msg(['Subject: s', ...Array.from({ length: 257 }, (_, i) => `X-H${i}: v`)])],
];

describe('parseMessage fast path', () => {
  it.each(simple)('takes the fast path and matches mailparser: %s', async (_name, raw) => {
    expect(parseSimple(raw)).toBeDefined();
    const { fast, slow } = await bothWays(raw);
    expect(fast).toEqual(slow);
  });

  it.each(notSimple)('leaves it to mailparser: %s', async (_name, raw) => {
    expect(parseSimple(raw)).toBeUndefined();
    const { fast, slow } = await bothWays(raw);
    expect(fast).toEqual(slow);
  });

  it.each([
    'a@example.com',
    '<a@example.com>',
    'Bench <sender@example.com>',
    'First Middle Last <first.last+tag@sub.example.co.uk>',
    'X <a_b-c@example-1.com>',
    '2024 Team <t@example.com>',
    'A <A@EXAMPLE.COM>',
  ])('reads From exactly as mailparser: %s', async (from) => {
    const raw = msg([`From: ${from}`, 'Subject: s']);
    expect(parseSimple(raw)).toBeDefined();
    const { fast, slow } = await bothWays(raw);
    expect(fast).toEqual(slow);
  });

  it.each(['a@example.com, b@example.com', 'Name <a@example.com', 'a@b', '<a@example.com', 'Name  Two <a@example.com>', 'Name<a@example.com>'])(
    'leaves other From forms to mailparser: %s',
    async (from) => {
      const raw = msg([`From: ${from}`, 'Subject: s']);
      expect(parseSimple(raw)).toBeUndefined();
      const { fast, slow } = await bothWays(raw);
      expect(fast).toEqual(slow);
    },
  );

  it('reads a large message that is not simple through mailparser, the bytes read first replayed', async () => {
    const line = `caf\xe9 ${'x'.repeat(993)}\r\n`;
    const raw = msg(['Subject: big', 'From: a@example.com', 'Content-Type: text/plain; charset=iso-8859-1'], line.repeat(300));
    const { fast, slow } = await bothWays(raw);
    expect(fast).toEqual(slow);
    const parsed = await parseMessage(streamOf(raw, 65536));
    expect(parsed.escaped).toBeUndefined();
    expect(parsed.text?.length).toBe(999 * 300 - 1);
  });

  it('refuses a large simple message whose input breaks off, without waiting for an end that never comes', async () => {
    const raw = msg(['Subject: big'], `${'x'.repeat(998)}\r\n`.repeat(400));
    const input = new Readable({ read() {} });
    const parsed = parseMessage(input);
    input.push(raw.subarray(0, 300_000));
    setTimeout(() => input.destroy(new Error('DATA input closed before the final dot')), 20);
    await expect(parsed).rejects.toMatchObject({ code: 554 });
  });

  // Over 256 KiB, a simple message's body is escaped for JSON as it arrives (escaped-body.ts):
  // the request must be the very bytes the mailparser path sends.
  it.each([
    ['plain text', ['Subject: big', 'From: a@example.com'], `${'x'.repeat(998)}\r\n`, ''],
    ['html, UTF-8, terminal colours and controls', ['Subject: big', 'Content-Type: text/html; charset=utf-8'], '<p>caf\xc3\xa9 \xe2\x9c\x93 \x1b[31mred\x1b[0m\x01\x7f "q" \\</p>\r\n', '\r\n'],
    ['bare LF, lone CR, invalid UTF-8, no final line break', ['Subject: big', 'Content-Type: text/plain; charset=us-ascii', 'Content-Transfer-Encoding: 8bit'], 'a\nb\rc \xff\xe2\x9c\r\n\x0c', 'last'],
    ['text whose end is cleaned away', ['Subject: big', 'X-Account-Id: 3'], '\ttab line\r\n', '\x01\x02'],
  ])('escapes a simple message over 256 KiB as it arrives, the request the same as mailparser\'s: %s', async (_name, headers, line, tail) => {
    const raw = msg(headers, line.repeat(Math.ceil(300_000 / line.length)) + tail);
    const request = (parsed: ParsedMessage): Buffer =>
      Buffer.concat(prepareEmail(parsed, readControlHeaders(parsed.control, 'transactional'), { senderId: 's', senderName: 'A "text":"","html":"" B', listId: 3 }).forRecipient('r@example.net').chunks);
    const slow = await parseWithMailparser([], streamOf(raw, 65536));
    for (const chunkSize of [65536, 4093, 1]) {
      const fast = await parseMessage(streamOf(raw, chunkSize));
      expect(fast.escaped, `chunks of ${chunkSize}`).toBeDefined();
      expect(request(fast).equals(request(slow)), `chunks of ${chunkSize}`).toBe(true);
      const rest = ({ escaped: _escaped, ...p }: ParsedMessage): unknown => comparable({ ...p, text: undefined, html: undefined });
      expect(rest(fast)).toEqual(rest(slow));
    }
  });
});
