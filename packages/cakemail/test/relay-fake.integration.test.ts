// The relay against testkit's fake Cakemail API (spec validation, fault switches, call record).
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Session } from '@cakemail-smtp/smtp-core';
import {
  createFakeCakemail,
  DEFAULT_ACCOUNT_ID,
  DEFAULT_SENDER,
  DEFAULT_USER,
  MFA_USER,
  MULTI_ACCOUNT_USER,
  OTHER_ACCOUNT_ID,
  OTHER_ACCOUNT_SENDER,
  type FakeCakemail,
} from '@cakemail-smtp/testkit';
import { createRelayBackend, type RelayBackend } from '../src/relay/backend.js';
import type { Logger } from '../src/types.js';
import { refused } from './helpers/refused.js';
import { relayConfig } from './helpers/relay-config.js';

const quiet: Logger = { debug() {}, info() {}, warn() {}, error() {}, child: () => quiet };

let fake: FakeCakemail;
let backend: RelayBackend;

beforeEach(async () => {
  fake = createFakeCakemail();
  await fake.listen(0);
  backend = createRelayBackend(relayConfig(fake.url), { logger: quiet });
});
afterEach(async () => {
  await backend.close();
  await fake.close();
});

async function session(user: { email: string; password: string } = DEFAULT_USER): Promise<Session> {
  const s = backend.newSession({ id: 'fake', remoteAddress: '127.0.0.1', remotePort: 1, localPort: 2, listener: 'starttls' });
  const decision = await s.auth({ mechanism: 'PLAIN', username: user.email, password: user.password });
  if (!decision.ok) throw decision.reply;
  return s;
}


const png = Buffer.from('89504e470d0a1a0a0000000d49484452', 'hex');

function mime(from: string, extra: string[] = []): string {
  return [
    `From: "Dev =?UTF-8?Q?S=C3=A9nder?=" <${from}>`,
    'To: a@example.net',
    'Cc: b@example.net',
    'Bcc: hidden@example.net',
    'Subject: =?ISO-8859-1?Q?R=E9sum=E9?=',
    'Message-ID: <fake-1@example.com>',
    'x-tags: welcome, onboarding',
    ...extra,
    'MIME-Version: 1.0',
    'Content-Type: multipart/mixed; boundary="M"',
    '',
    '--M',
    'Content-Type: multipart/alternative; boundary="A"',
    '',
    '--A',
    'Content-Type: text/plain; charset=iso-8859-1',
    'Content-Transfer-Encoding: quoted-printable',
    '',
    'Caf=E9',
    '--A',
    'Content-Type: text/html; charset=utf-8',
    'Content-Transfer-Encoding: base64',
    '',
    Buffer.from('<p>Café</p>').toString('base64'),
    '--A--',
    '--M',
    'Content-Type: image/png; name="logo final.png"',
    'Content-Disposition: attachment; filename="logo final.png"',
    'Content-Transfer-Encoding: base64',
    '',
    png.toString('base64'),
    '--M--',
    '',
  ].join('\r\n');
}

async function send(s: Session, raw: string, to: string[], from: string): Promise<string> {
  if (from) await s.mail(from, { smtpUtf8: false });
  for (const r of to) await s.rcpt(r);
  return s.data(Readable.from([Buffer.from(raw, 'latin1')]), { from, to });
}

