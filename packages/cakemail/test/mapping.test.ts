import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { isSmtpError, type SmtpError } from '@cakemail-smtp/smtp-core';
import { SAMPLE_FILES, type SampleType } from '@cakemail-smtp/testkit';
import { apiFilename, attachmentTypeOf } from '../src/message/attachments.js';
import { readControlHeaders } from '../src/message/control-headers.js';
import { neutralizeEncodedWords } from '../src/message/headers.js';
import { parseMessage } from '../src/message/parse.js';
import type { ParsedMessage } from '../src/message/parsed.js';
import { prepareEmail } from '../src/message/request-body.js';
import { bodyOf } from './helpers/message.js';

/** Streams the message in small chunks so the parser sees split lines and split base64. */
function streamOf(raw: string | Buffer, chunkSize = 13): Readable {
  const buf = typeof raw === 'string' ? Buffer.from(raw, 'latin1') : raw;
  const chunks: Buffer[] = [];
  for (let i = 0; i < buf.length; i += chunkSize) chunks.push(buf.subarray(i, i + chunkSize));
  return Readable.from(chunks);
}

const crlf = (lines: string[]): string => lines.join('\r\n');
const parse = (raw: string | Buffer): Promise<ParsedMessage> => parseMessage(streamOf(raw));

async function refusal(raw: string): Promise<SmtpError> {
  try {
    await parse(raw);
  } catch (err) {
    if (isSmtpError(err)) return err;
    throw err;
  }
  throw new Error('expected a refusal');
}

function body(parsed: ParsedMessage, to = 'rcpt@example.com') {
  const prepared = prepareEmail(parsed, readControlHeaders(parsed.control, 'transactional'), {
    senderId: 'snd-1',
    ...(parsed.from?.name ? { senderName: parsed.from.name } : {}),
    listId: 7,
  });
  return bodyOf(prepared, to);
}

const b64 = (s: string, enc: BufferEncoding = 'utf8'): string => Buffer.from(s, enc).toString('base64');

describe('content decoding: charset × transfer encoding', () => {
  const cases: { name: string; type: string; cte: string; payload: string; expected: string }[] = [
    { name: '7bit ascii', type: 'text/plain', cte: '7bit', payload: 'Plain text', expected: 'Plain text' },
    { name: 'qp utf-8', type: 'text/plain; charset=utf-8', cte: 'quoted-printable', payload: 'Caf=C3=A9 cr=C3=A8me =E2=82=AC', expected: 'Café crème €' },
    { name: 'qp soft break', type: 'text/plain; charset=utf-8', cte: 'quoted-printable', payload: 'long=\r\nline', expected: 'longline' },
    { name: 'base64 utf-8', type: 'text/plain; charset=UTF-8', cte: 'base64', payload: b64('Ünïcödé ✓ 日本'), expected: 'Ünïcödé ✓ 日本' },
    { name: 'qp iso-8859-1', type: 'text/plain; charset=iso-8859-1', cte: 'quoted-printable', payload: 'Caf=E9 =E0 la cr=E8me', expected: 'Café à la crème' },
    { name: '8bit iso-8859-1', type: 'text/plain; charset="ISO-8859-1"', cte: '8bit', payload: 'Caf\xe9 gar\xe7on', expected: 'Café garçon' },
    { name: 'base64 iso-8859-1', type: 'text/plain; charset=iso-8859-1', cte: 'base64', payload: b64('Noël élève', 'latin1'), expected: 'Noël élève' },
    { name: 'qp windows-1252', type: 'text/plain; charset=windows-1252', cte: 'quoted-printable', payload: '=80 5 =93quoted=94', expected: '€ 5 “quoted”' },
    { name: '8bit utf-8', type: 'text/plain; charset=utf-8', cte: '8bit', payload: Buffer.from('naïve café', 'utf8').toString('latin1'), expected: 'naïve café' },
  ];
  it.each(cases)('text part: $name', async ({ type, cte, payload, expected }) => {
    const parsed = await parse(crlf(['From: a@example.com', 'Subject: s', `Content-Type: ${type}`, `Content-Transfer-Encoding: ${cte}`, '', payload, '']));
    expect(parsed.text).toBe(expected);
    expect(parsed.html).toBeUndefined();
    expect(body(parsed).content).toEqual({ type: 'transactional', subject: 's', text: expected, encoding: 'utf-8' });
  });

  it.each(cases)('html part in multipart/alternative: $name', async ({ type, cte, payload, expected }) => {
    const parsed = await parse(
      crlf([
        'From: a@example.com',
        'Subject: s',
        'MIME-Version: 1.0',
        'Content-Type: multipart/alternative; boundary="XX"',
        '',
        '--XX',
        'Content-Type: text/plain; charset=us-ascii',
        '',
        'plain version',
        '--XX',
        `Content-Type: ${type.replace('text/plain', 'text/html')}`,
        `Content-Transfer-Encoding: ${cte}`,
        '',
        payload,
        '--XX--',
        '',
      ]),
    );
    expect(parsed.text).toBe('plain version');
    expect(parsed.html).toBe(expected);
  });

  it('does not invent a text alternative for html-only mail, nor html for text-only', async () => {
    const html = await parse(crlf(['Subject: s', 'Content-Type: text/html', '', '<p>Hi</p>', '']));
    expect(html.html).toBe('<p>Hi</p>\n');
    expect(html.text).toBeUndefined();
    const text = await parse(crlf(['Subject: s', '', 'Hi', '']));
    expect(text.html).toBeUndefined();
    expect(text.text).toBe('Hi');
  });

  it('strips the one trailing newline of a text part, keeps inner blank lines', async () => {
    const parsed = await parse(crlf(['Subject: s', '', 'line 1', '', 'line 3', '']));
    expect(parsed.text).toBe('line 1\n\nline 3');
  });

  it('omits text and html when the body is empty', async () => {
    const parsed = await parse(crlf(['Subject: s', '', '']));
    const content = body(parsed).content;
    expect(content.text).toBeUndefined();
    expect(content.html).toBeUndefined();
  });
});

