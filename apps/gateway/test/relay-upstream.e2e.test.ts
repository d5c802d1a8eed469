/**
 * End to end, over real SMTP through the whole gateway into the fake Cakemail API: every
 * class of upstream answer to `POST /v2/emails`, the retried message that must not reach a
 * recipient twice, partial acceptance, the recipient and size limits, and swaks.
 */
import { execFile } from 'node:child_process';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { DEFAULT_SENDER, DEFAULT_USER, type Fault, type FakeCakemail } from '@cakemail-smtp/testkit';
import { lineOf, scrapeMetrics, sentTo, useGateway, startGateway, textMessage, type RunningGateway } from './e2e-helpers.js';

const FROM = DEFAULT_SENDER.email;
const QUEUED = /^250 2\.0\.0 Ok: queued as ([0-9a-f-]{36})$/;
const UNAVAILABLE = '451 4.3.0 Cakemail is temporarily unavailable, try again later';
const RATE_LIMITED = '451 4.7.1 Cakemail rate limit reached, try again later';
const TIMEOUT_MS = 500;
const DEADLINE_MS = 1500;
const FAST = { CAKEMAIL_TIMEOUT_MS: String(TIMEOUT_MS), UPSTREAM_DEADLINE_MS: String(DEADLINE_MS) };

const sendCalls = (fake: FakeCakemail) => fake.callsTo('send');

