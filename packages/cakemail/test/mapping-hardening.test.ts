/**
 * What the mapping refuses, removes and bounds: request size, header hygiene, calendar parts.
 * Both parse paths (the fast path and mailparser) are run where the fast path can take the
 * message.
 */
import { Readable } from 'node:stream';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { isSmtpError, type SmtpError } from '@cakemail-smtp/smtp-core';
import { SAMPLE_EXECUTABLE, SAMPLE_FILES } from '@cakemail-smtp/testkit';
import { readControlHeaders } from '../src/message/control-headers.js';
import { stripControl } from '../src/message/headers.js';
import type { ParsedMessage } from '../src/message/parsed.js';
import { prepareEmail } from '../src/message/request-body.js';
import { parseVia } from './helpers/message.js';

const crlf = (lines: readonly string[]): string => lines.join('\r\n');
const bytesOf = (raw: string | Buffer): Buffer => (typeof raw === 'string' ? Buffer.from(raw, 'latin1') : raw);

function streamOf(raw: string | Buffer, chunkSize = 65536): Readable {
  const buf = bytesOf(raw);
  const chunks: Buffer[] = [];
  for (let i = 0; i < buf.length; i += chunkSize) chunks.push(buf.subarray(i, i + chunkSize));
  return Readable.from(chunks);
}

const parse = (raw: string | Buffer, simple = true): Promise<ParsedMessage> => parseVia(streamOf(raw), simple);

/** The request body one recipient would get. */
function request(parsed: ParsedMessage): Buffer {
  const prepared = prepareEmail(parsed, readControlHeaders(parsed.control, 'transactional'), {
    senderId: 'snd-1',
    ...(parsed.from?.name ? { senderName: parsed.from.name } : {}),
    listId: 7,
  });
  return Buffer.concat(prepared.forRecipient('rcpt@example.com').chunks);
}

async function refusal(work: () => Promise<unknown>): Promise<SmtpError> {
  try {
    await work();
  } catch (err) {
    if (isSmtpError(err)) return err;
    throw err;
  }
  throw new Error('expected a refusal');
}

/** A one-part message: `body` is the part's bytes as a latin1 string. */
function single(contentType: string, cte: string, body: string, headers: readonly string[] = []): string {
  return crlf(['From: a@example.com', 'Subject: s', ...headers, 'MIME-Version: 1.0', `Content-Type: ${contentType}`, `Content-Transfer-Encoding: ${cte}`, '', body, '']);
}

/** Base64 in 76-character lines, as a mailer writes it. */
const b64lines = (data: Buffer): string => (data.toString('base64').match(/.{1,76}/g) ?? []).join('\r\n');
/** `text` repeated in lines of about 76 bytes, to about `size` bytes. */
function fill(text: string, size: number): string {
  const line = text.repeat(Math.max(1, Math.floor(76 / text.length)));
  return Array.from({ length: Math.ceil(size / (line.length + 2)) }, () => line).join('\r\n');
}

const SIZE = 256 * 1024;
const C0 = Array.from({ length: 32 }, (_, i) => String.fromCharCode(i)).filter((c) => !'\t\n\r\f\0'.includes(c)).join('');

