/**
 * End to end, over real SMTP through the whole gateway into the fake Cakemail API: how a
 * message maps to `POST /v2/emails` — list, type, tags, tracking, content, headers kept and
 * dropped, Bcc, CR/LF injection, charsets and transfer encodings, attachments.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { DEFAULT_ACCOUNT_ID, DEFAULT_SENDER, SAMPLE_EXECUTABLE, SAMPLE_FILES, type SampleType, type SentEmail } from '@cakemail-smtp/testkit';
import { lineOf, sentTo, useGateway, startGateway, textMessage, type RunningGateway } from './e2e-helpers.js';

const FROM = DEFAULT_SENDER.email;
const QUEUED = /^250 2\.0\.0 Ok: queued as ([0-9a-f-]{36})$/;

/** The one email the fake accepted; fails when there is not exactly one. */
function only(gw: RunningGateway): SentEmail {
  const sent = gw.fake.sent();
  expect(sent).toHaveLength(1);
  return sent[0] as SentEmail;
}

/** The names of the forwarded headers. */
const headerNames = (email: SentEmail): string[] => (email.body.additional_headers ?? []).map((h) => h.name);

/** A UTF-8 string as the latin1 "binary" string the raw ladder writes byte for byte. */
const utf8Bytes = (s: string): string => Buffer.from(s, 'utf8').toString('latin1');

describe('the list', () => {
  let gw: RunningGateway;
  afterEach(async () => {
    await gw.close();
  });

  it('"SMTP Gateway" is created once per account: two messages → one GET /lists, one POST /lists', async () => {
    gw = await startGateway();
    const first = await gw.send({ from: FROM, to: 'a@example.net', subject: 'one', text: 'one' });
    const second = await gw.send({ from: FROM, to: 'b@example.net', subject: 'two', text: 'two' });
    const sent = gw.fake.sent();
    expect([first.line, second.line]).toEqual(sent.map((e) => `250 2.0.0 Ok: queued as ${e.id}`));
    const lists = gw.fake.lists(DEFAULT_ACCOUNT_ID);
    expect(lists.map((l) => [l.name, l.defaultSenderId])).toEqual([['SMTP Gateway', DEFAULT_SENDER.id]]);
    expect(sent.map((e) => e.body.list_id)).toEqual([lists[0]?.id, lists[0]?.id]);
    expect(gw.fake.counts()).toMatchObject({ lists: 1, createList: 1, send: 2 });
    expect(gw.fake.callsTo('lists')[0]?.query).toMatchObject({ account_id: String(DEFAULT_ACCOUNT_ID), filter: 'name==SMTP Gateway' });
    expect(gw.fake.callsTo('createList')[0]?.body).toEqual({ name: 'SMTP Gateway', default_sender: { id: DEFAULT_SENDER.id } });
  });

  it('two concurrent first messages still create the list once', async () => {
    gw = await startGateway();
    const replies = await Promise.all(
      ['a@example.net', 'b@example.net', 'c@example.net'].map((to) => gw.send({ from: FROM, to, subject: 'x', text: 'x' })),
    );
    expect(replies.map((r) => r.line)).toEqual(replies.map(() => expect.stringMatching(QUEUED)));
    expect(gw.fake.counts()).toMatchObject({ createList: 1, send: 3 });
    expect(gw.fake.lists(DEFAULT_ACCOUNT_ID)).toHaveLength(1);
  });

  it.each<{ route: 'lists' | 'createList' }>([{ route: 'lists' }, { route: 'createList' }])(
    '$route failing (503) → 451 4.3.0, nothing sent; the next message finds or creates the list once',
    async ({ route }) => {
      gw = await startGateway({ env: { CAKEMAIL_TIMEOUT_MS: '400', UPSTREAM_DEADLINE_MS: '1200' } });
      gw.fake.faults.set(route, { status: 503 });
      const failed = await gw.send({ from: FROM, to: 'a@example.net', subject: 'x', text: 'x' });
      expect(failed.line).toBe('451 4.3.0 Cakemail is temporarily unavailable, try again later');
      expect(gw.fake.callsTo('send')).toHaveLength(0);
      gw.fake.reset();
      const ok = await gw.send({ from: FROM, to: 'a@example.net', subject: 'x', text: 'x' });
      expect(ok.line).toBe(`250 2.0.0 Ok: queued as ${only(gw).id}`);
      expect(gw.fake.lists(DEFAULT_ACCOUNT_ID).filter((l) => l.name === 'SMTP Gateway')).toHaveLength(1);
      expect(gw.fake.counts()).toMatchObject({ createList: 1, send: 1 });
    },
  );

  it('an existing "SMTP Gateway" list is found, not created', async () => {
    gw = await startGateway();
    gw.fake.addList(DEFAULT_ACCOUNT_ID, { id: 555, name: 'Other list' });
    gw.fake.addList(DEFAULT_ACCOUNT_ID, { id: 556, name: 'SMTP Gateway' });
    const reply = await gw.send({ from: FROM, to: 'a@example.net', subject: 'x', text: 'x' });
    expect(reply.line).toMatch(QUEUED);
    expect(only(gw).body.list_id).toBe(556);
    expect(gw.fake.counts()).toMatchObject({ lists: 1, createList: 0 });
  });

  it('x-list-id wins over CAKEMAIL_LIST_ID, which wins over "SMTP Gateway"; no list lookups then', async () => {
    gw = await startGateway({ env: { CAKEMAIL_LIST_ID: '4343' } });
    gw.fake.addList(DEFAULT_ACCOUNT_ID, { id: 4343, name: 'Configured' });
    gw.fake.addList(DEFAULT_ACCOUNT_ID, { id: 4242, name: 'Per message' });
    const configured = await gw.send({ from: FROM, to: 'a@example.net', subject: 'x', text: 'x' });
    const header = await gw.send({ from: FROM, to: 'b@example.net', subject: 'x', text: 'x', headers: { 'x-list-id': '4242' } });
    expect(configured.line).toMatch(QUEUED);
    expect(header.line).toMatch(QUEUED);
    expect(gw.fake.sent().map((e) => [e.body.email, e.body.list_id])).toEqual([
      ['a@example.net', 4343],
      ['b@example.net', 4242],
    ]);
    expect(gw.fake.counts()).toMatchObject({ lists: 0, createList: 0 });
    expect(headerNames(gw.fake.sent()[1] as SentEmail)).toEqual(['Message-ID']);
  });

  it.each([
    { name: 'a list the account does not have', value: '999', line: '550 5.6.0 Cakemail rejected the message: List 999 not found in account 1001', sends: 1 },
    { name: 'a value that is not a list id', value: 'newsletter', line: '550 5.6.0 Invalid x-list-id header: expected a list id (a positive number)', sends: 0 },
  ])('x-list-id naming $name → $line', async ({ value, line, sends }) => {
    gw = await startGateway();
    const reply = await gw.send({ from: FROM, to: 'a@example.net', subject: 'x', text: 'x', headers: { 'x-list-id': value } });
    expect(reply.line).toBe(line);
    expect(gw.fake.callsTo('send')).toHaveLength(sends);
    expect(gw.fake.sent()).toHaveLength(0);
  });
});