describe('upstream answers to POST /v2/emails', () => {
  let gw: RunningGateway;
  beforeAll(async () => {
    gw = await startGateway({ env: FAST });
    // warm the sender and list caches, so each case below calls only /v2/emails
    expect((await gw.send({ from: FROM, to: 'warm@example.net', subject: 'warm', text: 'warm' })).line).toMatch(QUEUED);
  });
  afterAll(async () => {
    await gw.close();
  });
  beforeEach(() => {
    gw.fake.reset();
  });

  const validation = { detail: [{ loc: ['body', 'content', 'html'], msg: 'ensure this value has at least 1 characters', type: 'value_error.any_str.min_length' }] };

  it('counts each attempt to Cakemail by call and outcome, with its time, on /metrics', async () => {
    const before = await scrapeMetrics(gw.ports.ops);
    gw.fake.faults.set('send', { status: 503, times: 1 });
    expect((await gw.send({ from: FROM, to: 'metrics@example.net', subject: 'm', text: 'm' })).line).toMatch(QUEUED);
    const after = await scrapeMetrics(gw.ports.ops);
    const delta = (name: string): number => (after.get(name) ?? 0) - (before.get(name) ?? 0);
    expect(delta('smtp_gateway_cakemail_requests_total{call="POST /v2/emails",outcome="5xx"}')).toBe(1);
    expect(delta('smtp_gateway_cakemail_requests_total{call="POST /v2/emails",outcome="2xx"}')).toBe(1);
    expect(delta('smtp_gateway_cakemail_request_duration_seconds_count{call="POST /v2/emails"}')).toBe(2);
    expect(delta('smtp_gateway_cakemail_request_duration_seconds_bucket{le="30",call="POST /v2/emails"}')).toBe(2);
    // The login and the caches' lookups before it were counted too, under their own calls.
    expect(after.get('smtp_gateway_cakemail_requests_total{call="POST /token",outcome="2xx"}')).toBeGreaterThanOrEqual(1);
  });

  it.each<{ name: string; fault: Fault; line: string; calls: number; accepted: number }>([
    { name: '201 rejected', fault: { sendStatus: 'rejected' }, line: '550 5.6.0 Cakemail rejected the message (status rejected)', calls: 1, accepted: 1 },
    { name: '201 error', fault: { sendStatus: 'error' }, line: '550 5.6.0 Cakemail rejected the message (status error)', calls: 1, accepted: 1 },
    { name: '400', fault: { status: 400 }, line: '550 5.6.0 Cakemail rejected the message: Fault injected: bad request', calls: 1, accepted: 0 },
    {
      name: '400 with the API message',
      fault: { status: 400, body: { detail: [{ msg: 'Sender is suspended', type: 'bad_request' }] } },
      line: '550 5.6.0 Cakemail rejected the message: Sender is suspended',
      calls: 1,
      accepted: 0,
    },
    { name: '403', fault: { status: 403 }, line: '550 5.7.1 Cakemail refused this sender or account: Fault injected: forbidden', calls: 1, accepted: 0 },
    { name: '404', fault: { status: 404 }, line: '550 5.6.0 Cakemail rejected the message: Fault injected: Not Found', calls: 1, accepted: 0 },
    { name: '422', fault: { status: 422 }, line: '550 5.6.0 Cakemail rejected the message: Fault injected: validation error', calls: 1, accepted: 0 },
    {
      name: '422 with the API message',
      fault: { status: 422, body: validation },
      line: '550 5.6.0 Cakemail rejected the message: ensure this value has at least 1 characters',
      calls: 1,
      accepted: 0,
    },
    { name: '429 with a Retry-After past the deadline', fault: { status: 429, retryAfter: 30 }, line: RATE_LIMITED, calls: 1, accepted: 0 },
  ])('$name → $line', async ({ fault, line, calls, accepted }) => {
    gw.fake.faults.set('send', fault);
    const reply = await gw.sendRaw(FROM, ['to@example.net'], textMessage({ subject: 'answer' }));
    expect(lineOf(reply)).toBe(line);
    expect(sendCalls(gw.fake)).toHaveLength(calls);
    expect(gw.fake.sent()).toHaveLength(accepted);
  });

  it('201 queued → 250 2.0.0 Ok: queued as <the id Cakemail answered>', async () => {
    const reply = await gw.sendRaw(FROM, ['to@example.net'], textMessage({ subject: 'queued' }));
    const sent = gw.fake.sent();
    expect(sent.map((e) => e.status)).toEqual(['queued']);
    expect(lineOf(reply)).toBe(`250 2.0.0 Ok: queued as ${sent[0]?.id}`);
    expect((sendCalls(gw.fake)[0]?.response as { data: { id: string } }).data.id).toBe(sent[0]?.id);
  });

  // A send is repeated by the gateway only when Cakemail certainly did not process it (429, 503);
  // after a 500, 502, 504, a reset or no answer it may have queued the email, so the client gets
  // a 4xx at once and its retry decides: never two copies from the gateway's own retries.
  it.each<{ name: string; fault: Fault; line: string | RegExp; repeated: boolean }>([
    { name: '429 without Retry-After, every time', fault: { status: 429 }, line: RATE_LIMITED, repeated: true },
    { name: '503 every time', fault: { status: 503 }, line: UNAVAILABLE, repeated: true },
    { name: '500 every time', fault: { status: 500 }, line: UNAVAILABLE, repeated: false },
    { name: '502 every time', fault: { status: 502 }, line: UNAVAILABLE, repeated: false },
    { name: '504 every time', fault: { status: 504 }, line: UNAVAILABLE, repeated: false },
    { name: 'connection reset every time', fault: { reset: true }, line: UNAVAILABLE, repeated: false },
    { name: 'no answer (timeout) every time', fault: { hang: true }, line: UNAVAILABLE, repeated: false },
  ])('$name → repeated inside the deadline: $repeated, then $line', async ({ fault, line, repeated }) => {
    gw.fake.faults.set('send', fault);
    const client = await gw.login();
    expect(lineOf(await client.command(`MAIL FROM:<${FROM}>`))).toBe('250 2.1.0 Accepted');
    expect(lineOf(await client.command('RCPT TO:<to@example.net>'))).toBe('250 2.1.5 Accepted');
    expect(lineOf(await client.command('DATA'))).toMatch(/^354 /);
    const started = Date.now();
    client.write(`${textMessage({ subject: 'retried' })}.\r\n`);
    const reply = await client.read();
    const elapsed = Date.now() - started;
    client.close();
    expect(lineOf(reply)).toBe(line);
    if (repeated) expect(sendCalls(gw.fake).length).toBeGreaterThanOrEqual(2);
    else expect(sendCalls(gw.fake)).toHaveLength(1);
    expect(gw.fake.sent()).toHaveLength(0);
    // generous upper bound: the deadline plus slack for a loaded machine
    expect(elapsed).toBeLessThan(DEADLINE_MS + 3000);
  });

  it.each<{ name: string; fault: Fault; calls: number; firstFault: string }>([
    { name: '503 twice', fault: { status: 503, times: 2 }, calls: 3, firstFault: 'status' },
    { name: '429 once', fault: { status: 429, times: 1 }, calls: 2, firstFault: 'status' },
  ])('$name, then 201 → 250 with the id of the attempt that worked', async ({ name, fault, calls, firstFault }) => {
    gw.fake.faults.set('send', fault);
    // a subject of its own: identical bytes would be taken for a retry of an earlier case
    const reply = await gw.sendRaw(FROM, ['to@example.net'], textMessage({ subject: `eventually, after ${name}` }));
    const sent = gw.fake.sent();
    expect(sent).toHaveLength(1);
    expect(lineOf(reply)).toBe(`250 2.0.0 Ok: queued as ${sent[0]?.id}`);
    const record = sendCalls(gw.fake);
    expect(record).toHaveLength(calls);
    expect(record[0]?.fault).toBe(firstFault);
    expect(record.at(-1)?.status).toBe(201);
  });
});