describe('request size: no content makes a request more than about twice its message (defect 3)', () => {
  // JSON writes " and \ as two bytes, TAB/CR/LF/FF as two, other C0 controls as six; an 8-bit
  // legacy charset can turn one byte into three UTF-8 bytes.
  const classes: Array<{ name: string; raw: () => string | Buffer; refused?: true }> = [
    { name: 'C0 controls in an 8-bit text part', raw: () => single('text/plain; charset=utf-8', '8bit', fill(C0, SIZE)) },
    { name: 'C0 controls in an 8-bit HTML part', raw: () => single('text/html; charset=utf-8', '8bit', fill(C0, SIZE)) },
    { name: 'C0 controls, quoted-printable', raw: () => single('text/plain; charset=utf-8', 'quoted-printable', fill('=01=02=1B', SIZE)) },
    { name: 'C0 controls, base64', raw: () => single('text/plain; charset=utf-8', 'base64', b64lines(Buffer.from(fill(C0, SIZE), 'latin1'))) },
    { name: 'terminal colour sequences', raw: () => single('text/plain; charset=utf-8', '8bit', fill('\x1b[1;31mE\x1b[0m', SIZE)) },
    { name: 'DEL', raw: () => single('text/plain; charset=utf-8', '8bit', fill('\x7f', SIZE)) },
    { name: '" and \\ (two bytes each)', raw: () => single('text/plain; charset=utf-8', '8bit', fill('"\\', SIZE)) },
    { name: 'TAB and FF (two bytes each)', raw: () => single('text/plain; charset=utf-8', '8bit', fill('\t\f', SIZE)) },
    { name: 'quoted-printable =22 (a ")', raw: () => single('text/plain; charset=utf-8', 'quoted-printable', fill('=22', SIZE)) },
    { name: 'iso-8859-1 8-bit letters (two UTF-8 bytes)', raw: () => single('text/plain; charset=iso-8859-1', '8bit', fill('\xe9', SIZE)) },
    { name: 'UTF-8 four-byte characters', raw: () => single('text/plain; charset=utf-8', '8bit', fill(Buffer.from('😀', 'utf8').toString('latin1'), SIZE)) },
    { name: 'UTF-8 U+2028 in a body (kept, not escaped by JSON)', raw: () => single('text/plain; charset=utf-8', '8bit', fill(Buffer.from('\u2028', 'utf8').toString('latin1'), SIZE)) },
    {
      name: 'lone UTF-16 surrogates, base64',
      raw: () => single('text/plain; charset=utf-16le', 'base64', b64lines(Buffer.from(fill('\ud800', SIZE / 3).replace(/\r\n/g, ''), 'utf16le'))),
    },
    {
      name: '" in a subject and forwarded headers',
      raw: () => crlf(['From: a@example.com', `Subject: ${'"'.repeat(900)}`, ...Array.from({ length: 200 }, (_, i) => `X-Quote-${i}: ${'"\\'.repeat(400)}`), '', 'x', '']),
    },
    {
      name: 'a binary attachment, 8-bit transfer encoding',
      raw: () => {
        const pdf = Buffer.concat([SAMPLE_FILES.pdf, Buffer.alloc(SIZE, 0xe9)]);
        return crlf(['From: a@example.com', 'Subject: s', 'Content-Type: multipart/mixed; boundary="B"', '', '--B', 'Content-Type: text/plain', '', 'x', '--B', 'Content-Type: application/pdf', 'Content-Transfer-Encoding: 8bit', 'Content-Disposition: attachment; filename="a.pdf"', '', pdf.toString('latin1'), '--B--', '']);
      },
    },
    {
      name: 'many small attachments',
      raw: () =>
        crlf([
          'From: a@example.com',
          'Subject: s',
          'Content-Type: multipart/mixed; boundary="B"',
          '',
          ...Array.from({ length: 300 }, (_, i) => ['--B', 'Content-Type: text/csv', `Content-Disposition: attachment; filename="${i}.csv"`, '', 'a']).flat(),
          '--B--',
          '',
        ]),
    },
    // one byte → three UTF-8 bytes: past twice the message, refused
    { name: 'windows-1252 8-bit € (three UTF-8 bytes)', raw: () => single('text/plain; charset=windows-1252', '8bit', fill('\x80', SIZE)), refused: true },
    // iso-8859-1 is read as windows-1252 (WHATWG), so 0x80-0x9F are … € › and the like
    { name: 'iso-8859-1 8-bit 0x85 0x9B (three UTF-8 bytes)', raw: () => single('text/plain; charset=iso-8859-1', '8bit', fill('\x85\x9b', SIZE)), refused: true },
    { name: 'Shift_JIS half-width katakana (three UTF-8 bytes)', raw: () => single('text/plain; charset=shift_jis', '8bit', fill('\xb1', SIZE)), refused: true },
  ];

  it.each(classes)('$name', async ({ raw, refused }) => {
    const message = bytesOf(raw());
    for (const simple of [true, false]) {
      const parsed = await parse(message, simple);
      expect(parsed.size).toBe(message.length);
      if (refused) {
        const err = await refusal(async () => request(parsed));
        expect(err.line).toMatch(/^552 5\.3\.4 Message too large once converted for Cakemail: \d+ bytes, more than twice its size; send it in UTF-8$/);
        continue;
      }
      const sent = request(parsed);
      expect(sent.length).toBeLessThanOrEqual(2 * message.length + 1024);
    }
  });

  it('control characters are removed from text and HTML; TAB, LF, CR, FF, C1 and bidi characters stay', async () => {
    const text = `a\x00b\x01c\x08d\x0be\x1bf\x1b[31mred\x1b[0m\x7fg\th\fi\rj\u0085k\u202el`;
    const parsed = await parse(single('text/plain; charset=utf-8', '8bit', Buffer.from(text, 'utf8').toString('latin1')), false);
    expect(parsed.text).toBe('abcdefredg\th\fi\rj\u0085k\u202el');
    const html = await parse(single('text/html; charset=utf-8', 'quoted-printable', '<p>x=01=1Fy</p>'), false);
    expect(html.html).toBe('<p>xy</p>\n');
  });

  it('both paths remove them alike', async () => {
    const raw = single('text/plain; charset=utf-8', '8bit', 'ring\x07 the bell\x1b[0m\fnext page');
    const fast = await parse(raw, true);
    const slow = await parse(raw, false);
    expect(fast.text).toBe('ring the bell\fnext page');
    expect(slow.text).toBe(fast.text);
  });
});

