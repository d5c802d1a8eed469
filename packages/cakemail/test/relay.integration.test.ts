import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Session } from '@cakemail-smtp/smtp-core';
import { createRelayBackend, type RelayBackend, type RelayConfig } from '../src/relay.js';
import type { Logger } from '../src/types.js';
import { startMiniCakemail, USER, type MiniCakemail } from './helpers/mini-cakemail.js';
import { authRefused, refused } from './helpers/refused.js';

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

let api: MiniCakemail;
let backend: RelayBackend;
let logs: LogLine[];

async function start(config: Partial<RelayConfig> = {}): Promise<void> {
  backend = createRelayBackend(
    { apiUrl: api.url, timeoutMs: 2000, deadlineMs: 1500, emailType: 'transactional', concurrency: 8, ...config },
    { logger: recordingLogger(logs) },
  );
}

const USERS = [USER, { username: 'mfa@example.com', password: 'pw', accounts: [101], mfa: true }];

beforeEach(async () => {
  api = await startMiniCakemail(USERS);
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
  await s.auth({ mechanism: 'PLAIN', username: USER.username, password });
  return s;
}

function message(extra: string[] = [], bodyText = 'Hello there'): string {
  return [
    'From: "Alice A." <alice@example.com>',
    'To: one@example.net',
    'Subject: Greetings',
    'Message-ID: <m1@example.com>',
    ...extra,
    '',
    bodyText,
    '',
  ].join('\r\n');
}

async function send(s: Session, raw: string, to: string[], from = 'alice@example.com'): Promise<string> {
  if (from !== '') await s.mail(from, { smtpUtf8: false });
  for (const r of to) await s.rcpt(r);
  return s.data(Readable.from([Buffer.from(raw)]), { from, to });
}


describe('relay', () => {
  it('sends one POST /v2/emails per recipient and answers the first id and a count', async () => {
    const s = await session();
    const text = await send(s, message(), ['one@example.net', 'two@example.net', 'three@example.net']);
    expect(text).toMatch(/^Ok: queued as cm-\d+ \(\+2 more\)$/);
    expect(api.sends.map((x) => x.body['email']).sort()).toEqual(['one@example.net', 'three@example.net', 'two@example.net']);
    const b = api.sends[0]?.body;
    expect(b).toMatchObject({
      sender: { id: 'snd-a', name: 'Alice A.' },
      content: { type: 'transactional', subject: 'Greetings', text: 'Hello there', encoding: 'utf-8' },
      additional_headers: [{ name: 'Message-ID', value: '<m1@example.com>' }],
    });
    expect(api.sends.every((x) => x.accountId === 101)).toBe(true);
    // the gateway list was created once, with the sender as its default sender
    expect(api.lists.get(101)).toEqual([{ id: b?.['list_id'], name: 'SMTP Gateway' }]);
  });

  it('answers a single recipient without a count', async () => {
    const s = await session();
    expect(await send(s, message(), ['one@example.net'])).toMatch(/^Ok: queued as cm-\d+$/);
  });

  it('finds or creates the gateway list once per account, and looks senders up once', async () => {
    const s = await session();
    await send(s, message(), ['one@example.net']);
    await send(s, message([], 'second'), ['one@example.net']);
    const s2 = await session();
    await send(s2, message([], 'third'), ['one@example.net']);
    expect(api.count('/lists', 'POST')).toBe(1);
    expect(api.count('/lists', 'GET')).toBe(1);
    expect(api.count('/brands/default/senders')).toBe(1);
    expect(api.count('/token')).toBe(1); // the second AUTH came from the cache
  });

  it('uses x-list-id, then the configured list', async () => {
    let s = await session();
    await send(s, message(['x-list-id: 4242']), ['one@example.net']);
    expect(api.sends[0]?.body['list_id']).toBe(4242);
    await backend.close();
    await start({ listId: 77 });
    s = await session();
    await send(s, message([], 'other'), ['one@example.net']);
    expect(api.sends[1]?.body['list_id']).toBe(77);
    expect(api.count('/lists')).toBe(0);
  });

  it('checks the sender against the account x-account-id names', async () => {
    const s = await session();
    // alice@example.com is a confirmed sender of 101, not of 202
    const err = await refused(send(s, message(['x-account-id: 202']), ['one@example.net'], ''));
    expect(err.code).toBe(553);
    expect(api.sends).toHaveLength(0);
  });

  it('relays on another account with its own confirmed sender', async () => {
    const s = await session();
    const raw = message(['x-account-id: 202', 'x-email-api-type: marketing']).replace('alice@example.com', 'bob@example.org');
    await send(s, raw, ['one@example.net'], '');
    expect(api.sends[0]).toMatchObject({ accountId: 202, body: { sender: { id: 'snd-b' }, content: { type: 'marketing' } } });
  });

  it('refuses an x-account-id the login cannot use', async () => {
    const s = await session();
    const err = await refused(send(s, message(['x-account-id: 303']), ['one@example.net']));
    expect(err.line).toBe('550 5.7.1 The x-account-id header names an account this login cannot use');
  });

  it('checks MAIL FROM against confirmed senders, case-insensitively', async () => {
    const s = await session();
    await s.mail('ALICE@example.COM', { smtpUtf8: false });
    expect((await refused(s.mail('pending@example.com', { smtpUtf8: false }))).line).toBe(
      '553 5.7.1 Sender address is not a confirmed sender of this Cakemail account',
    );
    expect((await refused(s.mail('nobody@example.com', { smtpUtf8: false }))).code).toBe(553);
  });

  it('MAIL FROM may be a sender of another of the login accounts; without x-account-id that account is used', async () => {
    const s = await session();
    const raw = message(['x-account-id: 202']).replace('alice@example.com', 'bob@example.org');
    await send(s, raw, ['one@example.net'], 'bob@example.org');
    expect(api.sends[0]).toMatchObject({ accountId: 202, body: { sender: { id: 'snd-b' } } });
    s.reset();
    // Without x-account-id the message goes to the account where MAIL FROM is a confirmed sender:
    await send(s, raw.replace('x-account-id: 202\r\n', ''), ['two@example.net'], 'bob@example.org');
    expect(api.sends[1]).toMatchObject({ accountId: 202, body: { sender: { id: 'snd-b' } } });
    // x-account-id naming the default account, where bob is no sender, is refused at DATA:
    s.reset();
    const err = await refused(send(s, raw.replace('x-account-id: 202', 'x-account-id: 101'), ['three@example.net'], 'bob@example.org'));
    expect(err.code).toBe(553);
  });

  it('with a null MAIL FROM, checks the From header at DATA', async () => {
    const s = await session();
    const err = await refused(send(s, message().replace('alice@example.com', 'mallory@example.com'), ['one@example.net'], ''));
    expect(err.code).toBe(553);
    expect(await send(s, message(), ['one@example.net'], '')).toMatch(/^Ok: queued as /);
  });

  it('x-sender-id names the sender; an unknown one is refused', async () => {
    const s = await session();
    const err = await refused(send(s, message(['x-sender-id: snd-u']), ['one@example.net']));
    expect(err.line).toBe('553 5.7.1 The x-sender-id header names no confirmed sender of this Cakemail account');
    await send(s, message(['x-sender-id: snd-a']), ['one@example.net']);
    expect(api.sends[0]?.body['sender']).toEqual({ id: 'snd-a', name: 'Alice A.' });
  });

  it('the retry of a partly failed message only sends the recipients not yet accepted', async () => {
    const s = await session();
    const unavailable = { status: 503, json: { detail: [{ msg: 'maintenance' }] } };
    api.faults.set('two@example.net', Array.from({ length: 50 }, () => unavailable));
    const err = await refused(send(s, message(), ['one@example.net', 'two@example.net']));
    expect(err.line).toBe('451 4.3.0 Cakemail is temporarily unavailable, try again later');
    expect(api.sends.map((x) => x.body['email'])).toEqual(['one@example.net']);
    const firstId = logs.find((l) => l.obj['event'] === 'relayed')?.obj['ids'] as string[];
    expect(firstId).toHaveLength(1);

    api.faults.clear();
    s.reset();
    const text = await send(s, message(), ['one@example.net', 'two@example.net']);
    expect(api.sends.map((x) => x.body['email'])).toEqual(['one@example.net', 'two@example.net']);
    expect(text).toBe(`Ok: queued as ${firstId[0]} (+1 more)`);

    // And once more (the 250 was lost): nothing is sent again.
    await send(s, message(), ['one@example.net', 'two@example.net']);
    expect(api.sends).toHaveLength(2);
  });

  it('a 429 becomes 451 4.7.1', async () => {
    const s = await session();
    api.faults.set('one@example.net', Array.from({ length: 50 }, () => ({ status: 429, json: {}, headers: { 'retry-after': '60' } })));
    const err = await refused(send(s, message(), ['one@example.net']));
    expect(err.line).toBe('451 4.7.1 Cakemail rate limit reached, try again later');
  });

  it('all refused permanently → 550 with the API msg', async () => {
    const s = await session();
    const bad = { status: 422, json: { detail: [{ loc: ['body', 'email'], msg: 'value is not a valid email address', type: 'value_error' }] } };
    api.faults.set('one@example.net', [bad]);
    api.faults.set('two@example.net', [bad]);
    const err = await refused(send(s, message(), ['one@example.net', 'two@example.net']));
    expect(err.line).toBe('550 5.6.0 Cakemail rejected the message: value is not a valid email address');
  });

  it('a 403 → 550 5.7.1', async () => {
    const s = await session();
    api.faults.set('one@example.net', [{ status: 403, json: { detail: [{ code: 403, msg: 'Sender suspended', type: 'forbidden' }] } }]);
    const err = await refused(send(s, message(), ['one@example.net']));
    expect(err.line).toBe('550 5.7.1 Cakemail refused this sender or account: Sender suspended');
  });

  it('a rejected status → 550 5.6.0', async () => {
    const s = await session();
    api.faults.set('one@example.net', [{ status: 201, json: { email: 'one@example.net', data: { id: 'x', status: 'rejected' } } }]);
    const err = await refused(send(s, message(), ['one@example.net']));
    expect(err.line).toBe('550 5.6.0 Cakemail rejected the message (status rejected)');
  });

  it('some accepted and the rest refused → 250 naming the refused recipients', async () => {
    const s = await session();
    api.faults.set('bad@example.net', [{ status: 400, json: { detail: [{ msg: 'Recipient is unsubscribed' }] } }]);
    const text = await send(s, message(), ['one@example.net', 'bad@example.net']);
    expect(text).toMatch(/^Ok: queued as cm-\d+; not sent to bad@example\.net: Cakemail rejected the message: Recipient is unsubscribed$/);
  });

  it('a 401 on send refreshes the token once and retries', async () => {
    const s = await session();
    await send(s, message(), ['one@example.net']);
    api.revoked.add('tok-1');
    await send(s, message([], 'again'), ['two@example.net']);
    expect(api.sends[1]?.token).toBe('Bearer tok-2');
    expect(api.count('/token')).toBe(2); // login + one refresh
  });

  it('a second 401 after the refresh is temporary', async () => {
    const s = await session();
    await send(s, message(), ['one@example.net']);
    api.revoked.add('tok-1');
    api.revoked.add('tok-2');
    const err = await refused(send(s, message([], 'again'), ['two@example.net']));
    expect(err.line).toBe('451 4.3.0 Cakemail is temporarily unavailable, try again later');
  });

  it('bounds the fan-out concurrency', async () => {
    await backend.close();
    await start({ concurrency: 3 });
    const s = await session();
    const to = Array.from({ length: 20 }, (_, i) => `r${i}@example.net`);
    const text = await send(s, message(), to);
    expect(text).toMatch(/\(\+19 more\)$/);
    expect(api.sends).toHaveLength(20);
    expect(api.maxInFlight).toBeLessThanOrEqual(3);
    expect(api.maxInFlight).toBeGreaterThan(1);
  });

  it('refuses wrong credentials and MFA accounts at AUTH', async () => {
    const s = backend.newSession({ id: 'x', remoteAddress: '127.0.0.1', remotePort: 1, localPort: 2, listener: 'implicit' });
    const err = await authRefused(s.auth({ mechanism: 'LOGIN', username: USER.username, password: 'wrong' }), 'invalid');
    expect(err.line).toBe('535 5.7.8 Authentication credentials invalid');
    const mfa = await authRefused(s.auth({ mechanism: 'PLAIN', username: 'mfa@example.com', password: 'pw' }), 'denied');
    expect(mfa.line).toMatch(/^535 5\.7\.8 This Cakemail account uses multi-factor authentication/);
  });

  it('an unreachable API at AUTH → 454', async () => {
    await api.close();
    const s = backend.newSession({ id: 'x', remoteAddress: '127.0.0.1', remotePort: 1, localPort: 2, listener: 'implicit' });
    const err = await authRefused(s.auth({ mechanism: 'PLAIN', username: USER.username, password: USER.password }), 'unavailable');
    expect(err.line).toBe('454 4.7.0 Temporary authentication failure, try again later');
    api = await startMiniCakemail(USERS); // for afterEach
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
    expect(all).not.toContain('tok-1');
    const nonDebug = JSON.stringify(logs.filter((l) => l.level !== 'debug'));
    expect(nonDebug).not.toContain('@example.net');
    expect(nonDebug).not.toContain('alice@example.com');
    expect(nonDebug).not.toContain(USER.username);
  });

  it('parses, maps and refuses before any send: a bad attachment', async () => {
    const s = await session();
    const raw = [
      'From: alice@example.com',
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
    expect(api.sends).toHaveLength(0);
  });
});