describe('a send Cakemail may have processed is left to the client to retry', () => {
  const gw = useGateway({ env: FAST }, { resetFake: true });

  it.each<{ name: string; fault: Fault }>([
    { name: '500 once', fault: { status: 500, times: 1 } },
    { name: 'a connection reset once', fault: { reset: true, times: 1 } },
  ])('$name → 451 at once, one call; the client retry → 250, one more call', async ({ name, fault }) => {
    gw.fake.faults.set('send', fault);
    const message = textMessage({ subject: `left to the client after ${name}`, headers: [`Message-ID: <left-${name.replace(/\W/g, '')}@example.com>`] });
    expect(lineOf(await gw.sendRaw(FROM, ['to@example.net'], message))).toBe(UNAVAILABLE);
    expect(sendCalls(gw.fake)).toHaveLength(1);
    const retry = await gw.sendRaw(FROM, ['to@example.net'], message);
    expect(lineOf(retry)).toBe(`250 2.0.0 Ok: queued as ${gw.fake.sent()[0]?.id}`);
    expect(sendCalls(gw.fake)).toHaveLength(2);
  });
});

describe('401 from the API: refresh the token once', () => {
  let gw: RunningGateway;
  beforeEach(async () => {
    gw = await startGateway({ env: FAST });
    expect((await gw.send({ from: FROM, to: 'warm@example.net', subject: 'warm', text: 'warm' })).line).toMatch(QUEUED);
    gw.fake.reset();
  });
  afterEach(async () => {
    await gw.close();
  });

  const trail = (fake: FakeCakemail) =>
    fake.calls.map((c) => [c.route, c.status, c.route === 'token' ? (c.body as { grant_type?: string }).grant_type : undefined]);

  it('an expired access token: 401, refresh, the send again → 250', async () => {
    gw.fake.expireTokens();
    const reply = await gw.sendRaw(FROM, ['to@example.net'], textMessage({ subject: 'after expiry' }));
    const sent = gw.fake.sent();
    expect(lineOf(reply)).toBe(`250 2.0.0 Ok: queued as ${sent[0]?.id}`);
    expect(trail(gw.fake)).toEqual([
      ['send', 401, undefined],
      ['token', 200, 'refresh_token'],
      ['send', 201, undefined],
    ]);
    expect(gw.fake.callsTo('token')[0]?.body).toEqual({ grant_type: 'refresh_token', refresh_token: '***' });
  });

  it('401 again after the refresh → 451 4.3.0 (temporary), one refresh only', async () => {
    gw.fake.faults.set('send', { status: 401 });
    const reply = await gw.sendRaw(FROM, ['to@example.net'], textMessage({ subject: 'still 401' }));
    expect(lineOf(reply)).toBe(UNAVAILABLE);
    expect(trail(gw.fake)).toEqual([
      ['send', 401, undefined],
      ['token', 200, 'refresh_token'],
      ['send', 401, undefined],
    ]);
    expect(gw.fake.sent()).toHaveLength(0);
  });

  it('a refused refresh → 451 4.3.0; the next AUTH logs in again with the password', async () => {
    gw.fake.expireTokens();
    gw.fake.faults.set('token', { status: 401, times: 1 });
    const reply = await gw.sendRaw(FROM, ['to@example.net'], textMessage({ subject: 'refresh refused' }));
    expect(lineOf(reply)).toBe(UNAVAILABLE);
    expect(trail(gw.fake)).toEqual([
      ['send', 401, undefined],
      ['token', 401, 'refresh_token'],
    ]);
    gw.fake.reset();
    const again = await gw.sendRaw(FROM, ['to@example.net'], textMessage({ subject: 'logged in again' }));
    expect(lineOf(again)).toBe(`250 2.0.0 Ok: queued as ${gw.fake.sent()[0]?.id}`);
    expect(trail(gw.fake)).toEqual([
      ['token', 200, 'password'],
      ['send', 201, undefined],
    ]);
  });
});

