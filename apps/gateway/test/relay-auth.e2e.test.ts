/**
 * End to end, over real SMTP through the whole gateway into the fake Cakemail API:
 * AUTH → POST /token, the confirmed-sender check at MAIL FROM, the account and sender
 * control headers, and secrets (never in a log line, never in a reply).
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  DEFAULT_ACCOUNT_ID,
  DEFAULT_SENDER,
  DEFAULT_USER,
  MFA_USER,
  MULTI_ACCOUNT_USER,
  OTHER_ACCOUNT_ID,
  OTHER_ACCOUNT_SENDER,
  UNCONFIRMED_SENDER,
  startTls,
  type Fault,
} from '@cakemail-smtp/testkit';
import { TOKEN_PATTERN, lineOf, useGateway, startGateway, textMessage, type RunningGateway } from './e2e-helpers.js';

const QUEUED = /^250 2\.0\.0 Ok: queued as ([0-9a-f-]{36})$/;
const S553 = '553 5.7.1 Sender address is not a confirmed sender of this Cakemail account';
const S550_ACCOUNT = '550 5.7.1 The x-account-id header names an account this login cannot use';

describe('AUTH → POST /token', () => {
  let gw: RunningGateway;
  // A fresh gateway per case: logins are cached, so a cached DEFAULT_USER would hide /token.
  beforeEach(async () => {
    gw = await startGateway({ env: { CAKEMAIL_TIMEOUT_MS: '400', UPSTREAM_DEADLINE_MS: '1200' } });
  });
  afterEach(async () => {
    await gw.close();
  });

  it.each(['PLAIN', 'LOGIN'] as const)('AUTH %s with the Cakemail login answers 235 and calls /token with the password grant', async (mechanism) => {
    const client = await startTls(gw.client);
    expect(lineOf(await client.auth(DEFAULT_USER.email, DEFAULT_USER.password, mechanism))).toBe('235 2.7.0 Authentication successful');
    client.close();
    const token = gw.fake.callsTo('token');
    expect(token).toHaveLength(1);
    expect(token[0]?.status).toBe(200);
    expect(token[0]?.body).toEqual({ grant_type: 'password', username: DEFAULT_USER.email, password: '***' });
  });

  it.each([
    { name: 'a wrong password', user: DEFAULT_USER.email, pass: 'not-the-password', line: '535 5.7.8 Authentication credentials invalid', status: 401 },
    { name: 'an unknown user', user: 'nobody@example.com', pass: 'whatever-pass', line: '535 5.7.8 Authentication credentials invalid', status: 401 },
    {
      name: 'an account with MFA',
      user: MFA_USER.email,
      pass: MFA_USER.password,
      line: '535 5.7.8 This Cakemail account uses multi-factor authentication, which SMTP cannot complete; use an account without MFA',
      status: 200,
    },
  ])('refuses $name with the exact 535 line', async ({ user, pass, line, status }) => {
    const client = await startTls(gw.client);
    expect(lineOf(await client.auth(user, pass))).toBe(line);
    // still not authenticated
    expect(lineOf(await client.command(`MAIL FROM:<${DEFAULT_SENDER.email}>`))).toBe('530 5.7.0 Authentication required');
    client.close();
    expect(gw.fake.callsTo('token').map((c) => c.status)).toEqual([status]);
    expect(gw.fake.callsTo('senders')).toHaveLength(0);
  });

  it('an account with MFA whose /token answers 401 with a challenge (as the spec text says) gets the MFA text too', async () => {
    const strict = await startGateway({ fake: { mfaChallengeStatus: 401 } });
    try {
      const client = await startTls(strict.client);
      expect(lineOf(await client.auth(MFA_USER.email, MFA_USER.password))).toBe(
        '535 5.7.8 This Cakemail account uses multi-factor authentication, which SMTP cannot complete; use an account without MFA',
      );
      // a wrong password for the same account is still the plain 535
      expect(lineOf(await client.auth(MFA_USER.email, 'wrong-password'))).toBe('535 5.7.8 Authentication credentials invalid');
      client.close();
      expect(strict.fake.callsTo('token').map((c) => c.status)).toEqual([401, 401]);
    } finally {
      await strict.close();
    }
  });

  it('a password with form-encoding and non-ASCII characters reaches /token intact', async () => {
    const user = { email: 'special@example.com', password: 'p&ss=w+rd %20 ünï 🔑', accounts: [DEFAULT_ACCOUNT_ID] };
    gw.fake.addUser(user);
    for (const mechanism of ['PLAIN', 'LOGIN'] as const) {
      const client = await startTls(gw.client);
      expect(lineOf(await client.auth(user.email, user.password, mechanism))).toBe('235 2.7.0 Authentication successful');
      client.close();
    }
    const client = await startTls(gw.client);
    expect(lineOf(await client.auth(user.email, `${user.password}x`))).toBe('535 5.7.8 Authentication credentials invalid');
    client.close();
  });

  it.each<{ name: string; fault: Fault }>([
    { name: '/token answering 503', fault: { status: 503 } },
    { name: '/token answering 500', fault: { status: 500 } },
    { name: '/token resetting the connection', fault: { reset: true } },
    { name: '/token hanging past the timeout', fault: { hang: true } },
    { name: '/token rate limited (429)', fault: { status: 429, retryAfter: 30 } },
  ])('answers 454 4.7.0 when $name, within the deadline, and does not remember it', async ({ fault }) => {
    gw.fake.faults.set('token', fault);
    const client = await startTls(gw.client);
    const started = Date.now();
    expect(lineOf(await client.auth(DEFAULT_USER.email, DEFAULT_USER.password))).toBe('454 4.7.0 Temporary authentication failure, try again later');
    expect(Date.now() - started).toBeLessThan(1200 + 3000);
    client.close();
    expect(gw.fake.callsTo('token').length).toBeGreaterThanOrEqual(1);

    // /token is back: the same login works at once (a temporary failure is not cached).
    gw.fake.faults.clear();
    const again = await startTls(gw.client);
    expect(lineOf(await again.auth(DEFAULT_USER.email, DEFAULT_USER.password))).toBe('235 2.7.0 Authentication successful');
    again.close();
  });
});

describe('sender, account and sender-id', () => {
  let gw: RunningGateway;
  beforeAll(async () => {
    gw = await startGateway();
    gw.fake.addSender(DEFAULT_ACCOUNT_ID, { id: '7', name: 'Second Sender', email: 'second@example.com', confirmed: true });
  });
  afterAll(async () => {
    await gw.close();
  });
  beforeEach(() => {
    gw.fake.reset();
  });

  it.each([
    { name: 'a confirmed sender', from: DEFAULT_SENDER.email, line: '250 2.1.0 Accepted' },
    { name: 'a confirmed sender in another case', from: 'SENDER@Example.COM', line: '250 2.1.0 Accepted' },
    { name: 'an unconfirmed sender', from: UNCONFIRMED_SENDER.email, line: S553 },
    { name: 'an unknown sender', from: 'nobody@example.com', line: S553 },
    { name: 'a sender of an account this login cannot use', from: OTHER_ACCOUNT_SENDER.email, line: S553 },
  ])('MAIL FROM with $name → $line', async ({ from, line }) => {
    const client = await gw.login();
    expect(lineOf(await client.command(`MAIL FROM:<${from}>`))).toBe(line);
    client.close();
    expect(gw.fake.sent()).toHaveLength(0);
  });

  it('sends as the confirmed sender matched case-insensitively, with the From display name as sender.name', async () => {
    const reply = await gw.sendRaw('SENDER@Example.COM', ['to@example.net'], textMessage({ from: '"Jane Q. Sender" <Sender@Example.com>', subject: 'Hi' }));
    const sent = gw.fake.sent();
    expect(sent).toHaveLength(1);
    expect(lineOf(reply)).toBe(`250 2.0.0 Ok: queued as ${sent[0]?.id}`);
    expect(sent[0]?.accountId).toBe(DEFAULT_ACCOUNT_ID);
    expect(sent[0]?.body.sender).toEqual({ id: DEFAULT_SENDER.id, name: 'Jane Q. Sender' });
  });

  it.each([
    { name: 'no display name', from: DEFAULT_SENDER.email, sender: { id: DEFAULT_SENDER.id } },
    { name: 'a plain display name', from: `Dev Team <${DEFAULT_SENDER.email}>`, sender: { id: DEFAULT_SENDER.id, name: 'Dev Team' } },
    { name: 'an encoded-word display name', from: `=?UTF-8?Q?Caf=C3=A9_=C3=89quipe?= <${DEFAULT_SENDER.email}>`, sender: { id: DEFAULT_SENDER.id, name: 'Café Équipe' } },
    { name: 'an ISO-8859-1 encoded-word name', from: `=?ISO-8859-1?B?${Buffer.from('Müller', 'latin1').toString('base64')}?= <${DEFAULT_SENDER.email}>`, sender: { id: DEFAULT_SENDER.id, name: 'Müller' } },
  ])('From with $name → sender $sender', async ({ from, sender }) => {
    const reply = await gw.sendRaw(DEFAULT_SENDER.email, ['to@example.net'], textMessage({ from, subject: 'Hi' }));
    expect(lineOf(reply)).toMatch(QUEUED);
    expect(gw.fake.sent()[0]?.body.sender).toEqual(sender);
  });

  it('the null sender is checked against the From header: a confirmed From is sent', async () => {
    const reply = await gw.sendRaw('', ['to@example.net'], textMessage({ from: `Dev <${DEFAULT_SENDER.email}>`, subject: 'Bounce-like' }));
    const sent = gw.fake.sent();
    expect(sent).toHaveLength(1);
    expect(lineOf(reply)).toBe(`250 2.0.0 Ok: queued as ${sent[0]?.id}`);
    expect(sent[0]?.body.sender).toEqual({ id: DEFAULT_SENDER.id, name: 'Dev' });
  });

  it.each([
    { name: 'an unknown From', from: 'nobody@example.com' },
    { name: 'an unconfirmed From', from: UNCONFIRMED_SENDER.email },
  ])('the null sender with $name gets 553 5.7.1 after DATA and nothing is sent', async ({ from }) => {
    const client = await gw.login();
    expect(lineOf(await client.command('MAIL FROM:<>'))).toBe('250 2.1.0 Accepted');
    expect(lineOf(await client.command('RCPT TO:<to@example.net>'))).toBe('250 2.1.5 Accepted');
    expect(lineOf(await client.command('DATA'))).toMatch(/^354 /);
    client.write(`${textMessage({ from, subject: 'x' })}.\r\n`);
    const reply = await client.read();
    client.close();
    expect(lineOf(reply)).toBe(S553);
    expect(gw.fake.callsTo('send')).toHaveLength(0);
  });

  it('x-sender-id names the sender explicitly (any confirmed envelope sender of the account)', async () => {
    const reply = await gw.sendRaw('second@example.com', ['to@example.net'], textMessage({ from: 'second@example.com', subject: 'Hi', headers: ['x-sender-id: 1'] }));
    const sent = gw.fake.sent();
    expect(lineOf(reply)).toBe(`250 2.0.0 Ok: queued as ${sent[0]?.id}`);
    expect(sent[0]?.body.sender.id).toBe(DEFAULT_SENDER.id);
    // the control header itself is not forwarded
    expect(sent[0]?.body.additional_headers ?? []).toEqual([]);
  });

  it.each([
    { name: 'an unconfirmed sender', id: UNCONFIRMED_SENDER.id },
    { name: 'an unknown sender', id: '999' },
    { name: "another account's sender", id: OTHER_ACCOUNT_SENDER.id },
  ])('x-sender-id naming $name → 553 5.7.1, nothing sent', async ({ id }) => {
    const reply = await gw.sendRaw(DEFAULT_SENDER.email, ['to@example.net'], textMessage({ subject: 'Hi', headers: [`x-sender-id: ${id}`] }));
    expect(lineOf(reply)).toBe('553 5.7.1 The x-sender-id header names no confirmed sender of this Cakemail account');
    expect(gw.fake.callsTo('send')).toHaveLength(0);
  });

  it.each([
    { name: 'an account of another login', value: String(OTHER_ACCOUNT_ID) },
    { name: 'a non-numeric value', value: 'abc' },
    { name: 'zero', value: '0' },
  ])('x-account-id with $name → 550 5.7.1, nothing sent', async ({ value }) => {
    const reply = await gw.sendRaw(DEFAULT_SENDER.email, ['to@example.net'], textMessage({ subject: 'Hi', headers: [`x-account-id: ${value}`] }));
    expect(lineOf(reply)).toBe(S550_ACCOUNT);
    expect(gw.fake.callsTo('send')).toHaveLength(0);
  });

  it('x-account-id naming the login default account is allowed', async () => {
    const reply = await gw.sendRaw(DEFAULT_SENDER.email, ['to@example.net'], textMessage({ subject: 'Hi', headers: [`x-account-id: ${DEFAULT_ACCOUNT_ID}`] }));
    expect(lineOf(reply)).toMatch(QUEUED);
    expect(gw.fake.sent()[0]?.accountId).toBe(DEFAULT_ACCOUNT_ID);
    expect(gw.fake.callsTo('send')[0]?.query).toEqual({ account_id: String(DEFAULT_ACCOUNT_ID) });
  });

  it('x-account-id picks another account of a multi-account login, with that account’s sender and list', async () => {
    const reply = await gw.sendRaw(
      OTHER_ACCOUNT_SENDER.email,
      ['to@example.net'],
      textMessage({ from: OTHER_ACCOUNT_SENDER.email, subject: 'Hi', headers: [`x-account-id: ${OTHER_ACCOUNT_ID}`] }),
      MULTI_ACCOUNT_USER,
    );
    const sent = gw.fake.sent();
    expect(lineOf(reply)).toBe(`250 2.0.0 Ok: queued as ${sent[0]?.id}`);
    expect(sent[0]?.accountId).toBe(OTHER_ACCOUNT_ID);
    expect(sent[0]?.body.sender.id).toBe(OTHER_ACCOUNT_SENDER.id);
    expect(sent[0]?.body.list_id).toBe(gw.fake.lists(OTHER_ACCOUNT_ID).find((l) => l.name === 'SMTP Gateway')?.id);
  });

  it("a sender of the login's second account without x-account-id is sent through that account", async () => {
    const client = await gw.login(MULTI_ACCOUNT_USER);
    expect(lineOf(await client.command(`MAIL FROM:<${OTHER_ACCOUNT_SENDER.email}>`))).toBe('250 2.1.0 Accepted');
    await client.command('RSET');
    const reply = await client.sendMail(OTHER_ACCOUNT_SENDER.email, ['to@example.net'], textMessage({ from: OTHER_ACCOUNT_SENDER.email, subject: 'Hi' }));
    client.close();
    expect(lineOf(reply)).toMatch(/^250 2\.0\.0 Ok: queued as /);
    const sent = gw.fake.sent();
    expect(sent).toHaveLength(1);
    expect(sent[0]?.accountId).toBe(OTHER_ACCOUNT_ID);
  });
});

describe('the sender lookup failing at MAIL FROM', () => {
  const gw = useGateway({ env: { CAKEMAIL_TIMEOUT_MS: '400', UPSTREAM_DEADLINE_MS: '1200' } }, { perTest: true });

  it.each<{ name: string; fault: Fault; line: string }>([
    { name: 'senders answering 503', fault: { status: 503 }, line: '451 4.3.0 Cakemail is temporarily unavailable, try again later' },
    { name: 'senders hanging', fault: { hang: true }, line: '451 4.3.0 Cakemail is temporarily unavailable, try again later' },
    { name: 'senders rate limited', fault: { status: 429, retryAfter: 30 }, line: '451 4.7.1 Cakemail rate limit reached, try again later' },
    { name: 'senders answering 403', fault: { status: 403 }, line: '550 5.7.1 Cakemail refused this sender or account: Fault injected: forbidden' },
  ])('$name → $line at MAIL FROM; fine again once it recovers', async ({ fault, line }) => {
    gw.fake.faults.set('senders', fault);
    const client = await gw.login();
    expect(lineOf(await client.command(`MAIL FROM:<${DEFAULT_SENDER.email}>`))).toBe(line);
    gw.fake.faults.clear();
    expect(lineOf(await client.command(`MAIL FROM:<${DEFAULT_SENDER.email}>`))).toBe('250 2.1.0 Accepted');
    client.close();
    expect(gw.fake.callsTo('send')).toHaveLength(0);
  });
});

describe('secrets', () => {
  it('no password, access token or refresh token in any log line or SMTP reply', async () => {
    const gw = await startGateway({ env: { CAKEMAIL_TIMEOUT_MS: '400', UPSTREAM_DEADLINE_MS: '1200' } });
    const replies: string[] = [];
    const wrong = 'Wr0ng-Secret-Passw0rd';
    try {
      // successful logins, both mechanisms, and a message
      const plain = await gw.login(DEFAULT_USER, 'PLAIN');
      replies.push(plain.greeting?.raw ?? '', (await plain.sendMail(DEFAULT_SENDER.email, ['a@example.net'], textMessage({ subject: 'one' }))).raw);
      plain.close();
      const login = await gw.login(MULTI_ACCOUNT_USER, 'LOGIN');
      replies.push((await login.sendMail(OTHER_ACCOUNT_SENDER.email, ['b@example.net'], textMessage({ from: OTHER_ACCOUNT_SENDER.email, subject: 'two', headers: [`x-account-id: ${OTHER_ACCOUNT_ID}`] }))).raw);
      login.close();
      // refused logins: wrong password, MFA, /token down
      for (const [user, pass] of [
        [DEFAULT_USER.email, wrong],
        [MFA_USER.email, MFA_USER.password],
      ] as const) {
        const c = await startTls(gw.client);
        for (const mechanism of ['PLAIN', 'LOGIN'] as const) replies.push((await c.auth(user, pass, mechanism)).raw);
        c.close();
      }
      gw.fake.faults.set('token', { status: 503 });
      const down = await startTls(gw.client);
      replies.push((await down.auth('fresh@example.com', 'fresh-password-123')).raw);
      down.close();
      gw.fake.faults.clear();
      // an expired token: 401, refresh, send again
      gw.fake.expireTokens();
      replies.push((await gw.sendRaw(DEFAULT_SENDER.email, ['c@example.net'], textMessage({ subject: 'three' }))).raw);
      // a send refused with 401 even after the refresh
      gw.fake.faults.set('send', { status: 401 });
      replies.push((await gw.sendRaw(DEFAULT_SENDER.email, ['d@example.net'], textMessage({ subject: 'four' }))).raw);
    } finally {
      await gw.close();
    }
    expect(replies.filter((r) => r.startsWith('250 2.0.0 Ok: queued as'))).toHaveLength(3);
    expect(replies.at(-1)).toBe('451 4.3.0 Cakemail is temporarily unavailable, try again later\r\n');
    // the refresh really happened, so a refresh token really went over the wire
    expect(gw.fake.callsTo('token').some((c) => (c.body as { grant_type?: string }).grant_type === 'refresh_token')).toBe(true);

    const secrets = [DEFAULT_USER.password, MULTI_ACCOUNT_USER.password, MFA_USER.password, wrong, 'fresh-password-123'];
    const b64 = (s: string): string => Buffer.from(s).toString('base64');
    const encoded = [b64(`\0${DEFAULT_USER.email}\0${DEFAULT_USER.password}`), b64(DEFAULT_USER.password), b64(wrong)];
    const logs = gw.logText();
    expect(gw.logs().length).toBeGreaterThan(10);
    for (const text of [logs, replies.join('')]) {
      for (const s of [...secrets, ...encoded]) expect(text).not.toContain(s);
      expect(text).not.toMatch(TOKEN_PATTERN);
      expect(text).not.toMatch(/bearer/i);
    }
  });
});

describe('a password changed or a login revoked at Cakemail (AUTH_CACHE_TTL_MS)', () => {
  const passwordGrants = (gw: RunningGateway) =>
    gw.fake.callsTo('token').filter((c) => (c.body as { grant_type?: string }).grant_type === 'password');
  const auth = async (gw: RunningGateway, password: string): Promise<string> => {
    const client = await startTls(gw.client);
    try {
      return lineOf(await client.auth(DEFAULT_USER.email, password));
    } finally {
      client.close();
    }
  };

  it('within AUTH_CACHE_TTL_MS the old password is still served from the cached login (the documented window)', async () => {
    const gw = await startGateway();
    try {
      expect(await auth(gw, DEFAULT_USER.password)).toBe('235 2.7.0 Authentication successful');
      gw.fake.setPassword(DEFAULT_USER.email, 'changed-password-1');
      expect(await auth(gw, DEFAULT_USER.password)).toBe('235 2.7.0 Authentication successful');
      expect(passwordGrants(gw)).toHaveLength(1);
    } finally {
      await gw.close();
    }
  });

  it('after AUTH_CACHE_TTL_MS the old password gets 535 from a new /token check, however busy the login was with refreshes', async () => {
    const gw = await startGateway({ env: { AUTH_CACHE_TTL_MS: '1000' } });
    try {
      const started = Date.now();
      const session = await gw.login();
      expect(passwordGrants(gw)).toHaveLength(1);
      gw.fake.setPassword(DEFAULT_USER.email, 'changed-password-2');
      // the login stays busy: its token expires and is refreshed
      gw.fake.expireTokens();
      expect(lineOf(await session.sendMail(DEFAULT_SENDER.email, ['busy@example.net'], textMessage({ subject: 'busy' })))).toMatch(QUEUED);
      session.close();
      expect(gw.fake.callsTo('token').filter((c) => (c.body as { grant_type?: string }).grant_type === 'refresh_token')).toHaveLength(1);
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, started + 1500 - Date.now())));

      expect(await auth(gw, DEFAULT_USER.password)).toBe('535 5.7.8 Authentication credentials invalid');
      const grants = passwordGrants(gw);
      expect(grants).toHaveLength(2);
      expect(grants[1]?.status).toBe(401);
      expect(await auth(gw, 'changed-password-2')).toBe('235 2.7.0 Authentication successful');
    } finally {
      await gw.close();
    }
  });

  it('a refresh refused with 401 (tokens revoked) drops the cached login at once: the next AUTH calls /token', async () => {
    const gw = await startGateway();
    try {
      const session = await gw.login();
      gw.fake.revokeTokens(DEFAULT_USER.email);
      // the send's 401, then the refresh's 401: the message is not sent, the client retries
      expect(lineOf(await session.sendMail(DEFAULT_SENDER.email, ['revoked@example.net'], textMessage({ subject: 'revoked' })))).toBe(
        '451 4.3.0 Cakemail is temporarily unavailable, try again later',
      );
      session.close();
      const refresh = gw.fake.callsTo('token').filter((c) => (c.body as { grant_type?: string }).grant_type === 'refresh_token');
      expect(refresh.map((c) => c.status)).toEqual([401]);
      expect(passwordGrants(gw)).toHaveLength(1);
      expect(await auth(gw, DEFAULT_USER.password)).toBe('235 2.7.0 Authentication successful');
      expect(passwordGrants(gw)).toHaveLength(2);
      expect(gw.fake.sent()).toHaveLength(0);
    } finally {
      await gw.close();
    }
  });
});