describe('control headers', () => {
  const gw = useGateway({}, { resetFake: true });

  it.each([
    { header: undefined, type: 'transactional' },
    { header: 'marketing', type: 'marketing' },
    { header: 'transactional', type: 'transactional' },
    { header: 'Marketing', type: 'marketing' },
  ])('x-email-api-type $header → content.type $type', async ({ header, type }) => {
    const reply = await gw.send({ from: FROM, to: 'a@example.net', subject: 'x', text: 'x', headers: header === undefined ? {} : { 'x-email-api-type': header } });
    expect(reply.line).toMatch(QUEUED);
    const email = only(gw);
    expect(email.body.content.type).toBe(type);
    expect(headerNames(email)).toEqual(['Message-ID']); // nodemailer's; no control header
  });

  it('CAKEMAIL_EMAIL_TYPE=marketing is the default type; the header still wins', async () => {
    const marketing = await startGateway({ env: { CAKEMAIL_EMAIL_TYPE: 'marketing' } });
    try {
      expect((await marketing.send({ from: FROM, to: 'a@example.net', subject: 'x', text: 'x' })).line).toMatch(QUEUED);
      expect((await marketing.send({ from: FROM, to: 'b@example.net', subject: 'x', text: 'x', headers: { 'x-email-api-type': 'transactional' } })).line).toMatch(QUEUED);
      expect(marketing.fake.sent().map((e) => e.body.content.type)).toEqual(['marketing', 'transactional']);
    } finally {
      await marketing.close();
    }
  });

  it.each([
    { name: 'tags, trimmed, duplicates once', value: 'welcome, onboarding ,2024_q1,welcome,A-b', tags: ['welcome', 'onboarding', '2024_q1', 'A-b'] },
    { name: 'a tag of 255 characters', value: 'x'.repeat(255), tags: ['x'.repeat(255)] },
    { name: 'empty items ignored', value: 'one,,two,', tags: ['one', 'two'] },
  ])('x-tags with $name', async ({ value, tags }) => {
    const reply = await gw.send({ from: FROM, to: 'a@example.net', subject: 'x', text: 'x', headers: { 'x-tags': value } });
    expect(reply.line).toMatch(QUEUED);
    const email = only(gw);
    expect(email.body.tags).toEqual(tags);
    expect(headerNames(email)).toEqual(['Message-ID']); // nodemailer's; no control header
  });

  it.each([
    { value: 'good, bad!tag', tag: 'bad!tag' },
    { value: 'two words', tag: 'two words' },
    { value: 'ok,a.b', tag: 'a.b' },
    { value: 'y'.repeat(256), tag: 'y'.repeat(100) },
  ])('x-tags "$value" → 550 5.6.0 naming the tag, nothing sent', async ({ value, tag }) => {
    const reply = await gw.send({ from: FROM, to: 'a@example.net', subject: 'x', text: 'x', headers: { 'x-tags': value } });
    expect(reply.line).toBe(`550 5.6.0 Invalid tag "${tag}": tags may contain only letters, digits, - and _`);
    expect(gw.fake.callsTo('send')).toHaveLength(0);
  });

  it('a non-ASCII tag (8-bit header) is refused and named decoded', async () => {
    const reply = await gw.sendRaw(FROM, ['a@example.net'], textMessage({ subject: 'x', headers: [`x-tags: ok, ${utf8Bytes('café')}`] }));
    // replies are ASCII: the decoded tag's non-ASCII character is shown as "?"
    expect(lineOf(reply)).toBe('550 5.6.0 Invalid tag "caf?": tags may contain only letters, digits, - and _');
    expect(gw.fake.callsTo('send')).toHaveLength(0);
  });

  it.each([
    { headers: {}, tracking: undefined },
    { headers: { 'x-track-opens': 'false' }, tracking: { opens: false } },
    { headers: { 'x-track-clicks-html': 'false', 'x-track-clicks-text': 'true' }, tracking: { clicks_html: false, clicks_text: true } },
    {
      headers: { 'x-track-opens': 'TRUE', 'x-track-clicks-html': 'true', 'x-track-clicks-text': 'False' },
      tracking: { opens: true, clicks_html: true, clicks_text: false },
    },
  ])('tracking headers $headers → tracking $tracking', async ({ headers, tracking }) => {
    const reply = await gw.send({ from: FROM, to: 'a@example.net', subject: 'x', text: 'x', headers });
    expect(reply.line).toMatch(QUEUED);
    const email = only(gw);
    expect(email.body.tracking).toEqual(tracking);
    expect(headerNames(email)).toEqual(['Message-ID']); // nodemailer's; no control header
  });

  it.each([
    { header: 'x-track-opens', value: 'yes' },
    { header: 'x-track-clicks-html', value: '0' },
    { header: 'x-track-clicks-text', value: 'maybe' },
  ])('$header: $value → 550 5.6.0, nothing sent', async ({ header, value }) => {
    const reply = await gw.send({ from: FROM, to: 'a@example.net', subject: 'x', text: 'x', headers: { [header]: value } });
    expect(reply.line).toBe(`550 5.6.0 Invalid ${header} header: expected true or false`);
    expect(gw.fake.callsTo('send')).toHaveLength(0);
  });

  it('x-email-api-type with another value → 550 5.6.0, nothing sent', async () => {
    const reply = await gw.send({ from: FROM, to: 'a@example.net', subject: 'x', text: 'x', headers: { 'x-email-api-type': 'newsletter' } });
    expect(reply.line).toBe('550 5.6.0 Invalid x-email-api-type header: expected marketing or transactional');
    expect(gw.fake.callsTo('send')).toHaveLength(0);
  });
});