describe('a retried message is not sent twice to a recipient Cakemail accepted', () => {
  const gw = useGateway({ env: FAST }, { perTest: true });

  const message = textMessage({ to: 'a@example.net, b@example.net', subject: 'Twice?', headers: ['Message-ID: <retry-1@example.com>'], body: 'Same bytes' });
  const RCPTS = ['a@example.net', 'b@example.net'];

  it('one recipient fails temporarily (429 once): 4xx; the same bytes again → only that recipient is sent, 250', async () => {
    gw.fake.faults.set('send', { status: 429, retryAfter: 30, times: 1, match: { email: 'b@example.net' } });
    const first = await gw.sendRaw(FROM, RCPTS, message);
    expect(lineOf(first)).toBe(RATE_LIMITED);
    expect(gw.fake.sent().map((e) => e.body.email)).toEqual(['a@example.net']);
    const idA = gw.fake.sent()[0]?.id;

    const retry = await gw.sendRaw(FROM, RCPTS, message);
    expect(lineOf(retry)).toBe(`250 2.0.0 Ok: queued as ${idA} (+1 more)`);
    expect(sentTo(gw.fake, 'a@example.net')).toHaveLength(1);
    expect(sentTo(gw.fake, 'b@example.net')).toHaveLength(1);
    expect(sendCalls(gw.fake).map((c) => [(c.body as { email: string }).email, c.status])).toEqual(
      expect.arrayContaining([
        ['a@example.net', 201],
        ['b@example.net', 429],
        ['b@example.net', 201],
      ]),
    );
    expect(sendCalls(gw.fake)).toHaveLength(3);
    // the log names both ids and the one already accepted
    const relayed = gw.logs().filter((l) => l['event'] === 'relayed');
    expect(relayed.at(-1)).toMatchObject({ recipients: 2, accepted: 2, alreadyAccepted: 1, temporaryFailures: 0 });
  });

  it('one recipient down for a while (5xx until it recovers), retried through nodemailer with the same raw bytes', async () => {
    gw.fake.faults.set('send', { status: 503, match: { email: 'b@example.net' } });
    const first = await gw.send({ envelope: { from: FROM, to: RCPTS }, raw: message });
    expect(first.line).toBe(UNAVAILABLE);
    expect(first.command).toBe('DATA');
    expect(gw.fake.sent().map((e) => e.body.email)).toEqual(['a@example.net']);

    gw.fake.faults.clear();
    const retry = await gw.send({ envelope: { from: FROM, to: RCPTS }, raw: message });
    expect(retry.line).toBe(`250 2.0.0 Ok: queued as ${sentTo(gw.fake, 'a@example.net')[0]?.id} (+1 more)`);
    expect(sentTo(gw.fake, 'a@example.net')).toHaveLength(1);
    expect(sentTo(gw.fake, 'b@example.net')).toHaveLength(1);
  });

  it('the retry may come through one more hop (an added Received header) and still skips the accepted recipient', async () => {
    gw.fake.faults.set('send', { status: 429, retryAfter: 30, times: 1, match: { email: 'b@example.net' } });
    expect(lineOf(await gw.sendRaw(FROM, RCPTS, message))).toBe(RATE_LIMITED);
    const relayed = `Received: from relay.example by gateway; Mon, 1 Jan 2024 00:00:00 +0000\r\n${message}`;
    const retry = await gw.sendRaw(FROM, RCPTS, relayed);
    expect(lineOf(retry)).toMatch(/^250 2\.0\.0 Ok: queued as [0-9a-f-]{36} \(\+1 more\)$/);
    expect(sentTo(gw.fake, 'a@example.net')).toHaveLength(1);
    expect(sentTo(gw.fake, 'b@example.net')).toHaveLength(1);
  });

  it('identical bytes sent again after a 250 count as a retry too (the lost-250 case): not sent again, same id', async () => {
    // The Message-ID says it is the same message. Without Message-ID and Date it is not: see below.
    const first = await gw.sendRaw(FROM, ['a@example.net'], message);
    const again = await gw.sendRaw(FROM, ['a@example.net'], message);
    expect(lineOf(again)).toBe(lineOf(first));
    expect(lineOf(again)).toBe(`250 2.0.0 Ok: queued as ${gw.fake.sent()[0]?.id}`);
    expect(sendCalls(gw.fake)).toHaveLength(1);
  });

  const anonymous = message.replace('Message-ID: <retry-1@example.com>\r\n', '');

  it('without Message-ID and Date, identical bytes after a 250 are a new message: sent again (a cron job loses nothing)', async () => {
    expect(anonymous).not.toMatch(/^(message-id|date):/im);
    expect(lineOf(await gw.sendRaw(FROM, RCPTS, anonymous))).toMatch(/\(\+1 more\)$/);
    expect(lineOf(await gw.sendRaw(FROM, RCPTS, anonymous))).toMatch(/\(\+1 more\)$/);
    expect(sentTo(gw.fake, 'a@example.net')).toHaveLength(2);
    expect(sentTo(gw.fake, 'b@example.net')).toHaveLength(2);
  });

  it('without Message-ID and Date, the retry after a 4xx still skips the accepted recipient, and is then forgotten', async () => {
    gw.fake.faults.set('send', { status: 429, retryAfter: 30, times: 1, match: { email: 'b@example.net' } });
    expect(lineOf(await gw.sendRaw(FROM, RCPTS, anonymous))).toBe(RATE_LIMITED);
    expect(lineOf(await gw.sendRaw(FROM, RCPTS, anonymous))).toMatch(/\(\+1 more\)$/);
    expect(sentTo(gw.fake, 'a@example.net')).toHaveLength(1);
    expect(sentTo(gw.fake, 'b@example.net')).toHaveLength(1);
    // the retry was answered: the same bytes once more are a new message
    expect(lineOf(await gw.sendRaw(FROM, RCPTS, anonymous))).toMatch(/\(\+1 more\)$/);
    expect(sentTo(gw.fake, 'a@example.net')).toHaveLength(2);
    expect(sentTo(gw.fake, 'b@example.net')).toHaveLength(2);
  });

  it('a different message to the same recipients is sent to both again', async () => {
    expect(lineOf(await gw.sendRaw(FROM, RCPTS, message))).toMatch(/\(\+1 more\)$/);
    const other = message.replace('Same bytes', 'Other bytes');
    expect(lineOf(await gw.sendRaw(FROM, RCPTS, other))).toMatch(/\(\+1 more\)$/);
    expect(sentTo(gw.fake, 'a@example.net')).toHaveLength(2);
    expect(sentTo(gw.fake, 'b@example.net')).toHaveLength(2);
  });
});