describe('subject', () => {
  it.each([
    ['plain', 'Hello world', 'Hello world'],
    ['UTF-8 B encoded-word', `=?UTF-8?B?${b64('Réunion ✓')}?=`, 'Réunion ✓'],
    ['ISO-8859-1 Q encoded-word', '=?ISO-8859-1?Q?Caf=E9_cr=E8me?=', 'Café crème'],
    ['adjacent encoded-words joined', '=?UTF-8?Q?a=C3=A9?= =?UTF-8?Q?b?=', 'aéb'],
    ['mixed text and encoded-word', 'Re: =?utf-8?q?na=C3=AFve?= idea', 'Re: naïve idea'],
    ['folded', 'A long\r\n subject line', 'A long subject line'],
    ['raw 8-bit UTF-8', Buffer.from('Déjà vu', 'utf8').toString('latin1'), 'Déjà vu'],
  ])('%s', async (_name, raw, expected) => {
    const parsed = await parse(crlf([`Subject: ${raw}`, '', 'x', '']));
    expect(parsed.subject).toBe(expected);
  });

  it.each([
    ['missing', crlf(['From: a@example.com', '', 'x', ''])],
    ['empty', crlf(['Subject:', '', 'x', ''])],
    ['blank', crlf(['Subject:    ', '', 'x', ''])],
  ])('%s subject gets the placeholder', async (_name, raw) => {
    expect((await parse(raw)).subject).toBe('(no subject)');
  });
});