describe('content and headers', () => {
  const gw = useGateway({}, { resetFake: true });

  it.each([
    { name: 'text and html', mail: { text: 'Plain café', html: '<p>HTML café</p>' }, content: { text: 'Plain café', html: '<p>HTML café</p>' } },
    { name: 'text only', mail: { text: 'Only text\nsecond line' }, content: { text: 'Only text\nsecond line' } },
    // a single-part body keeps its last line end in html (text drops it)
    { name: 'html only', mail: { html: '<h1>Only HTML</h1>' }, content: { html: '<h1>Only HTML</h1>\n' } },
  ])('subject, $name → content', async ({ mail, content }) => {
    const reply = await gw.send({ from: FROM, to: 'a@example.net', subject: 'Subject ✓ été', ...mail });
    const email = only(gw);
    expect(reply.line).toBe(`250 2.0.0 Ok: queued as ${email.id}`);
    expect(email.body.content).toEqual({ type: 'transactional', subject: 'Subject ✓ été', encoding: 'utf-8', ...content });
  });

  it.each([
    { name: 'no Subject header', subjectLine: [] },
    { name: 'an empty Subject', subjectLine: ['Subject: '] },
    { name: 'a blank Subject', subjectLine: ['Subject:    '] },
  ])('a message with $name gets the "(no subject)" placeholder', async ({ subjectLine }) => {
    const raw = textMessage({ headers: subjectLine, body: 'body' });
    const reply = await gw.sendRaw(FROM, ['a@example.net'], raw);
    expect(lineOf(reply)).toMatch(QUEUED);
    expect(only(gw).body.content.subject).toBe('(no subject)');
  });

  it('keeps Reply-To, Cc, In-Reply-To, References, Message-ID, List-Unsubscribe(-Post) and unconsumed X- headers; drops the rest', async () => {
    const raw = [
      'Received: from client.example (client.example [192.0.2.1]) by mx.example with ESMTP id 1',
      'Return-Path: <bounce@example.com>',
      'DKIM-Signature: v=1; a=rsa-sha256; d=example.com; s=sel; b=abc',
      'X-Received: by 2002:a05 with SMTP id',
      'X-Google-DKIM-Signature: v=1; a=rsa-sha256',
      `From: Dev <${FROM}>`,
      'Sender: someone-else@example.com',
      'To: a@example.net',
      'Cc: Bee <b@example.net>, c@example.net',
      'Bcc: hidden@example.net',
      'Reply-To: Support <support@example.com>',
      'Subject: Headers',
      'Date: Mon, 01 Jan 2024 00:00:00 +0000',
      'Message-ID: <msg-1@example.com>',
      'In-Reply-To: <parent@example.com>',
      'References: <root@example.com>',
      '  <parent@example.com>',
      'List-Unsubscribe: <https://example.com/u/1>, <mailto:u@example.com>',
      'List-Unsubscribe-Post: List-Unsubscribe=One-Click',
      'X-Custom: custom value',
      'X-Mailer: TestMailer 1.0',
      'Organization: Example Inc.',
      'x-tags: t1',
      'x-track-opens: false',
      'x-email-api-type: marketing',
      'x-sender-id: 1',
      `x-account-id: ${DEFAULT_ACCOUNT_ID}`,
      'x-track-clicks-html: true',
      'x-track-clicks-text: true',
      'MIME-Version: 1.0',
      'Content-Type: text/plain; charset=utf-8',
      'Content-Transfer-Encoding: 7bit',
      '',
      'Body',
      '',
    ].join('\r\n');
    const reply = await gw.sendRaw(FROM, ['a@example.net', 'b@example.net', 'c@example.net', 'hidden@example.net'], raw);
    const sent = gw.fake.sent();
    expect(sent.map((e) => e.body.email).sort()).toEqual(['a@example.net', 'b@example.net', 'c@example.net', 'hidden@example.net']);
    expect(lineOf(reply)).toBe(`250 2.0.0 Ok: queued as ${sentTo(gw.fake, 'a@example.net')[0]?.id} (+3 more)`);
    const expected = [
      { name: 'Cc', value: 'Bee <b@example.net>, c@example.net' },
      { name: 'Reply-To', value: 'Support <support@example.com>' },
      { name: 'Message-ID', value: '<msg-1@example.com>' },
      { name: 'In-Reply-To', value: '<parent@example.com>' },
      { name: 'References', value: '<root@example.com> <parent@example.com>' },
      { name: 'List-Unsubscribe', value: '<https://example.com/u/1>, <mailto:u@example.com>' },
      { name: 'List-Unsubscribe-Post', value: 'List-Unsubscribe=One-Click' },
      { name: 'X-Custom', value: 'custom value' },
      { name: 'X-Mailer', value: 'TestMailer 1.0' },
    ];
    for (const email of sent) {
      // the Bcc recipient gets its copy, with the same headers: no Bcc anywhere
      expect(email.body.additional_headers).toEqual(expected);
      expect(email.body.tags).toEqual(['t1']);
      expect(email.body.tracking).toEqual({ opens: false, clicks_html: true, clicks_text: true });
      expect(email.body.content.type).toBe('marketing');
    }
  });

  it('never forwards the Bcc header, through nodemailer either (Bcc recipients still get their copy)', async () => {
    const reply = await gw.send({ from: FROM, to: 'a@example.net', cc: 'b@example.net', bcc: 'hidden@example.net', subject: 'Bcc', text: 'x' });
    const sent = gw.fake.sent();
    expect(reply.line).toBe(`250 2.0.0 Ok: queued as ${sentTo(gw.fake, 'a@example.net')[0]?.id} (+2 more)`);
    expect(sent.map((e) => e.body.email).sort()).toEqual(['a@example.net', 'b@example.net', 'hidden@example.net']);
    for (const email of sent) {
      const names = (email.body.additional_headers ?? []).map((h) => h.name.toLowerCase());
      expect(names).toContain('cc');
      expect(names).not.toContain('bcc');
      expect(JSON.stringify(email.body.additional_headers)).not.toContain('hidden');
    }
  });

  it('no CR or LF reaches any API field (encoded-word injection in Subject, From name and kept headers)', async () => {
    const b = (s: string): string => `=?UTF-8?B?${Buffer.from(s).toString('base64')}?=`;
    const raw = [
      `From: ${b('Evil\r\nBcc: victim@example.org')} <${FROM}>`,
      'To: a@example.net',
      `Subject: ${b('Hello\r\nBcc: victim@example.org\r\n\r\nInjected body')}`,
      `Reply-To: ${b('Name\r\nX-Injected: 1')} <reply@example.com>`,
      `X-Custom: =?ISO-8859-1?Q?caf=E9=0D=0AX-Evil:_1?=`,
      'X-Folded: first',
      '\tsecond',
      'Message-ID: <id@example.com>',
      'MIME-Version: 1.0',
      'Content-Type: text/plain; charset=utf-8',
      '',
      'line one',
      'line two',
      '',
    ].join('\r\n');
    const reply = await gw.sendRaw(FROM, ['a@example.net'], raw);
    expect(lineOf(reply)).toMatch(QUEUED);
    const email = only(gw);
    expect(email.body.content.subject).toBe('Hello Bcc: victim@example.org Injected body');
    expect(email.body.sender).toEqual({ id: DEFAULT_SENDER.id, name: 'Evil Bcc: victim@example.org' });
    expect(email.body.additional_headers).toEqual([
      { name: 'Reply-To', value: `${b('Name X-Injected: 1')} <reply@example.com>` },
      { name: 'X-Custom', value: b('café X-Evil: 1') },
      { name: 'X-Folded', value: 'first second' },
      { name: 'Message-ID', value: '<id@example.com>' },
    ]);
    const offenders: string[] = [];
    const walk = (value: unknown, path: string): void => {
      if (path === '.content.text' || path === '.content.html') return;
      if (typeof value === 'string') {
        if (/[\r\n]/.test(value)) offenders.push(path);
      } else if (Array.isArray(value)) value.forEach((v, i) => walk(v, `${path}[${i}]`));
      else if (value !== null && typeof value === 'object') for (const [k, v] of Object.entries(value)) walk(v, `${path}.${k}`);
    };
    walk(email.body, '');
    expect(offenders).toEqual([]);
    // decoded, the kept headers hold no CR/LF either
    for (const h of email.body.additional_headers ?? []) {
      for (const m of h.value.matchAll(/=\?UTF-8\?B\?([^?]*)\?=/g)) expect(Buffer.from(m[1] ?? '', 'base64').toString()).not.toMatch(/[\r\n]/);
    }
    expect(email.body.content.text).toBe('line one\nline two');
  });
});