describe('partial acceptance', () => {
  // The bounces these cause are bounce.e2e.test.ts's subject; here only what the client sees counts.
  const gw = useGateway({ env: { ...FAST, BOUNCE_PARTIAL_FAILURES: 'off' } }, { resetFake: true });

  const refusedBody = { detail: [{ loc: ['body', 'email'], msg: 'Contact is unsubscribed', type: 'value_error' }] };

  it('some accepted, one refused permanently → 250 naming the refused recipient', async () => {
    gw.fake.faults.set('send', { status: 422, body: refusedBody, match: { email: 'b@example.net' } });
    const reply = await gw.sendRaw(FROM, ['a@example.net', 'b@example.net', 'c@example.net'], textMessage({ subject: 'partial 1' }));
    const sent = gw.fake.sent();
    expect(sent.map((e) => e.body.email).sort()).toEqual(['a@example.net', 'c@example.net']);
    expect(lineOf(reply)).toBe(
      `250 2.0.0 Ok: queued as ${sentTo(gw.fake, 'a@example.net')[0]?.id} (+1 more); not sent to b@example.net: Cakemail rejected the message: Contact is unsubscribed`,
    );
  });

  it('some accepted, two refused (422 and 403) → 250 naming both', async () => {
    gw.fake.faults.set('send', { status: 422, body: refusedBody, match: { email: 'b@example.net' } });
    gw.fake.faults.add('send', { status: 403, match: { email: 'c@example.net' } });
    const reply = await gw.sendRaw(FROM, ['a@example.net', 'b@example.net', 'c@example.net'], textMessage({ subject: 'partial 2' }));
    expect(gw.fake.sent().map((e) => e.body.email)).toEqual(['a@example.net']);
    expect(lineOf(reply)).toBe(
      `250 2.0.0 Ok: queued as ${gw.fake.sent()[0]?.id}; not sent to b@example.net, c@example.net: Cakemail rejected the message: Contact is unsubscribed`,
    );
  });

  it('every recipient refused → 5xx, nothing sent', async () => {
    gw.fake.faults.set('send', { status: 422 });
    const reply = await gw.sendRaw(FROM, ['a@example.net', 'b@example.net'], textMessage({ subject: 'all refused' }));
    expect(lineOf(reply)).toBe('550 5.6.0 Cakemail rejected the message: Fault injected: validation error');
    expect(sendCalls(gw.fake)).toHaveLength(2);
    expect(gw.fake.sent()).toHaveLength(0);
  });

  it('accepted + refused + temporary → 4xx; the retry skips the accepted one and names the refused one', async () => {
    const message = textMessage({ subject: 'mixed' });
    const rcpts = ['a@example.net', 'b@example.net', 'c@example.net'];
    gw.fake.faults.set('send', { status: 422, body: refusedBody, match: { email: 'b@example.net' } });
    gw.fake.faults.add('send', { status: 429, retryAfter: 30, match: { email: 'c@example.net' } });
    expect(lineOf(await gw.sendRaw(FROM, rcpts, message))).toBe(RATE_LIMITED);
    expect(gw.fake.sent().map((e) => e.body.email)).toEqual(['a@example.net']);
    const idA = gw.fake.sent()[0]?.id;

    gw.fake.faults.set('send', { status: 422, body: refusedBody, match: { email: 'b@example.net' } });
    const retry = await gw.sendRaw(FROM, rcpts, message);
    expect(lineOf(retry)).toBe(`250 2.0.0 Ok: queued as ${idA} (+1 more); not sent to b@example.net: Cakemail rejected the message: Contact is unsubscribed`);
    expect(gw.fake.sent().map((e) => e.body.email)).toEqual(['a@example.net', 'c@example.net']);
  });
});