describe('CR/LF never reaches an API field', () => {
  const evil = b64('Hi\r\nBcc: victim@example.com\r\n\r\nbody');
  const raw = crlf([
    `From: =?UTF-8?B?${b64('Bob\r\nX-Injected: 1')}?= <bob@example.com>`,
    `Subject: =?UTF-8?B?${evil}?=`,
    `X-Custom: =?UTF-8?B?${evil}?=`,
    `Reply-To: =?UTF-8?Q?Rep=0D=0ABcc:_x@y?= <reply@example.com>`,
    'X-Folded: part one',
    '\tpart two',
    '',
    'body',
    '',
  ]);

  it('subject, sender name and header values carry no control characters', async () => {
    const parsed = await parse(raw);
    const b = body(parsed);
    const json = JSON.stringify(b);
    // eslint-disable-next-line no-control-regex
    const ctl = /[\x00-\x08\x0a-\x1f]/;
    expect(b.content.subject).toBe('Hi Bcc: victim@example.com body');
    expect(b.sender.name).toBe('Bob X-Injected: 1');
    for (const h of b.additional_headers ?? []) {
      expect(h.name).not.toMatch(ctl);
      expect(h.value).not.toMatch(ctl);
      expect(h.value).not.toMatch(/\r|\n/);
    }
    expect(json).not.toContain('\\r');
    expect(json).not.toContain('\\n');
  });

  it('encoded-words that decode to CR/LF are re-encoded cleaned; harmless ones are kept as sent', async () => {
    const parsed = await parse(raw);
    const custom = parsed.headers.find((h) => h.name === 'X-Custom');
    expect(custom?.value).toBe(`=?UTF-8?B?${b64('Hi Bcc: victim@example.com body')}?=`);
    const replyTo = parsed.headers.find((h) => h.name === 'Reply-To');
    expect(Buffer.from(/B\?([^?]+)\?=/.exec(replyTo?.value ?? '')?.[1] ?? '', 'base64').toString()).toBe('Rep Bcc: x@y');
    expect(replyTo?.value).toMatch(/<reply@example\.com>$/);
    expect(neutralizeEncodedWords('=?UTF-8?Q?fine?= text')).toBe('=?UTF-8?Q?fine?= text');
    expect(neutralizeEncodedWords('=?x-unknown?Q?a=0Ab?=')).toBe(`=?UTF-8?B?${b64('a b')}?=`);
  });

  it('folded header values are unfolded', async () => {
    const parsed = await parse(raw);
    expect(parsed.headers.find((h) => h.name === 'X-Folded')?.value).toBe('part one part two');
  });
});