describe('charsets and transfer encodings', () => {
  const gw = useGateway({}, { resetFake: true });

  const latin1B64 = (s: string): string => Buffer.from(s, 'latin1').toString('base64');
  const utf8B64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');

  /** A single-part message; `body` is written byte for byte (latin1 string). */
  function single(subject: string, contentType: string, cte: string | undefined, body: string): string {
    return [
      `From: ${FROM}`,
      'To: a@example.net',
      `Subject: ${subject}`,
      'MIME-Version: 1.0',
      `Content-Type: ${contentType}`,
      ...(cte === undefined ? [] : [`Content-Transfer-Encoding: ${cte}`]),
      '',
      body,
      '',
    ].join('\r\n');
  }

  it.each([
    { name: 'UTF-8 quoted-printable', raw: single('qp', 'text/plain; charset=utf-8', 'quoted-printable', 'Caf=C3=A9 cr=C3=A8me br=C3=BBl=C3=A9e =E2=82=AC, a soft=\r\n break'), text: 'Café crème brûlée €, a soft break' },
    { name: 'ISO-8859-1 quoted-printable', raw: single('qp', 'text/plain; charset=ISO-8859-1', 'quoted-printable', 'Caf=E9 na=EFve =C0 bient=F4t'), text: 'Café naïve À bientôt' },
    { name: 'UTF-8 base64', raw: single('b64', 'text/plain; charset="UTF-8"', 'base64', utf8B64('Grüße aus Köln — 東京')), text: 'Grüße aus Köln — 東京' },
    { name: 'ISO-8859-1 base64', raw: single('b64', 'text/plain; charset=iso-8859-1', 'base64', latin1B64('Señor Müller')), text: 'Señor Müller' },
    { name: 'ISO-8859-1 8bit', raw: single('8bit', 'text/plain; charset=iso-8859-1', '8bit', Buffer.from('Déjà vu', 'latin1').toString('latin1')), text: 'Déjà vu' },
    { name: 'UTF-8 8bit', raw: single('8bit', 'text/plain; charset=utf-8', '8bit', utf8Bytes('Ça marche ✓')), text: 'Ça marche ✓' },
    { name: 'windows-1252 quoted-printable', raw: single('cp1252', 'text/plain; charset=windows-1252', 'quoted-printable', '=80 5 =93quoted=94'), text: '€ 5 “quoted”' },
    { name: 'KOI8-R base64', raw: single('koi8', 'text/plain; charset=koi8-r', 'base64', Buffer.from([0xf0, 0xd2, 0xc9, 0xd7, 0xc5, 0xd4]).toString('base64')), text: 'Привет' },
  ])('text/plain in $name → UTF-8 text', async ({ raw, text }) => {
    const reply = await gw.sendRaw(FROM, ['a@example.net'], raw);
    expect(lineOf(reply)).toMatch(QUEUED);
    const email = only(gw);
    expect(email.body.content.text).toBe(text);
    expect(email.body.content.html).toBeUndefined();
    expect(email.body.content.encoding).toBe('utf-8');
  });

  it.each([
    { name: 'ISO-8859-1 quoted-printable', ct: 'text/html; charset=iso-8859-1', cte: 'quoted-printable', body: '<p>Caf=E9</p>', html: '<p>Café</p>\n' },
    { name: 'UTF-8 base64', ct: 'text/html; charset=utf-8', cte: 'base64', body: utf8B64('<p>Ünïcödé ✓</p>'), html: '<p>Ünïcödé ✓</p>' },
    { name: 'ISO-8859-1 8bit', ct: 'text/html; charset=iso-8859-1', cte: '8bit', body: '<p>Gr\xfc\xdfe</p>', html: '<p>Grüße</p>\n' },
  ])('text/html in $name → UTF-8 html', async ({ ct, cte, body, html }) => {
    const reply = await gw.sendRaw(FROM, ['a@example.net'], single('html', ct, cte, body));
    expect(lineOf(reply)).toMatch(QUEUED);
    expect(only(gw).body.content.html).toBe(html);
  });

  it('multipart/alternative with an ISO-8859-1 quoted-printable text part and a UTF-8 base64 html part', async () => {
    const raw = [
      `From: ${FROM}`,
      'To: a@example.net',
      'Subject: =?ISO-8859-1?Q?R=E9sum=E9?=',
      'MIME-Version: 1.0',
      'Content-Type: multipart/alternative; boundary="ALT"',
      '',
      '--ALT',
      'Content-Type: text/plain; charset=iso-8859-1',
      'Content-Transfer-Encoding: quoted-printable',
      '',
      'Cr=E8me br=FBl=E9e',
      '--ALT',
      'Content-Type: text/html; charset=utf-8',
      'Content-Transfer-Encoding: base64',
      '',
      utf8B64('<p>Crème brûlée</p>'),
      '--ALT--',
      '',
    ].join('\r\n');
    const reply = await gw.sendRaw(FROM, ['a@example.net'], raw);
    expect(lineOf(reply)).toMatch(QUEUED);
    expect(only(gw).body.content).toEqual({ type: 'transactional', subject: 'Résumé', text: 'Crème brûlée', html: '<p>Crème brûlée</p>', encoding: 'utf-8' });
  });

  it.each([
    { name: 'UTF-8 Q', header: '=?UTF-8?Q?R=C3=A9sum=C3=A9_=E2=82=AC_100?=', subject: 'Résumé € 100' },
    { name: 'UTF-8 B', header: `=?UTF-8?B?${utf8B64('Grüße 東京')}?=`, subject: 'Grüße 東京' },
    { name: 'ISO-8859-1 Q', header: '=?ISO-8859-1?Q?Caf=E9_cr=E8me?=', subject: 'Café crème' },
    { name: 'ISO-8859-1 B', header: `=?iso-8859-1?b?${latin1B64('Señor')}?=`, subject: 'Señor' },
    { name: 'adjacent encoded-words (the space between is dropped)', header: '=?UTF-8?Q?Hello_?= =?UTF-8?Q?W=C3=B6rld?=', subject: 'Hello Wörld' },
    { name: 'mixed plain text and an encoded-word', header: 'Order =?UTF-8?Q?n=C2=B0?= 42', subject: 'Order n° 42' },
    { name: 'a folded header', header: `=?UTF-8?Q?Line_one?=\r\n =?UTF-8?Q?_and_two?=`, subject: 'Line one and two' },
    { name: 'raw UTF-8 (8-bit header)', header: utf8Bytes('Grüße ✓'), subject: 'Grüße ✓' },
  ])('Subject in $name → "$subject"', async ({ header, subject }) => {
    const reply = await gw.sendRaw(FROM, ['a@example.net'], single(header, 'text/plain; charset=utf-8', undefined, 'x'));
    expect(lineOf(reply)).toMatch(QUEUED);
    expect(only(gw).body.content.subject).toBe(subject);
  });
});