describe('limits', () => {
  const gw = useGateway({ env: { ...FAST, MAX_RECIPIENTS: '3', MAX_MESSAGE_SIZE: '4096' } }, { resetFake: true });

  it('MAX_RECIPIENTS=3: the 4th RCPT gets 452 4.5.3; the message goes to the first three only', async () => {
    const client = await gw.login();
    expect(lineOf(await client.command(`MAIL FROM:<${FROM}>`))).toBe('250 2.1.0 Accepted');
    for (const r of ['r1', 'r2', 'r3']) expect(lineOf(await client.command(`RCPT TO:<${r}@example.net>`))).toBe('250 2.1.5 Accepted');
    expect(lineOf(await client.command('RCPT TO:<r4@example.net>'))).toBe('452 4.5.3 Too many recipients');
    expect(lineOf(await client.command('RCPT TO:<r5@example.net>'))).toBe('452 4.5.3 Too many recipients');
    expect(lineOf(await client.command('DATA'))).toMatch(/^354 /);
    client.write(`${textMessage({ subject: 'three' })}.\r\n`);
    const reply = await client.read();
    client.close();
    const sent = gw.fake.sent();
    expect(sent.map((e) => e.body.email).sort()).toEqual(['r1@example.net', 'r2@example.net', 'r3@example.net']);
    expect(lineOf(reply)).toBe(`250 2.0.0 Ok: queued as ${sentTo(gw.fake, 'r1@example.net')[0]?.id} (+2 more)`);
  });

  it('MAX_MESSAGE_SIZE: SIZE= over the limit at MAIL FROM → 552 5.3.4; at the limit → 250', async () => {
    const client = await gw.login();
    expect(lineOf(await client.command(`MAIL FROM:<${FROM}> SIZE=4097`))).toBe('552 5.3.4 Message size exceeds fixed maximum message size');
    expect(lineOf(await client.command(`MAIL FROM:<${FROM}> SIZE=4096`))).toBe('250 2.1.0 Accepted');
    client.close();
    expect(sendCalls(gw.fake)).toHaveLength(0);
  });

  it('MAX_MESSAGE_SIZE: a message over the limit without SIZE= → 552 5.3.4 after DATA, nothing sent; the session goes on', async () => {
    const client = await gw.login();
    const big = await client.sendMail(FROM, ['a@example.net'], textMessage({ subject: 'big', body: 'x'.repeat(5000) }));
    expect(lineOf(big)).toBe('552 5.3.4 Message size exceeds fixed maximum message size');
    expect(sendCalls(gw.fake)).toHaveLength(0);
    const small = await client.sendMail(FROM, ['a@example.net'], textMessage({ subject: 'small' }));
    client.close();
    expect(lineOf(small)).toBe(`250 2.0.0 Ok: queued as ${gw.fake.sent()[0]?.id}`);
    expect(gw.fake.sent().map((e) => e.body.content.subject)).toEqual(['small']);
  });

  it('MAX_MESSAGE_SIZE through nodemailer (an attachment over the limit) → 552 5.3.4, nothing sent', async () => {
    const reply = await gw.send({ from: FROM, to: 'a@example.net', subject: 'big', text: 'x', attachments: [{ filename: 'big.pdf', content: Buffer.alloc(8000, 1) }] });
    expect(reply.code).toBe(552);
    expect(reply.line).toMatch(/^552 5\.3\.4 /);
    expect(sendCalls(gw.fake)).toHaveLength(0);
  });
});