describe('header rules', () => {
  const raw = crlf([
    'Received: from a by b; Mon, 1 Jan 2024 00:00:00 +0000',
    'Return-Path: <bounce@example.com>',
    'DKIM-Signature: v=1; a=rsa-sha256; d=example.com; b=abc',
    'X-Received: by 1.2.3.4',
    'From: "Alice Example" <alice@example.com>',
    'To: bob@example.com',
    'Cc: carol@example.com',
    'Bcc: secret@example.com',
    'Reply-To: replies@example.com',
    'Subject: Hello',
    'Date: Mon, 1 Jan 2024 00:00:00 +0000',
    'Message-ID: <abc@example.com>',
    'In-Reply-To: <prev@example.com>',
    'References: <first@example.com> <prev@example.com>',
    'List-Unsubscribe: <mailto:unsub@example.com>, <https://example.com/u>',
    'List-Unsubscribe-Post: List-Unsubscribe=One-Click',
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    'Content-Transfer-Encoding: 7bit',
    'Sender: other@example.com',
    'Organization: ACME',
    'X-Mailer: test-suite 1.0',
    'X-Campaign: spring',
    'X-Campaign: summer',
    'x-sender-id: snd-9',
    'x-account-id: 42',
    'x-list-id: 77',
    'x-email-api-type: marketing',
    'x-tags: a, b-2,c_3',
    'x-track-opens: false',
    'x-track-clicks-html: TRUE',
    'x-track-clicks-text: false',
    '',
    'body',
    '',
  ]);

  it('keeps exactly the forwarded headers, in order, and drops the rest', async () => {
    const parsed = await parse(raw);
    expect(parsed.headers).toEqual([
      { name: 'Cc', value: 'carol@example.com' },
      { name: 'Reply-To', value: 'replies@example.com' },
      { name: 'Message-ID', value: '<abc@example.com>' },
      { name: 'In-Reply-To', value: '<prev@example.com>' },
      { name: 'References', value: '<first@example.com> <prev@example.com>' },
      { name: 'List-Unsubscribe', value: '<mailto:unsub@example.com>, <https://example.com/u>' },
      { name: 'List-Unsubscribe-Post', value: 'List-Unsubscribe=One-Click' },
      { name: 'X-Mailer', value: 'test-suite 1.0' },
      { name: 'X-Campaign', value: 'spring' },
      { name: 'X-Campaign', value: 'summer' },
    ]);
    expect(JSON.stringify(body(parsed))).not.toContain('secret@example.com');
  });

  it('reads the control headers into API fields', async () => {
    const parsed = await parse(raw);
    expect(readControlHeaders(parsed.control, 'transactional')).toEqual({
      type: 'marketing',
      senderId: 'snd-9',
      accountId: 42,
      listId: 77,
      tags: ['a', 'b-2', 'c_3'],
      tracking: { opens: false, clicks_html: true, clicks_text: false },
    });
    const b = body(parsed);
    expect(b.sender).toEqual({ id: 'snd-1', name: 'Alice Example' });
    expect(b.email).toBe('rcpt@example.com');
    expect(b.list_id).toBe(7);
    expect(b.tags).toEqual(['a', 'b-2', 'c_3']);
    expect(b.tracking).toEqual({ opens: false, clicks_html: true, clicks_text: false });
    expect(b.content.type).toBe('marketing');
  });

  it('defaults: configured type, no tags, no tracking, no sender name without a display name', async () => {
    const parsed = await parse(crlf(['From: alice@example.com', 'Subject: s', '', 'x', '']));
    expect(readControlHeaders(parsed.control, 'marketing')).toEqual({ type: 'marketing' });
    const b = body(parsed);
    expect(b.sender).toEqual({ id: 'snd-1' });
    expect(b).not.toHaveProperty('tags');
    expect(b).not.toHaveProperty('tracking');
    expect(b).not.toHaveProperty('additional_headers');
  });

  it('refuses a bad tag, naming it', async () => {
    const parsed = await parse(crlf(['Subject: s', 'x-tags: good, bad tag!', '', 'x', '']));
    expect(() => readControlHeaders(parsed.control, 'transactional')).toThrow(
      expect.objectContaining({ line: '550 5.6.0 Invalid tag "bad tag!": tags may contain only letters, digits, - and _' }),
    );
  });

  it.each([
    ['x-email-api-type: newsletter', '550 5.6.0 Invalid x-email-api-type header: expected marketing or transactional'],
    ['x-track-opens: yes', '550 5.6.0 Invalid x-track-opens header: expected true or false'],
    ['x-list-id: abc', '550 5.6.0 Invalid x-list-id header: expected a list id (a positive number)'],
    ['x-account-id: 12x', '550 5.7.1 The x-account-id header names an account this login cannot use'],
  ])('refuses %s', async (header, line) => {
    const parsed = await parse(crlf(['Subject: s', header, '', 'x', '']));
    expect(() => readControlHeaders(parsed.control, 'transactional')).toThrow(expect.objectContaining({ line }));
  });
});