describe('control headers: an ambiguous one is refused, never guessed (defect 7)', () => {
  it.each([
    ['X-Account-Id', ['', '42']],
    ['X-Account-Id', ['42', '42']],
    ['X-Sender-Id', ['snd-1', 'snd-2']],
    ['X-List-Id', ['5', '']],
    ['X-Email-Api-Type', ['marketing', 'transactional']],
    ['X-Track-Opens', ['true', 'false']],
    ['X-Track-Clicks-Html', ['false', 'false']],
    ['X-Track-Clicks-Text', ['', 'true']],
  ])('%s %j → 554 5.6.0 naming it', async (name, values) => {
    const raw = crlf(['From: a@example.com', 'Subject: s', ...values.map((v) => `${name}: ${v}`.trimEnd()), '', 'x', '']);
    for (const simple of [true, false]) {
      const parsed = await parse(raw, simple);
      const err = await refusal(async () => readControlHeaders(parsed.control, 'transactional'));
      expect(err.line).toBe(`554 5.6.0 The ${name.toLowerCase()} header appears 2 times; it must appear once`);
    }
  });

  it('headers the gateway drops (X-Received) may repeat', async () => {
    const parsed = await parse(crlf(['Subject: s', 'X-Received: by 1', 'X-Received: by 2', 'X-Google-DKIM-Signature: a', 'X-Google-DKIM-Signature: b', '', 'x', '']));
    expect(readControlHeaders(parsed.control, 'transactional')).toEqual({ type: 'transactional' });
  });

  it('X-Tags may repeat: the tags are merged', async () => {
    const parsed = await parse(crlf(['Subject: s', 'X-Tags: a, b', 'X-Tags: b, c', '', 'x', '']));
    expect(readControlHeaders(parsed.control, 'transactional').tags).toEqual(['a', 'b', 'c']);
  });
});