describe('swaks', () => {
  const gw = useGateway();

  it('swaks -tls --auth PLAIN delivers and shows the Cakemail id in the 250', async () => {
    const args = [
      '--server', `127.0.0.1:${gw.ports.smtp}`,
      '-tls',
      '--auth', 'PLAIN',
      '--auth-user', DEFAULT_USER.email,
      '--auth-password', DEFAULT_USER.password,
      '--from', FROM,
      '--to', 'someone@example.net',
      '--header', 'Subject: Hello from swaks',
      '--body', 'Sent by swaks',
    ];
    const output = await new Promise<string>((resolve) =>
      execFile('swaks', args, { timeout: 20_000 }, (_err, stdout, stderr) => resolve(`${stdout}${stderr}`)),
    );
    const sent = gw.fake.sent();
    expect(sent, output).toHaveLength(1);
    expect(output).toContain(`<~  250 2.0.0 Ok: queued as ${sent[0]?.id}`);
    expect(output).toContain('<~  235 2.7.0 Authentication successful');
    expect(sent[0]?.body).toMatchObject({ email: 'someone@example.net', sender: { id: DEFAULT_SENDER.id }, content: { subject: 'Hello from swaks' } });
    expect(sent[0]?.body.content.text).toMatch(/^Sent by swaks\s*$/);
    // swaks prints the password only base64-encoded in its AUTH line; the gateway never echoes it
    expect(output.split('\n').filter((l) => l.startsWith('<~')).join('\n')).not.toContain(DEFAULT_USER.password);
  });
});