describe('attachments', () => {
  const payload = Buffer.from([0, 1, 2, 253, 254, 255, 10, 13, 65, 66]); // 10 bytes: not a multiple of 3

  function withAttachment(type: string, filename: string | undefined, data: Buffer = payload): string {
    const disp = filename === undefined ? 'attachment' : `attachment; filename="${filename}"`;
    return crlf([
      'From: a@example.com',
      'Subject: s',
      'MIME-Version: 1.0',
      'Content-Type: multipart/mixed; boundary="B"',
      '',
      '--B',
      'Content-Type: text/plain',
      '',
      'see attached',
      '--B',
      `Content-Type: ${type}`,
      'Content-Transfer-Encoding: base64',
      `Content-Disposition: ${disp}`,
      '',
      ...(data.toString('base64').match(/.{1,76}/g) ?? []),
      '--B--',
      '',
    ]);
  }

  it.each([
    ['text/csv', 'report.csv', 'csv', 'report.csv'],
    ['application/msword', 'letter.doc', 'doc', 'letter.doc'],
    ['application/vnd.openxmlformats-officedocument.wordprocessingml.document', 'letter.docx', 'docx', 'letter.docx'],
    ['text/calendar; method=REQUEST', 'meeting.ics', 'calendar', 'meeting.ics'],
    ['text/calendar', undefined, 'calendar', 'invite.ics'],
    ['image/jpeg', 'photo.jpg', 'jpeg', 'photo.jpeg'],
    ['application/pdf', 'Résumé final (v2).PDF', 'pdf', 'Resume_final_v2.pdf'],
    ['image/png', 'logo.png', 'png', 'logo.png'],
    ['application/vnd.ms-excel', 'sheet.xls', 'xls', 'sheet.xls'],
    ['application/vnd.openxmlformats-officedocument.spreadsheetml.sheet', 'sheet.xlsx', 'xlsx', 'sheet.xlsx'],
    ['application/octet-stream', 'budget.xlsx', 'xlsx', 'budget.xlsx'],
    ['application/octet-stream', 'scan.JPEG', 'jpeg', 'scan.jpeg'],
    ['application/octet-stream', 'invite.ics', 'calendar', 'invite.ics'],
    ['application/octet-stream', 'data.csv', 'csv', 'data.csv'],
    ['image/png', '../../etc/passwd.png', 'png', 'passwd.png'],
    ['image/png', '¿¡.png', 'png', 'attachment.png'],
  ])('%s %s → %s as %s', async (type, filename, apiType, apiName) => {
    const data = SAMPLE_FILES[apiType as SampleType];
    const parsed = await parse(withAttachment(type, filename, data));
    const b = body(parsed);
    expect(b.attachment).toEqual([{ filename: apiName, type: apiType, content: data.toString('base64') }]);
    expect(b.attachment?.[0]?.filename).toMatch(/^[a-zA-Z0-9-_]+\.(csv|doc|docx|ics|jpeg|pdf|png|xls|xlsx)$/);
    expect(b.content.text).toBe('see attached');
  });

  describe('calendar invitations', () => {
    const ics = 'BEGIN:VCALENDAR\r\nVERSION:2.0\r\nMETHOD:REQUEST\r\nEND:VCALENDAR\r\n';
    /** The shape nodemailer gives an `icalEvent`: a text/calendar alternative, then the .ics attachment. */
    function invitation(alternative: string, attachment: string, name = 'meeting.ics'): string {
      return crlf([
        'From: a@example.com',
        'Subject: Meeting',
        'MIME-Version: 1.0',
        'Content-Type: multipart/mixed; boundary="M"',
        '',
        '--M',
        'Content-Type: multipart/alternative; boundary="A"',
        '',
        '--A',
        'Content-Type: text/plain; charset=utf-8',
        '',
        'Join us',
        '--A',
        'Content-Type: text/calendar; charset=utf-8; method=REQUEST',
        'Content-Transfer-Encoding: 7bit',
        '',
        alternative.replace(/\r\n$/, ''),
        '--A--',
        '',
        '--M',
        `Content-Type: application/ics; name=${name}`,
        `Content-Disposition: attachment; filename=${name}`,
        'Content-Transfer-Encoding: base64',
        '',
        Buffer.from(attachment.replace(/\r\n$/, '')).toString('base64'),
        '--M--',
        '',
      ]);
    }

    it('an icalEvent is sent once, under the attachment\'s name', async () => {
      const b = body(await parse(invitation(ics, ics)));
      expect(b.attachment).toEqual([{ filename: 'meeting.ics', type: 'calendar', content: Buffer.from(ics.replace(/\r\n$/, '')).toString('base64') }]);
      expect(b.content.text).toBe('Join us');
    });

    it('two different calendars are both sent', async () => {
      const other = ics.replace('REQUEST', 'CANCEL');
      const b = body(await parse(invitation(ics, other)));
      expect(b.attachment?.map((a) => a.filename)).toEqual(['invite.ics', 'meeting.ics']);
    });

    it('identical attachments of other types are all sent', async () => {
      const pdf = crlf([
        'Subject: s',
        'Content-Type: multipart/mixed; boundary="B"',
        '',
        ...['a.pdf', 'b.pdf'].flatMap((name) => ['--B', 'Content-Type: application/pdf', 'Content-Transfer-Encoding: base64', `Content-Disposition: attachment; filename="${name}"`, '', SAMPLE_FILES.pdf.toString('base64')]),
        '--B--',
        '',
      ]);
      expect(body(await parse(pdf)).attachment?.map((a) => a.filename)).toEqual(['a.pdf', 'b.pdf']);
    });
  });

  it('encodes a large attachment once, byte-exact, whatever the chunking', async () => {
    const big = Buffer.alloc(300_001);
    for (let i = 0; i < big.length; i++) big[i] = (i * 7919) % 256;
    big.write('%PDF-1.7\n', 'latin1');
    for (const chunk of [1000, 4097, 65536]) {
      const parsed = await parseMessage(streamOf(withAttachment('application/pdf', 'big.pdf', big), chunk));
      expect(parsed.attachments[0]?.length).toBe(big.toString('base64').length);
      expect(body(parsed).attachment?.[0]?.content).toBe(big.toString('base64'));
    }
  });

  it.each([
    ['application/x-msdownload', 'setup.exe', 'setup.exe'],
    ['image/gif', 'anim.gif', 'anim.gif'],
    ['application/zip', 'archive.zip', 'archive.zip'],
    ['application/octet-stream', 'noext', 'noext'],
    ['application/octet-stream', undefined, '(unnamed application/octet-stream)'],
  ])('refuses %s %s', async (type, filename, shown) => {
    const err = await refusal(withAttachment(type, filename));
    expect(err.line).toBe(
      `554 5.6.1 Attachment "${shown}" is not allowed; allowed types: csv, doc, docx, ics, jpeg, pdf, png, xls, xlsx`,
    );
  });

  it('maps types and file names by rule', () => {
    expect(attachmentTypeOf('IMAGE/JPEG; name=x', undefined)).toBe('jpeg');
    expect(attachmentTypeOf('application/octet-stream', 'a.b.docx')).toBe('docx');
    expect(attachmentTypeOf('text/plain', 'notes.txt')).toBeUndefined();
    expect(apiFilename('a  b--c__d.pdf', 'pdf')).toBe('a_b--c__d.pdf');
    expect(apiFilename(undefined, 'png')).toBe('attachment.png');
  });
});