describe('forwarded headers (defect 7)', () => {
  it('a name that is not an RFC 5322 field name (space, 8-bit, control) is never forwarded', async () => {
    const raw = crlf(['From: a@example.com', 'Subject: s', 'X-Has Space: 1', 'X-Caf\xe9: 2', 'X-Bell\x07: 3', 'X-Good: 4', 'X-Obsolete : 5', '', 'x', '']);
    for (const simple of [true, false]) {
      const parsed = await parse(raw, simple);
      expect(parsed.headers).toEqual([
        { name: 'X-Good', value: '4' },
        { name: 'X-Obsolete', value: '5' },
      ]);
    }
  });

  it('C1 controls and bidi controls are stripped from subject, sender name and header values', async () => {
    const ew = (s: string): string => `=?UTF-8?B?${Buffer.from(s, 'utf8').toString('base64')}?=`;
    const raw = crlf([
      `From: ${ew('Alice\u202e\u2066 Admin\u0080')} <a@example.com>`,
      `Subject: ${ew('Invoice\u200f\u061c\u0090 gpj.exe\u202c')}`,
      `X-Note: ${ew('left\u202eright\u009b')}`,
      `X-Raw: ${Buffer.from('a\u202eb\u2069c\u200ed', 'utf8').toString('latin1')}`,
      '',
      'x',
      '',
    ]);
    for (const simple of [true, false]) {
      const parsed = await parse(raw, simple);
      expect(parsed.subject).toBe('Invoice gpj.exe');
      expect(parsed.from?.name).toBe('Alice Admin');
      const note = parsed.headers.find((h) => h.name === 'X-Note')?.value ?? '';
      expect(Buffer.from(note.replace(/^=\?UTF-8\?B\?|\?=$/g, ''), 'base64').toString('utf8')).toBe('leftright');
      expect(parsed.headers.find((h) => h.name === 'X-Raw')?.value).toBe('abcd');
    }
  });

  it('one stripControl: C0, DEL, C1 and line breaks become a space, bidi controls go', () => {
    expect(stripControl('a\x00b\x1fc\x7fd\x80e\x9ff\u0085g\u2028h\u2029i')).toBe('a b c d e f g h i');
    expect(stripControl('\u202aa\u202bb\u202cc\u202dd\u202ee\u2066f\u2067g\u2068h\u2069i\u200ej\u200fk\u061cl')).toBe('abcdefghijkl');
  });

  const withHeaders = (headers: readonly string[]): string => crlf(['From: a@example.com', 'Subject: s', ...headers, '', 'x', '']);

  it('256 forwarded headers pass; the 257th → 552 5.3.4', async () => {
    const ok = await parse(withHeaders(Array.from({ length: 256 }, (_, i) => `X-H${i}: v`)), false);
    expect(ok.headers).toHaveLength(256);
    const raw = withHeaders(Array.from({ length: 257 }, (_, i) => `X-H${i}: v`));
    for (const simple of [true, false]) {
      const err = await refusal(() => parse(raw, simple));
      expect(err.line).toBe('552 5.3.4 Too many headers to forward: more than 256');
    }
  });

  it('10,000 headers (the attack) → 552 5.3.4', async () => {
    const err = await refusal(() => parse(withHeaders(Array.from({ length: 10_000 }, () => 'X-Spam: 1'))));
    expect(err.line).toBe('552 5.3.4 Too many headers to forward: more than 256');
  });

  it('one header over 102400 bytes → 552 5.3.4 naming it; one at the bound passes', async () => {
    // folded as a mailer would, in lines of 70
    const folded = (n: number): string => `References: ${(Array.from({ length: n }, (_, i) => `<${String(i).padStart(60, '0')}@x>`).join('\r\n '))}`;
    const ok = await parse(withHeaders([folded(1500)]), false); // 1500 × 65 bytes
    expect(ok.headers[0]?.name).toBe('References');
    const err = await refusal(() => parse(withHeaders([folded(1600)]), false));
    expect(err.line).toMatch(/^552 5\.3\.4 Header References is too long to forward: \d+ bytes, at most 102400$/);
  });

  it('forwarded headers over 256 KiB in all → 552 5.3.4', async () => {
    const long = (i: number): string => `X-Long-${i}: ${'v'.repeat(90_000)}`;
    expect((await parse(withHeaders([long(1), long(2)]), false)).headers).toHaveLength(2);
    const err = await refusal(() => parse(withHeaders([long(1), long(2), long(3)]), false));
    expect(err.line).toBe('552 5.3.4 Headers too large to forward: more than 262144 bytes in all');
  });
});