describe('relay against the fake Cakemail API', () => {
  it('relays a full MIME message that passes the spec validation, one send per recipient', async () => {
    const s = await session();
    const text = await send(s, mime(DEFAULT_SENDER.email), ['a@example.net', 'b@example.net', 'hidden@example.net'], DEFAULT_SENDER.email);
    const sent = fake.sent();
    expect(sent).toHaveLength(3);
    expect(text).toBe(`Ok: queued as ${sent[0]?.id} (+2 more)`);
    expect(sent.map((e) => e.body.email).sort()).toEqual(['a@example.net', 'b@example.net', 'hidden@example.net']);
    const body = sent[0]?.body;
    expect(body?.sender).toEqual({ id: DEFAULT_SENDER.id, name: 'Dev Sénder' });
    expect(body?.content).toEqual({ type: 'transactional', subject: 'Résumé', text: 'Café', html: '<p>Café</p>', encoding: 'utf-8' });
    expect(body?.tags).toEqual(['welcome', 'onboarding']);
    expect(body?.attachment).toEqual([{ filename: 'logo_final.png', type: 'png', content: png.toString('base64') }]);
    expect(body?.additional_headers).toEqual([
      { name: 'Cc', value: 'b@example.net' },
      { name: 'Message-ID', value: '<fake-1@example.com>' },
    ]);
    // The Bcc header is never forwarded (the Bcc recipient still gets its copy via RCPT TO):
    expect(sent.every((e) => !(e.body.additional_headers ?? []).some((h) => h.name.toLowerCase() === 'bcc'))).toBe(true);
    expect(fake.lists(DEFAULT_ACCOUNT_ID).map((l) => l.name)).toEqual(['SMTP Gateway']);
    expect(sent.every((e) => e.body.list_id === fake.lists(DEFAULT_ACCOUNT_ID)[0]?.id)).toBe(true);
  });

  it('retries only the recipient that failed temporarily', async () => {
    const s = await session();
    fake.faults.set('send', { status: 503, match: { email: 'b@example.net' } });
    const err = await refused(send(s, mime(DEFAULT_SENDER.email), ['a@example.net', 'b@example.net'], DEFAULT_SENDER.email));
    expect(err.line).toBe('451 4.3.0 Cakemail is temporarily unavailable, try again later');
    expect(fake.sent().map((e) => e.body.email)).toEqual(['a@example.net']);
    const firstId = fake.sent()[0]?.id;

    fake.faults.clear();
    const text = await send(s, mime(DEFAULT_SENDER.email), ['a@example.net', 'b@example.net'], DEFAULT_SENDER.email);
    expect(fake.sent().map((e) => e.body.email)).toEqual(['a@example.net', 'b@example.net']);
    expect(text).toBe(`Ok: queued as ${firstId} (+1 more)`);
  });

  it('refreshes expired tokens and retries the send', async () => {
    const s = await session();
    await send(s, mime(DEFAULT_SENDER.email), ['a@example.net'], DEFAULT_SENDER.email);
    fake.expireTokens();
    await send(s, mime(DEFAULT_SENDER.email, ['X-Second: 1']), ['a@example.net'], DEFAULT_SENDER.email);
    expect(fake.sent()).toHaveLength(2);
    expect(fake.callsTo('token').map((c) => (c.body as Record<string, string>)['grant_type'])).toEqual(['password', 'refresh_token']);
  });

  it('maps a 429 with Retry-After past the deadline to 451 4.7.1 without waiting', async () => {
    const s = await session();
    fake.faults.set('send', { status: 429, retryAfter: 120 });
    const t0 = Date.now();
    const err = await refused(send(s, mime(DEFAULT_SENDER.email), ['a@example.net'], DEFAULT_SENDER.email));
    expect(err.line).toBe('451 4.7.1 Cakemail rate limit reached, try again later');
    expect(Date.now() - t0).toBeLessThan(1000);
  });

  it('MFA users and wrong passwords are refused at AUTH; a repeated AUTH does not call /token', async () => {
    expect((await refused(session(MFA_USER))).line).toMatch(/^535 5\.7\.8 This Cakemail account uses multi-factor/);
    expect((await refused(session({ email: DEFAULT_USER.email, password: 'nope' }))).line).toBe(
      '535 5.7.8 Authentication credentials invalid',
    );
    await session();
    await session();
    expect(fake.counts().token).toBe(3);
  });

  it('multi-account: x-account-id picks the account and its sender', async () => {
    const s = await session(MULTI_ACCOUNT_USER);
    await send(s, mime(OTHER_ACCOUNT_SENDER.email, [`x-account-id: ${OTHER_ACCOUNT_ID}`]), ['a@example.net'], OTHER_ACCOUNT_SENDER.email);
    expect(fake.sent()[0]).toMatchObject({ accountId: OTHER_ACCOUNT_ID, body: { sender: { id: OTHER_ACCOUNT_SENDER.id } } });
    const err = await refused(s.mail('unconfirmed@example.com', { smtpUtf8: false }));
    expect(err.code).toBe(553);
  });
});
