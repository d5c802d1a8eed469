import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Session } from '@cakemail-smtp/smtp-core';
import {
  createFakeCakemail,
  DEFAULT_ACCOUNT_ID,
  DEFAULT_SENDER,
  MFA_USER,
  MULTI_ACCOUNT_USER,
  OTHER_ACCOUNT_ID,
  OTHER_ACCOUNT_SENDER,
  UNCONFIRMED_SENDER,
  type FakeCakemail,
} from '@cakemail-smtp/testkit';
import { CakemailClient } from '../src/client.js';
import { createRelayBackend, type RelayBackend, type RelayConfig } from '../src/relay/backend.js';
import type { Logger } from '../src/types.js';
import { authRefused, refused } from './helpers/refused.js';
import { relayConfig } from './helpers/relay-config.js';
import { CountingClient } from './helpers/counting-client.js';

/** The login of these tests: two accounts, DEFAULT_SENDER confirmed in the first, OTHER_ACCOUNT_SENDER in the second. */
const USER = MULTI_ACCOUNT_USER;
const ALICE = DEFAULT_SENDER.email;
const BOB = OTHER_ACCOUNT_SENDER.email;

interface LogLine {
  level: string;
  obj: Record<string, unknown>;
  msg: string | undefined;
}

function recordingLogger(lines: LogLine[], bindings: Record<string, unknown> = {}): Logger {
  const at =
    (level: string) =>
    (obj: object, msg?: string): void => {
      lines.push({ level, obj: { ...bindings, ...obj }, msg });
    };
  return {
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
    child: (b) => recordingLogger(lines, { ...bindings, ...b }),
  };
}

let api: FakeCakemail;
let backend: RelayBackend;
let logs: LogLine[];

async function start(config: Partial<RelayConfig> = {}, client?: CakemailClient): Promise<void> {
  backend = createRelayBackend(relayConfig(api.url, { concurrency: 8, ...config }), {
    logger: recordingLogger(logs),
    ...(client === undefined ? {} : { client }),
  });
}

async function startApi(): Promise<FakeCakemail> {
  const fake = createFakeCakemail();
  await fake.listen(0);
  return fake;
}

/** The id Cakemail gave the copy sent to `email`. */
function idOf(email: string): string | undefined {
  return api.sent().find((x) => x.body.email === email)?.id;
}

beforeEach(async () => {
  api = await startApi();
  logs = [];
  await start();
});
afterEach(async () => {
  await backend.close();
  await api.close();
});


let sessionNo = 0;
async function session(password = USER.password): Promise<Session> {
  const s = backend.newSession({ id: `s${++sessionNo}`, remoteAddress: '127.0.0.1', remotePort: 1, localPort: 2, listener: 'implicit' });
  await s.auth({ mechanism: 'PLAIN', username: USER.email, password });
  return s;
}

function message(extra: string[] = [], bodyText = 'Hello there'): string {
  return [
    `From: "Alice A." <${ALICE}>`,
    'To: one@example.net',
    'Subject: Greetings',
    'Message-ID: <m1@example.com>',
    ...extra,
    '',
    bodyText,
    '',
  ].join('\r\n');
}

async function send(s: Session, raw: string, to: string[], from = ALICE): Promise<string> {
  if (from !== '') await s.mail(from, { smtpUtf8: false });
  for (const r of to) await s.rcpt(r);
  return s.data(Readable.from([Buffer.from(raw)]), { from, to });
}