describe('fingerprint', () => {
  const base = crlf(['From: a@example.com', 'To: b@example.com', 'Subject: s', 'Message-ID: <1@example.com>', '', 'body', '']);

  it('is stable for the same message, whatever the chunking and added trace headers', async () => {
    const a = await parseMessage(streamOf(base, 3));
    const b = await parseMessage(streamOf(base, 1000));
    const c = await parse(`Received: from relay by gateway; Tue, 2 Jan 2024 00:00:00 +0000\r\nReturn-Path: <x@y>\r\n${base}`);
    expect(a.fingerprint).toMatch(/^[0-9a-f]{64}$/);
    expect(b.fingerprint).toBe(a.fingerprint);
    expect(c.fingerprint).toBe(a.fingerprint);
  });

  it('changes with the body, a header or the Message-ID', async () => {
    const a = (await parse(base)).fingerprint;
    expect((await parse(base.replace('body', 'bodx'))).fingerprint).not.toBe(a);
    expect((await parse(base.replace('Subject: s', 'Subject: t'))).fingerprint).not.toBe(a);
    expect((await parse(base.replace('<1@', '<2@'))).fingerprint).not.toBe(a);
  });
});

describe('prepared body', () => {
  it('serializes once and changes only the email per recipient', async () => {
    const parsed = await parse(crlf(['From: "A" <a@example.com>', 'Subject: s', '', 'x', '']));
    const prepared = prepareEmail(parsed, { type: 'transactional' }, { senderId: 's', senderName: 'A', listId: 3 });
    const one = prepared.forRecipient('one@example.com');
    const two = prepared.forRecipient('two"@example.com');
    expect(one.length).toBe(Buffer.concat(one.chunks).length);
    expect(one.chunks.slice(1)).toEqual(two.chunks.slice(1));
    expect(one.chunks[1]).toBe(two.chunks[1]); // same buffer, not a copy
    expect(JSON.parse(Buffer.concat(two.chunks).toString())).toEqual({
      email: 'two"@example.com',
      sender: { id: 's', name: 'A' },
      list_id: 3,
      content: { type: 'transactional', subject: 's', text: 'x', encoding: 'utf-8' },
    });
  });
});