describe('attachment content is checked against its type (defect 7)', () => {
  function withAttachment(contentType: string, filename: string, data: Buffer): string {
    return crlf([
      'From: a@example.com',
      'Subject: s',
      'Content-Type: multipart/mixed; boundary="B"',
      '',
      '--B',
      'Content-Type: text/plain',
      '',
      'see attached',
      '--B',
      `Content-Type: ${contentType}`,
      'Content-Transfer-Encoding: base64',
      `Content-Disposition: attachment; filename="${filename}"`,
      '',
      b64lines(data),
      '--B--',
      '',
    ]);
  }

  it.each([
    ['application/pdf', 'invoice.pdf', SAMPLE_EXECUTABLE, 'pdf', 'looks like exe'],
    ['application/octet-stream', 'invoice.pdf', SAMPLE_EXECUTABLE, 'pdf', 'looks like exe'],
    ['image/jpeg', 'photo.jpg', SAMPLE_FILES.png, 'jpeg', 'looks like png'],
    ['application/pdf', 'scan.pdf', Buffer.from('just some text, not a PDF'), 'pdf', 'has no recognizable signature'],
    ['application/vnd.ms-excel', 'export.xls', Buffer.from('<html><table><tr><td>1</td></tr></table></html>'), 'xls', 'has no recognizable signature'],
    ['application/vnd.openxmlformats-officedocument.wordprocessingml.document', 'letter.docx', SAMPLE_FILES.xlsx, 'docx', 'looks like xlsx'],
    ['application/msword', 'letter.doc', SAMPLE_FILES.pdf, 'doc', 'looks like pdf'],
    ['text/csv', 'data.csv', SAMPLE_EXECUTABLE, 'csv', 'looks like exe'],
    ['text/calendar', 'invite.ics', SAMPLE_FILES.png, 'ics', 'looks like png'],
    ['application/octet-stream', 'letter.docx', zipOf([['setup.exe', 'MZ']]), 'docx', 'looks like zip'],
    ['application/octet-stream', 'book.xlsx', zipOf([['[Content_Types].xml', '<Types/>'], ['payload/run.exe', 'MZ']]), 'xlsx', 'looks like zip'],
    ['application/octet-stream', 'book.xlsx', Buffer.concat([Buffer.from('504b0304140000000000', 'hex'), Buffer.alloc(100, 0x41)]), 'xlsx', 'looks like zip'],
  ])('%s %s with other content → 554 5.6.1', async (type, filename, data, ext, what) => {
    const err = await refusal(() => parse(withAttachment(type, filename, data)));
    expect(err.line).toBe(`554 5.6.1 Attachment "${filename}" is not a valid ${ext} file: its content ${what}`);
  });

  /** A zip of stored entries (local file headers and data; what the signature check reads). */
  function zipOf(entries: ReadonlyArray<readonly [string, string]>, options: { readonly descriptor?: boolean } = {}): Buffer {
    return Buffer.concat(
      entries.flatMap(([name, content]) => {
        const header = Buffer.alloc(30);
        header.writeUInt32LE(0x04034b50, 0);
        header.writeUInt16LE(20, 4);
        header.writeUInt16LE(options.descriptor ? 0x08 : 0, 6);
        header.writeUInt32LE(options.descriptor ? 0 : content.length, 18);
        header.writeUInt32LE(content.length, 22);
        header.writeUInt16LE(name.length, 26);
        return [header, Buffer.from(name, 'latin1'), Buffer.from(content, 'latin1')];
      }),
    );
  }

  it('a zip holding an OOXML package is taken as docx or xlsx (its parts may lie past the first 64 KiB); text types pass without a signature', async () => {
    const big = 'x'.repeat(70 * 1024); // file-type reads 64 KiB: it sees a zip, not which OOXML type
    const sheet = zipOf([
      ['[Content_Types].xml', big],
      ['xl/workbook.xml', '<workbook/>'],
    ]);
    expect((await parse(withAttachment('application/octet-stream', 'book.xlsx', sheet))).attachments[0]?.type).toBe('xlsx');
    // sizes after the data (a data descriptor): the walk stops at the first entry, whose data
    // here happens to start like another local header
    const letter = zipOf(
      [
        ['_rels/.rels', zipOf([['inner.exe', 'MZ']]).toString('latin1') + big],
        ['word/document.xml', '<document/>'],
      ],
      { descriptor: true },
    );
    expect((await parse(withAttachment('application/octet-stream', 'letter.docx', letter))).attachments[0]?.type).toBe('docx');
    expect((await parse(withAttachment('text/csv', 'data.csv', SAMPLE_FILES.csv))).attachments[0]?.type).toBe('csv');
    expect((await parse(withAttachment('text/calendar', 'x.ics', Buffer.from('not quite a calendar')))).attachments[0]?.type).toBe('calendar');
  });
});

describe('calendar parts: linear work (defect 8)', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('990 distinct calendars of equal size are compared without any pairwise byte comparison', async () => {
    const n = 990;
    const calendar = (i: number): string => `BEGIN:VCALENDAR\r\nUID:${String(i).padStart(6, '0')}\r\n${'X'.repeat(2000)}\r\nEND:VCALENDAR\r\n`;
    const raw = crlf([
      'From: a@example.com',
      'Subject: s',
      'Content-Type: multipart/mixed; boundary="B"',
      '',
      ...Array.from({ length: n }, (_, i) => ['--B', 'Content-Type: text/calendar', 'Content-Transfer-Encoding: base64', '', b64lines(Buffer.from(calendar(i)))]).flat(),
      ...Array.from({ length: 3 }, () => ['--B', 'Content-Type: text/calendar', 'Content-Transfer-Encoding: base64', '', b64lines(Buffer.from(calendar(0)))]).flat(),
      '--B--',
      '',
    ]);
    const equals = vi.spyOn(Buffer.prototype, 'equals');
    const compare = vi.spyOn(Buffer.prototype, 'compare');
    const concat = vi.spyOn(Buffer, 'concat');
    const parsed = await parse(raw, false);
    expect(parsed.attachments).toHaveLength(n); // the three copies of the first one are dropped
    // the old duplicate check compared every pair: n²/2 ≈ 490,000 comparisons
    expect(equals.mock.calls.length + compare.mock.calls.length).toBeLessThan(n);
    // and Buffer.concat stays linear in the number of parts
    expect(concat.mock.calls.length).toBeLessThan(20 * n);
  });
});