describe('relay', () => {
  it('sends one POST /v2/emails per recipient and answers the first id and a count', async () => {
    const s = await session();
    const text = await send(s, message(), ['one@example.net', 'two@example.net', 'three@example.net']);
    expect(text).toBe(`Ok: queued as ${idOf('one@example.net')} (+2 more)`);
    expect(api.sent().map((x) => x.body.email).sort()).toEqual(['one@example.net', 'three@example.net', 'two@example.net']);
    const b = api.sent()[0]?.body;
    expect(b).toMatchObject({
      sender: { id: DEFAULT_SENDER.id, name: 'Alice A.' },
      content: { type: 'transactional', subject: 'Greetings', text: 'Hello there', encoding: 'utf-8' },
      additional_headers: [{ name: 'Message-ID', value: '<m1@example.com>' }],
    });
    expect(api.sent().every((x) => x.accountId === DEFAULT_ACCOUNT_ID)).toBe(true);
    // the gateway list was created once, with the sender as its default sender
    expect(api.lists(DEFAULT_ACCOUNT_ID).map((l) => ({ id: l.id, name: l.name, defaultSenderId: l.defaultSenderId }))).toEqual([
      { id: b?.list_id, name: 'SMTP Gateway', defaultSenderId: DEFAULT_SENDER.id },
    ]);
  });

  it('answers a single recipient without a count', async () => {
    const s = await session();
    const text = await send(s, message(), ['one@example.net']);
    expect(text).toBe(`Ok: queued as ${idOf('one@example.net')}`);
  });

  it('finds or creates the gateway list once per account, and looks senders up once', async () => {
    const s = await session();
    await send(s, message(), ['one@example.net']);
    await send(s, message([], 'second'), ['one@example.net']);
    const s2 = await session();
    await send(s2, message([], 'third'), ['one@example.net']);
    expect(api.counts().createList).toBe(1);
    expect(api.counts().lists).toBe(1);
    expect(api.counts().senders).toBe(1);
    expect(api.counts().token).toBe(1); // the second AUTH came from the cache
  });

  it('uses x-list-id, then the configured list', async () => {
    api.addList(DEFAULT_ACCOUNT_ID, { id: 4242, name: 'Chosen' });
    api.addList(DEFAULT_ACCOUNT_ID, { id: 77, name: 'Configured' });
    let s = await session();
    await send(s, message(['x-list-id: 4242']), ['one@example.net']);
    expect(api.sent()[0]?.body.list_id).toBe(4242);
    await backend.close();
    await start({ listId: 77 });
    s = await session();
    await send(s, message([], 'other'), ['one@example.net']);
    expect(api.sent()[1]?.body.list_id).toBe(77);
    expect(api.counts().lists + api.counts().createList).toBe(0);
  });

  it('checks the sender against the account x-account-id names', async () => {
    const s = await session();
    // ALICE is a confirmed sender of the default account, not of the other one
    const err = await refused(send(s, message([`x-account-id: ${OTHER_ACCOUNT_ID}`]), ['one@example.net'], ''));
    expect(err.code).toBe(553);
    expect(api.sent()).toHaveLength(0);
  });

  it('relays on another account with its own confirmed sender', async () => {
    const s = await session();
    const raw = message([`x-account-id: ${OTHER_ACCOUNT_ID}`, 'x-email-api-type: marketing']).replace(ALICE, BOB);
    await send(s, raw, ['one@example.net'], '');
    expect(api.sent()[0]).toMatchObject({
      accountId: OTHER_ACCOUNT_ID,
      body: { sender: { id: OTHER_ACCOUNT_SENDER.id }, content: { type: 'marketing' } },
    });
  });

  it('refuses an x-account-id the login cannot use', async () => {
    const s = await session();
    const err = await refused(send(s, message(['x-account-id: 303']), ['one@example.net']));
    expect(USER.accounts).not.toContain(303);
    expect(err.line).toBe('550 5.7.1 The x-account-id header names an account this login cannot use');
  });

  it('checks MAIL FROM against confirmed senders, case-insensitively', async () => {
    const s = await session();
    await s.mail(ALICE.toUpperCase(), { smtpUtf8: false });
    expect((await refused(s.mail(UNCONFIRMED_SENDER.email, { smtpUtf8: false }))).line).toBe(
      '553 5.7.1 Sender address is not a confirmed sender of this Cakemail account',
    );
    expect((await refused(s.mail('nobody@example.com', { smtpUtf8: false }))).code).toBe(553);
  });

  it('MAIL FROM may be a sender of another of the login accounts; without x-account-id that account is used', async () => {
    const s = await session();
    const raw = message([`x-account-id: ${OTHER_ACCOUNT_ID}`]).replace(ALICE, BOB);
    await send(s, raw, ['one@example.net'], BOB);
    expect(api.sent()[0]).toMatchObject({ accountId: OTHER_ACCOUNT_ID, body: { sender: { id: OTHER_ACCOUNT_SENDER.id } } });
    s.reset();
    // Without x-account-id the message goes to the account where MAIL FROM is a confirmed sender:
    await send(s, raw.replace(`x-account-id: ${OTHER_ACCOUNT_ID}\r\n`, ''), ['two@example.net'], BOB);
    expect(api.sent()[1]).toMatchObject({ accountId: OTHER_ACCOUNT_ID, body: { sender: { id: OTHER_ACCOUNT_SENDER.id } } });
    // x-account-id naming the default account, where BOB is no sender, is refused at DATA:
    s.reset();
    const err = await refused(
      send(s, raw.replace(`x-account-id: ${OTHER_ACCOUNT_ID}`, `x-account-id: ${DEFAULT_ACCOUNT_ID}`), ['three@example.net'], BOB),
    );
    expect(err.code).toBe(553);
  });

  it('with a null MAIL FROM, checks the From header at DATA', async () => {
    const s = await session();
    const err = await refused(send(s, message().replace(ALICE, 'mallory@example.com'), ['one@example.net'], ''));
    expect(err.code).toBe(553);
    expect(await send(s, message(), ['one@example.net'], '')).toMatch(/^Ok: queued as /);
  });

  it('x-sender-id names the sender; an unknown one is refused', async () => {
    const s = await session();
    const err = await refused(send(s, message([`x-sender-id: ${UNCONFIRMED_SENDER.id}`]), ['one@example.net']));
    expect(err.line).toBe('553 5.7.1 The x-sender-id header names no confirmed sender of this Cakemail account');
    await send(s, message([`x-sender-id: ${DEFAULT_SENDER.id}`]), ['one@example.net']);
    expect(api.sent()[0]?.body.sender).toEqual({ id: DEFAULT_SENDER.id, name: 'Alice A.' });
  });

  it('the retry of a partly failed message only sends the recipients not yet accepted', async () => {
    const s = await session();
    api.faults.set('send', { status: 503, body: { detail: [{ msg: 'maintenance' }] }, match: { email: 'two@example.net' } });
    const err = await refused(send(s, message(), ['one@example.net', 'two@example.net']));
    expect(err.line).toBe('451 4.3.0 Cakemail is temporarily unavailable, try again later');
    expect(api.sent().map((x) => x.body.email)).toEqual(['one@example.net']);
    const firstId = logs.find((l) => l.obj['event'] === 'relayed')?.obj['ids'] as string[];
    expect(firstId).toHaveLength(1);

    api.faults.clear();
    s.reset();
    const text = await send(s, message(), ['one@example.net', 'two@example.net']);
    expect(api.sent().map((x) => x.body.email)).toEqual(['one@example.net', 'two@example.net']);
    expect(text).toBe(`Ok: queued as ${firstId[0]} (+1 more)`);

    // And once more (the 250 was lost): nothing is sent again.
    await send(s, message(), ['one@example.net', 'two@example.net']);
    expect(api.sent()).toHaveLength(2);
  });

  it('a 429 becomes 451 4.7.1', async () => {
    const s = await session();
    api.faults.set('send', { status: 429, body: {}, retryAfter: 60, match: { email: 'one@example.net' } });
    const err = await refused(send(s, message(), ['one@example.net']));
    expect(err.line).toBe('451 4.7.1 Cakemail rate limit reached, try again later');
  });

  it('all refused permanently → 550 with the API msg', async () => {
    const s = await session();
    const body = { detail: [{ loc: ['body', 'email'], msg: 'value is not a valid email address', type: 'value_error' }] };
    api.faults.add('send', { status: 422, body, times: 1, match: { email: 'one@example.net' } });
    api.faults.add('send', { status: 422, body, times: 1, match: { email: 'two@example.net' } });
    const err = await refused(send(s, message(), ['one@example.net', 'two@example.net']));
    expect(err.line).toBe('550 5.6.0 Cakemail rejected the message: value is not a valid email address');
  });

  it('a 403 → 550 5.7.1', async () => {
    const s = await session();
    const body = { detail: [{ code: 403, msg: 'Sender suspended', type: 'forbidden' }] };
    api.faults.set('send', { status: 403, body, times: 1, match: { email: 'one@example.net' } });
    const err = await refused(send(s, message(), ['one@example.net']));
    expect(err.line).toBe('550 5.7.1 Cakemail refused this sender or account: Sender suspended');
  });

  it('a rejected status → 550 5.6.0', async () => {
    const s = await session();
    api.faults.set('send', { sendStatus: 'rejected', times: 1, match: { email: 'one@example.net' } });
    const err = await refused(send(s, message(), ['one@example.net']));
    expect(err.line).toBe('550 5.6.0 Cakemail rejected the message (status rejected)');
  });

  it('some accepted and the rest refused → 250 naming the refused recipients', async () => {
    const s = await session();
    api.faults.set('send', { status: 400, body: { detail: [{ msg: 'Recipient is unsubscribed' }] }, times: 1, match: { email: 'bad@example.net' } });
    const text = await send(s, message(), ['one@example.net', 'bad@example.net']);
    expect(text).toBe(`Ok: queued as ${idOf('one@example.net')}; not sent to bad@example.net: Cakemail rejected the message: Recipient is unsubscribed`);
  });

  it('a 401 on send refreshes the token once and retries', async () => {
    const s = await session();
    await send(s, message(), ['one@example.net']);
    api.expireTokens();
    await send(s, message([], 'again'), ['two@example.net']);
    expect(api.sent().map((x) => x.body.email)).toEqual(['one@example.net', 'two@example.net']);
    // login + one refresh, then the send again: a 401 and the send that got through
    expect(api.callsTo('token').map((c) => (c.body as { grant_type?: string }).grant_type)).toEqual(['password', 'refresh_token']);
    expect(api.callsTo('send').map((c) => c.status)).toEqual([201, 401, 201]);
  });

  it('a second 401 after the refresh is temporary', async () => {
    const s = await session();
    await send(s, message(), ['one@example.net']);
    // 401 on the send, and again after the refresh
    api.faults.set('send', { status: 401, times: 2 });
    const err = await refused(send(s, message([], 'again'), ['two@example.net']));
    expect(api.counts().token).toBe(2);
    expect(err.line).toBe('451 4.3.0 Cakemail is temporarily unavailable, try again later');
  });

  it('bounds the fan-out concurrency', async () => {
    await backend.close();
    const client = new CountingClient({ apiUrl: api.url, timeoutMs: 2000, connections: 16 });
    await start({ concurrency: 3 }, client);
    api.faults.set('send', { delayMs: 5 });
    try {
      const s = await session();
      const to = Array.from({ length: 20 }, (_, i) => `r${i}@example.net`);
      const text = await send(s, message(), to);
      expect(text).toMatch(/\(\+19 more\)$/);
      expect(api.sent()).toHaveLength(20);
      expect(client.maxInFlight).toBeLessThanOrEqual(3);
      expect(client.maxInFlight).toBeGreaterThan(1);
    } finally {
      await client.close();
    }
  });

  it('refuses wrong credentials and MFA accounts at AUTH', async () => {
    const s = backend.newSession({ id: 'x', remoteAddress: '127.0.0.1', remotePort: 1, localPort: 2, listener: 'implicit' });
    const err = await authRefused(s.auth({ mechanism: 'LOGIN', username: USER.email, password: 'wrong' }), 'invalid');
    expect(err.line).toBe('535 5.7.8 Authentication credentials invalid');
    const mfa = await authRefused(s.auth({ mechanism: 'PLAIN', username: MFA_USER.email, password: MFA_USER.password }), 'denied');
    expect(mfa.line).toMatch(/^535 5\.7\.8 This Cakemail account uses multi-factor authentication/);
  });

  it('an unreachable API at AUTH → 454', async () => {
    await api.close();
    const s = backend.newSession({ id: 'x', remoteAddress: '127.0.0.1', remotePort: 1, localPort: 2, listener: 'implicit' });
    const err = await authRefused(s.auth({ mechanism: 'PLAIN', username: USER.email, password: USER.password }), 'unavailable');
    expect(err.line).toBe('454 4.7.0 Temporary authentication failure, try again later');
    api = await startApi(); // for afterEach
  });

  it('logs one info line per message with the ids, and never a secret; addresses only at debug', async () => {
    const s = await session();
    await send(s, message(), ['one@example.net', 'two@example.net']);
    const relayed = logs.filter((l) => l.obj['event'] === 'relayed');
    expect(relayed).toHaveLength(1);
    expect(relayed[0]).toMatchObject({ level: 'info', obj: { sessionId: expect.any(String), accepted: 2, recipients: 2 } });
    expect(relayed[0]?.obj['ids']).toHaveLength(2);
    const all = JSON.stringify(logs);
    expect(all).not.toContain(USER.password);
    expect(all).not.toMatch(/fake-[ar]t-/); // the fake's access and refresh tokens
    const nonDebug = JSON.stringify(logs.filter((l) => l.level !== 'debug'));
    expect(nonDebug).not.toContain('@example.net');
    expect(nonDebug).not.toContain(ALICE);
    expect(nonDebug).not.toContain(USER.email);
  });

  it('parses, maps and refuses before any send: a bad attachment', async () => {
    const s = await session();
    const raw = [
      `From: ${ALICE}`,
      'Subject: s',
      'Content-Type: multipart/mixed; boundary=B',
      '',
      '--B',
      'Content-Type: text/plain',
      '',
      'x',
      '--B',
      'Content-Type: application/zip; name="a.zip"',
      'Content-Transfer-Encoding: base64',
      '',
      'UEsDBA==',
      '--B--',
      '',
    ].join('\r\n');
    const err = await refused(send(s, raw, ['one@example.net']));
    expect(err.code).toBe(554);
    expect(api.sent()).toHaveLength(0);
  });
});