describe('attachments', () => {
  const gw = useGateway({}, { resetFake: true });

  const bytes = Buffer.from([0x00, 0x01, 0x02, 0xfe, 0xff, 0x41, 0x42, 0x0d, 0x0a, 0x43]);

  it.each([
    { filename: 'report.csv', contentType: 'text/csv', type: 'csv', api: 'report.csv' },
    { filename: 'letter.doc', contentType: 'application/msword', type: 'doc', api: 'letter.doc' },
    { filename: 'letter.docx', contentType: 'application/vnd.openxmlformats-officedocument.wordprocessingml.document', type: 'docx', api: 'letter.docx' },
    { filename: 'invite.ics', contentType: 'text/calendar', type: 'calendar', api: 'invite.ics' },
    { filename: 'photo.jpg', contentType: 'image/jpeg', type: 'jpeg', api: 'photo.jpeg' },
    { filename: 'photo.jpeg', contentType: 'image/jpeg', type: 'jpeg', api: 'photo.jpeg' },
    { filename: 'invoice.pdf', contentType: 'application/pdf', type: 'pdf', api: 'invoice.pdf' },
    { filename: 'logo.png', contentType: 'image/png', type: 'png', api: 'logo.png' },
    { filename: 'sheet.xls', contentType: 'application/vnd.ms-excel', type: 'xls', api: 'sheet.xls' },
    { filename: 'sheet.xlsx', contentType: 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet', type: 'xlsx', api: 'sheet.xlsx' },
    // by extension when the MIME type says nothing
    { filename: 'data.csv', contentType: 'application/octet-stream', type: 'csv', api: 'data.csv' },
    { filename: 'PHOTO.JPG', contentType: 'application/octet-stream', type: 'jpeg', api: 'PHOTO.jpeg' },
    // by MIME type when the name has no usable extension, and names reduced to the allowed characters
    { filename: 'meeting', contentType: 'text/calendar', type: 'calendar', api: 'meeting.ics' },
    { filename: 'Rapport final (v2) é.pdf', contentType: 'application/pdf', type: 'pdf', api: 'Rapport_final_v2_e.pdf' },
  ])('$filename ($contentType) → type $type, filename $api', async ({ filename, contentType, type, api }) => {
    const content = SAMPLE_FILES[type as SampleType];
    const reply = await gw.send({ from: FROM, to: 'a@example.net', subject: 'att', text: 'see attached', attachments: [{ filename, contentType, content }] });
    const email = only(gw);
    expect(reply.line).toBe(`250 2.0.0 Ok: queued as ${email.id}`);
    expect(email.body.attachment).toEqual([{ filename: api, type, content: content.toString('base64') }]);
    expect(email.body.content.text).toBe('see attached');
  });

  it('several attachments in one message, each typed, the same for every recipient', async () => {
    const pdf = SAMPLE_FILES.pdf;
    const big = Buffer.concat([SAMPLE_FILES.png, Buffer.alloc(100_003, 7)]);
    const reply = await gw.send({
      from: FROM,
      to: ['a@example.net', 'b@example.net'],
      subject: 'many',
      html: '<p>x</p>',
      attachments: [
        { filename: 'a.pdf', content: pdf },
        { filename: 'b.png', content: big },
        { filename: 'c.ics', content: 'BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n', contentType: 'text/calendar; method=REQUEST' },
      ],
    });
    const sent = gw.fake.sent();
    expect(reply.line).toBe(`250 2.0.0 Ok: queued as ${sentTo(gw.fake, 'a@example.net')[0]?.id} (+1 more)`);
    for (const email of sent) {
      expect(email.body.attachment).toEqual([
        { filename: 'a.pdf', type: 'pdf', content: pdf.toString('base64') },
        { filename: 'b.png', type: 'png', content: big.toString('base64') },
        { filename: 'c.ics', type: 'calendar', content: Buffer.from('BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n').toString('base64') },
      ]);
    }
  });

  it('a nodemailer calendar invitation (icalEvent) goes out once, as one calendar attachment with its name', async () => {
    const ics = 'BEGIN:VCALENDAR\r\nVERSION:2.0\r\nMETHOD:REQUEST\r\nEND:VCALENDAR\r\n';
    const reply = await gw.send({ from: FROM, to: 'a@example.net', subject: 'Meeting', text: 'Join us', icalEvent: { method: 'REQUEST', filename: 'meeting.ics', content: ics } });
    const email = only(gw);
    expect(reply.line).toBe(`250 2.0.0 Ok: queued as ${email.id}`);
    expect(email.body.content.text).toBe('Join us');
    // nodemailer puts the invitation twice: as the text/calendar alternative (unnamed) and as the
    // meeting.ics attachment; the API has no inline calendar part, so it goes once, as an attachment.
    const content = Buffer.from(ics).toString('base64');
    expect(email.body.attachment).toEqual([{ filename: 'meeting.ics', type: 'calendar', content }]);
  });

  const ALLOWED = 'allowed types: csv, doc, docx, ics, jpeg, pdf, png, xls, xlsx';

  it('a refused attachment with a very long name: the 554 still fits one reply line (512 octets, RFC 5321)', async () => {
    const filename = `${'a'.repeat(600)}.exe`;
    const reply = await gw.send({ from: FROM, to: 'a@example.net', subject: 'long', text: 'x', attachments: [{ filename, content: bytes }] });
    expect(reply.line).toMatch(/^554 5\.6\.1 Attachment "a{20,}/);
    expect(reply.line).toContain(ALLOWED);
    expect(Buffer.byteLength(`${reply.line}\r\n`)).toBeLessThanOrEqual(512);
    expect(gw.fake.callsTo('send')).toHaveLength(0);
  });

  it.each([
    { filename: 'setup.exe', contentType: 'application/x-msdownload' },
    { filename: 'archive.zip', contentType: 'application/zip' },
    { filename: 'anim.gif', contentType: 'image/gif' },
    { filename: 'page.html', contentType: 'text/html' },
    { filename: 'notes.txt', contentType: 'text/plain' },
    { filename: 'script.js', contentType: 'application/octet-stream' },
    { filename: 'photo.jpg.exe', contentType: 'application/octet-stream' },
  ])('$filename ($contentType) → 554 5.6.1 naming the file and the allowed types, nothing sent', async ({ filename, contentType }) => {
    const reply = await gw.send({
      from: FROM,
      to: ['a@example.net', 'b@example.net'],
      subject: 'bad',
      text: 'x',
      attachments: [
        { filename: 'fine.pdf', content: SAMPLE_FILES.pdf },
        { filename, contentType, content: bytes },
      ],
    });
    expect(reply.line).toBe(`554 5.6.1 Attachment "${filename}" is not allowed; ${ALLOWED}`);
    expect(reply.command).toBe('DATA');
    expect(gw.fake.callsTo('send')).toHaveLength(0);
  });
});

describe('issue 8: hardening of the mapping, through real SMTP', () => {
  const gw = useGateway({}, { resetFake: true });

  it('control characters in a body are removed (TAB, CR/LF and FF kept): the request stays under twice the message', async () => {
    const body = `cron: job done\x07\r\n\x1b[32mOK\x1b[0m\tall\x01\x02\x1f fine\fpage 2\r\n${'\x01'.repeat(20_000)}`;
    const raw = textMessage({ subject: 'cron', body });
    const reply = await gw.sendRaw(FROM, ['a@example.net'], raw);
    const email = only(gw);
    expect(lineOf(reply)).toBe(`250 2.0.0 Ok: queued as ${email.id}`);
    expect(email.body.content.text).toBe('cron: job done\nOK\tall fine\fpage 2\n');
    const call = gw.fake.callsTo('send')[0];
    expect(Buffer.byteLength(JSON.stringify(call?.body))).toBeLessThan(2 * Buffer.byteLength(raw, 'latin1'));
  });

  it('a text message over 256 KiB (escaped as it arrives) reaches every recipient with its text cleaned, in UTF-8', async () => {
    const line = utf8Bytes('Café ✓ \x1b[31mred\x1b[0m\x01 "quoted" \\ tab\tend');
    const raw = textMessage({ subject: 'big', body: `${line}\r\n`.repeat(8000) + 'last line' });
    expect(raw.length).toBeGreaterThan(256 * 1024);
    const reply = await gw.sendRaw(FROM, ['a@example.net', 'b@example.net'], raw);
    expect(lineOf(reply)).toMatch(/^250 2\.0\.0 Ok: queued as [0-9a-f-]{36} \(\+1 more\)$/);
    const want = `${'Café ✓ red "quoted" \\ tab\tend\n'.repeat(8000)}last line`; // a text's final line break dropped
    for (const to of ['a@example.net', 'b@example.net']) {
      const sent = sentTo(gw.fake, to);
      expect(sent).toHaveLength(1);
      expect(sent[0]?.body.content.text).toBe(want);
      expect(sent[0]?.body.content.html).toBeUndefined();
    }
  });

  it('a message whose content would take more than twice its size once converted → 552 5.3.4, nothing sent', async () => {
    // windows-1252 0x80 is €: one byte becomes three UTF-8 bytes
    const raw = [`From: ${FROM}`, 'Subject: euros', 'MIME-Version: 1.0', 'Content-Type: text/plain; charset=windows-1252', 'Content-Transfer-Encoding: 8bit', '', ...Array.from({ length: 2000 }, () => '\x80'.repeat(76)), ''].join('\r\n');
    const reply = await gw.sendRaw(FROM, ['a@example.net'], raw);
    expect(lineOf(reply)).toMatch(/^552 5\.3\.4 Message too large once converted for Cakemail: \d+ bytes, more than twice its size; send it in UTF-8$/);
    expect(gw.fake.callsTo('send')).toHaveLength(0);
  });

  it.each([
    { headers: ['X-Account-Id:', `X-Account-Id: ${DEFAULT_ACCOUNT_ID}`], name: 'x-account-id' },
    { headers: ['X-List-Id: 5', 'X-List-Id: 6'], name: 'x-list-id' },
    { headers: ['X-Email-Api-Type: marketing', 'X-Email-Api-Type: transactional'], name: 'x-email-api-type' },
    { headers: ['X-Track-Opens: false', 'X-Track-Opens: true'], name: 'x-track-opens' },
  ])('$headers → 554 5.6.0 naming the header, nothing sent', async ({ headers, name }) => {
    const reply = await gw.sendRaw(FROM, ['a@example.net'], textMessage({ subject: 'ambiguous', headers }));
    expect(lineOf(reply)).toBe(`554 5.6.0 The ${name} header appears 2 times; it must appear once`);
    expect(gw.fake.callsTo('send')).toHaveLength(0);
  });

  it('header names that are not RFC 5322 field names are not forwarded; C1 and bidi controls are stripped', async () => {
    const ew = (s: string): string => `=?UTF-8?B?${Buffer.from(s, 'utf8').toString('base64')}?=`;
    const raw = textMessage({
      from: `${ew('Bank\u202e Support\u0081')} <${FROM}>`,
      subject: ew('Invoice\u202e fdp.exe'),
      headers: ['X-Has Space: 1', 'X-Caf\xe9: 2', `X-Note: ${utf8Bytes('left\u2067right\u0090')}`, 'X-Good: 3'],
    });
    const reply = await gw.sendRaw(FROM, ['a@example.net'], raw);
    const email = only(gw);
    expect(lineOf(reply)).toBe(`250 2.0.0 Ok: queued as ${email.id}`);
    expect(email.body.content.subject).toBe('Invoice fdp.exe');
    expect(email.body.sender.name).toBe('Bank Support');
    expect(email.body.additional_headers).toEqual([
      { name: 'X-Note', value: 'leftright' },
      { name: 'X-Good', value: '3' },
    ]);
  });

  it('10,000 forwarded headers → 552 5.3.4, nothing sent', async () => {
    const headers = Array.from({ length: 10_000 }, (_, i) => `X-Spam-${i}: 1`);
    const reply = await gw.sendRaw(FROM, ['a@example.net'], textMessage({ subject: 'many headers', headers }));
    expect(lineOf(reply)).toBe('552 5.3.4 Too many headers to forward: more than 256');
    expect(gw.fake.callsTo('send')).toHaveLength(0);
  });

  it('one forwarded header over 102400 bytes → 552 5.3.4 naming it, nothing sent', async () => {
    const refs = Array.from({ length: 1700 }, (_, i) => `<${String(i).padStart(60, '0')}@x>`).join('\r\n ');
    const reply = await gw.sendRaw(FROM, ['a@example.net'], textMessage({ subject: 'long thread', headers: [`References: ${refs}`] }));
    expect(lineOf(reply)).toMatch(/^552 5\.3\.4 Header References is too long to forward: \d+ bytes, at most 102400$/);
    expect(gw.fake.callsTo('send')).toHaveLength(0);
  });

  it.each([
    { filename: 'invoice.pdf', content: SAMPLE_EXECUTABLE, line: '554 5.6.1 Attachment "invoice.pdf" is not a valid pdf file: its content looks like exe' },
    { filename: 'photo.jpg', content: SAMPLE_FILES.png, line: '554 5.6.1 Attachment "photo.jpg" is not a valid jpeg file: its content looks like png' },
    { filename: 'report.xlsx', content: SAMPLE_FILES.pdf, line: '554 5.6.1 Attachment "report.xlsx" is not a valid xlsx file: its content looks like pdf' },
    { filename: 'data.csv', content: SAMPLE_EXECUTABLE, line: '554 5.6.1 Attachment "data.csv" is not a valid csv file: its content looks like exe' },
  ])('$filename with other content → $line, nothing sent', async ({ filename, content, line }) => {
    const reply = await gw.send({ from: FROM, to: 'a@example.net', subject: 'att', text: 'x', attachments: [{ filename: 'fine.pdf', content: SAMPLE_FILES.pdf }, { filename, content }] });
    expect(reply.line).toBe(line);
    expect(reply.command).toBe('DATA');
    expect(gw.fake.callsTo('send')).toHaveLength(0);
  });

  it('990 calendar parts of equal size: accepted, each sent once (the work is counted in mapping-hardening.test.ts)', async () => {
    const calendar = (i: number): string => `BEGIN:VCALENDAR\r\nUID:${String(i).padStart(6, '0')}\r\n${'X'.repeat(1000)}\r\nEND:VCALENDAR\r\n`;
    const attachments = Array.from({ length: 990 }, (_, i) => ({ filename: `c${i}.ics`, content: calendar(i), contentType: 'text/calendar' }));
    const reply = await gw.send({ from: FROM, to: 'a@example.net', subject: 'calendars', text: 'x', attachments });
    const email = only(gw);
    expect(reply.line).toBe(`250 2.0.0 Ok: queued as ${email.id}`);
    expect(email.body.attachment).toHaveLength(990);
  }, 60_000);
});
