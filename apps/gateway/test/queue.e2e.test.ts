/**
 * QUEUE_MODE end to end: the whole gateway (createGateway(loadConfig(...)))
 * with its queue on a real redis-server with AOF on, in front of the testkit's
 * fake Cakemail API switched to an outage and back, real SMTP clients
 * (nodemailer and the raw ladder) over real TLS.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openQueue } from '@cakemail-smtp/queue';
import { DEFAULT_SENDER, DEFAULT_USER, startRedisServer, type SentEmail } from '@cakemail-smtp/testkit';
import type { Variable } from '../src/config/index.js';
import { startGateway, textMessage, TOKEN_PATTERN, type RunningGateway, type StartOptions } from './e2e-helpers.js';
import { eventually, queueEnv, QUEUE_KEY, startAofRedis, type AofRedis } from './queue-helpers.js';

let redis: AofRedis;
let gw: RunningGateway | undefined;

beforeEach(async () => {
  redis = await startAofRedis();
});

afterEach(async () => {
  await gw?.close();
  gw = undefined;
  await redis.stop();
});

async function start(mode: 'fallback' | 'always', env: Partial<Record<Variable, string>> = {}, options: StartOptions = {}): Promise<RunningGateway> {
  gw = await startGateway({ ...options, env: { ...(queueEnv(redis, mode) as Partial<Record<Variable, string>>), ...env } });
  return gw;
}

const isBounce = (e: SentEmail): boolean => (e.body.additional_headers ?? []).some((h) => h.name === 'X-Gateway-Bounce');
const deliveredTo = (g: RunningGateway, email: string): SentEmail[] => g.fake.sent().filter((e) => !isBounce(e) && e.body.email === email);
const bouncesOf = (g: RunningGateway): SentEmail[] => g.fake.sent().filter(isBounce);
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe('QUEUE_MODE=fallback', () => {
  it('200 messages sent during a 30-second outage all get a 250 "queued as", and each reaches Cakemail exactly once after it', async () => {
    // The outage answers 503 with a Retry-After past the deadline, so each send gives up at once
    // and its message is queued at once. The deadline stays long enough that no delivery after
    // the outage times out on a loaded machine: a send cut by its deadline may still have
    // reached Cakemail, and its retry would be a second copy (the documented limit of a timeout).
    const g = await start('fallback', { UPSTREAM_DEADLINE_MS: '9000', SHUTDOWN_TIMEOUT_MS: '10000' });
    expect(g.logs().some((l) => l['msg'] === 'queue open' && l['mode'] === 'fallback')).toBe(true);
    g.fake.faults.set('send', { status: 503, retryAfter: 10 });
    const outage = Date.now();
    const recipients = Array.from({ length: 200 }, (_, i) => `outage-${i}@example.net`);
    const replies: string[] = [];
    // 10 clients at a time, each a connection of its own (MAX_CONNECTIONS_PER_IP is 20)
    for (let i = 0; i < recipients.length; i += 10) {
      const batch = recipients.slice(i, i + 10);
      const outcomes = await Promise.all(
        batch.map((to) => g.send({ from: DEFAULT_SENDER.email, to, subject: `outage ${to}`, text: `Hello ${to}`, messageId: `<${to}.${outage}@example.com>` })),
      );
      replies.push(...outcomes.map((o) => o.line));
    }
    expect(replies).toHaveLength(200);
    for (const line of replies) expect(line).toMatch(/^250 2\.0\.0 Ok: queued as [0-9a-f]{20}; delivery to Cakemail deferred$/);
    expect(new Set(replies).size).toBe(200);
    expect(g.fake.sent()).toHaveLength(0);
    // the outage lasts 30 seconds at least
    await sleep(Math.max(0, 30_000 - (Date.now() - outage)));
    expect(g.fake.sent()).toHaveLength(0);
    g.fake.faults.clear();

    await eventually(() => recipients.every((to) => deliveredTo(g, to).length > 0), 180_000, 'every recipient delivered');
    const queue = await openQueue({ redisUrl: redis.url, maxBytes: 0 });
    try {
      await eventually(async () => (await queue.stats()).depth === 0, 60_000, 'an empty queue');
    } finally {
      await queue.close();
    }
    // a little longer: nothing is sent twice
    await sleep(2000);
    for (const to of recipients) expect(deliveredTo(g, to), to).toHaveLength(1);
    expect(g.fake.sent()).toHaveLength(200);
    expect(bouncesOf(g)).toHaveLength(0);
  }, 600_000);

  it('a permanent refusal after queueing sends exactly one bounce to the envelope sender, naming the recipient and the reason', async () => {
    const g = await start('fallback');
    const to = 'refused-later@example.net';
    g.fake.faults.set('send', { status: 503, match: { email: to } });
    const outcome = await g.send({ from: DEFAULT_SENDER.email, to, subject: 'refused later', text: 'Hello' });
    expect(outcome.line).toMatch(/^250 2\.0\.0 Ok: queued as \w+; delivery to Cakemail deferred$/);
    // Cakemail now refuses it for good
    g.fake.faults.set('send', { status: 400, match: { email: to } });
    await eventually(() => bouncesOf(g).length > 0, 60_000, 'the bounce');
    await sleep(3000);
    const bounces = bouncesOf(g);
    expect(bounces).toHaveLength(1);
    expect(bounces[0]?.body.email).toBe(DEFAULT_SENDER.email);
    expect(bounces[0]?.body.content.text).toContain(to);
    expect(deliveredTo(g, to)).toHaveLength(0);
  }, 120_000);

  it('a message still undeliverable at QUEUE_MAX_AGE_MS is bounced (4.4.7), once', async () => {
    const g = await start('fallback', { QUEUE_MAX_AGE_MS: '4000' });
    const to = 'never-reachable@example.net';
    g.fake.faults.set('send', { status: 503, match: { email: to } });
    const outcome = await g.send({ from: DEFAULT_SENDER.email, to, subject: 'expires', text: 'Hello' });
    expect(outcome.line).toMatch(/deferred$/);
    await eventually(() => bouncesOf(g).length > 0, 60_000, 'the expiry bounce');
    await sleep(3000);
    const bounces = bouncesOf(g);
    expect(bounces).toHaveLength(1);
    expect(bounces[0]?.body.email).toBe(DEFAULT_SENDER.email);
    expect(bounces[0]?.body.content.text).toContain(to);
    expect(JSON.stringify(bounces[0]?.body.content)).toContain('4.4.7');
  }, 120_000);

  it('a full queue (QUEUE_MAX_BYTES) gets the 4xx the client would get without the queue; nothing is stored', async () => {
    const g = await start('fallback', { QUEUE_MAX_BYTES: '1' });
    g.fake.faults.set('send', { status: 503 });
    const outcome = await g.send({ from: DEFAULT_SENDER.email, to: 'full@example.net', subject: 'full', text: 'Hello' });
    expect(outcome.ok).toBe(false);
    expect(outcome.code).toBeGreaterThanOrEqual(400);
    expect(outcome.code).toBeLessThan(500);
    const queue = await openQueue({ redisUrl: redis.url, maxBytes: 0 });
    try {
      expect((await queue.stats()).depth).toBe(0);
    } finally {
      await queue.close();
    }
  }, 60_000);
});

describe('the start in queue mode', () => {
  it('warns, at warn level, of each Redis setting that breaks the promise (here AOF off), and serves', async () => {
    const plain = await startRedisServer(); // appendonly no
    try {
      const g = await start('always', { REDIS_URL: plain.url });
      const warnings = g.logs().filter((l) => l['level'] === 'warn' && l['store'] === 'queue');
      expect(warnings.map((l) => l['msg'])).toEqual([expect.stringContaining('Redis runs without AOF (appendonly no)')]);
      expect(g.logs().find((l) => l['msg'] === 'queue open')).toMatchObject({ appendonly: 'no', maxmemoryPolicy: 'noeviction' });
      const outcome = await g.send({ from: DEFAULT_SENDER.email, to: 'aof-off@example.net', subject: 'aof off', text: 'Hello' });
      expect(outcome.line).toMatch(/^250 2\.0\.0 Ok: queued as /);
      await gw?.close();
      gw = undefined;
    } finally {
      await plain.stop();
    }
  }, 60_000);

  it('the AOF Redis the README asks for gives no warning', async () => {
    const g = await start('always');
    expect(g.logs().filter((l) => l['level'] === 'warn' && l['store'] === 'queue')).toEqual([]);
    expect(g.logs().find((l) => l['msg'] === 'queue open')).toMatchObject({ mode: 'always', appendonly: 'yes', appendfsync: 'always' });
  }, 60_000);
});

describe('QUEUE_MODE=always', () => {
  it('answers 250 "queued as <id>" once Redis has the message, then the workers deliver it', async () => {
    const g = await start('always');
    const outcome = await g.send({ from: DEFAULT_SENDER.email, to: ['a@example.net', 'b@example.net'], subject: 'always', text: 'Hello' });
    expect(outcome.line).toMatch(/^250 2\.0\.0 Ok: queued as [0-9a-f]{20}$/);
    await eventually(() => deliveredTo(g, 'a@example.net').length === 1 && deliveredTo(g, 'b@example.net').length === 1, 60_000, 'the delivery');
  }, 60_000);

  it('close (SIGTERM) stops the workers within SHUTDOWN_TIMEOUT_MS and returns a delivery under way to the queue', async () => {
    const g = await start('always', { SHUTDOWN_TIMEOUT_MS: '5000', UPSTREAM_DEADLINE_MS: '5000' });
    g.fake.faults.set('send', { hang: true });
    const outcome = await g.send({ from: DEFAULT_SENDER.email, to: 'in-flight@example.net', subject: 'in flight', text: 'Hello' });
    expect(outcome.line).toMatch(/^250 2\.0\.0 Ok: queued as /);
    await eventually(() => g.fake.callsTo('send').length >= 1, 30_000, 'a delivery under way');
    const queue = await openQueue({ redisUrl: redis.url, maxBytes: 0 });
    try {
      expect((await queue.queue.getWorkers()).length).toBeGreaterThan(0);
      const started = Date.now();
      await g.gateway.close();
      expect(Date.now() - started).toBeLessThan(5000 + 10_000);
      // no worker left on the queue; the message waits for another replica, its recipient still pending
      expect(await queue.queue.getWorkers()).toEqual([]);
      const entries = await queue.list();
      expect(entries.map((e) => [e.recipients, e.state === 'active'])).toEqual([[['in-flight@example.net'], false]]);
    } finally {
      await queue.close();
    }
  }, 60_000);

  it('a full queue (QUEUE_MAX_BYTES) gets 452 4.3.1, and nothing reaches Cakemail', async () => {
    const g = await start('always', { QUEUE_MAX_BYTES: '1' });
    const reply = await g.sendRaw(DEFAULT_SENDER.email, ['full@example.net'], textMessage({ to: 'full@example.net', subject: 'full' }));
    expect(reply.raw).toMatch(/^452 4\.3\.1 /);
    await sleep(1000);
    expect(g.fake.callsTo('send')).toHaveLength(0);
  }, 60_000);

  it('Redis (its AOF) holds neither the body nor a token nor the password in plain text; the CLI lists and bounces the message', async () => {
    const g = await start('always');
    // Cakemail throttles, asking for an hour: after its first attempt the message waits, delayed
    g.fake.faults.set('send', { status: 429, retryAfter: 3600 });
    const secretText = 'Quarterly-salary-figures-7f3a9c-are-confidential';
    const subject = 'Subject-line-d41d8cd9-personal';
    const reply = await g.sendRaw(
      DEFAULT_SENDER.email,
      ['held@example.net'],
      textMessage({ to: 'held@example.net', subject, body: `${secretText}\r\n${secretText}` }),
    );
    expect(reply.raw).toMatch(/^250 2\.0\.0 Ok: queued as [0-9a-f]{20}\r\n$/);
    const id = /queued as ([0-9a-f]{20})/.exec(reply.raw)?.[1] ?? '';
    // the worker's attempt failed: its writes are in the AOF too
    await eventually(() => g.fake.callsTo('send').length >= 1, 60_000, 'a delivery attempt');

    const files = (await redis.files()).toString('latin1');
    expect(files.length).toBeGreaterThan(1000);
    expect(files).toContain(id);
    expect(files).not.toContain(secretText);
    expect(files).not.toContain(subject);
    expect(files).not.toMatch(TOKEN_PATTERN);
    expect(files).not.toContain(DEFAULT_USER.password);
    expect(files).not.toContain(QUEUE_KEY);
    // nor in the logs
    expect(g.logText()).not.toMatch(TOKEN_PATTERN);
    expect(g.logText()).not.toContain(QUEUE_KEY);
    expect(g.logText()).not.toContain(DEFAULT_USER.password);

    // the operator's commands, on the gateway's own queue
    const { execFile } = await import('node:child_process');
    const { fileURLToPath } = await import('node:url');
    const main = fileURLToPath(new URL('../dist/main.js', import.meta.url));
    const cli = (...args: string[]): Promise<{ code: number; stdout: string }> =>
      new Promise((resolve) => {
        execFile(process.execPath, [main, 'queue', ...args], { env: { PATH: process.env['PATH'] ?? '', REDIS_URL: redis.url } }, (err, stdout) =>
          resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout }),
        );
      });
    const list = await cli('list');
    expect(list.code).toBe(0);
    expect(list.stdout).toContain(id);
    expect(list.stdout).toContain('held@example.net');
    expect(list.stdout).not.toContain(secretText);
    await eventually(async () => (await cli('list')).stdout.includes('delayed'), 30_000, 'the message waiting for its retry');
    // Cakemail is back, and the operator returns the message: the bounce goes out, the message is not sent
    g.fake.faults.clear();
    const bounce = await cli('bounce', id);
    expect(bounce.code).toBe(0);
    expect(bounce.stdout).toContain(`${id}: returning to its sender`);
    await eventually(() => bouncesOf(g).length === 1, 60_000, 'the operator bounce');
    expect(bouncesOf(g)[0]?.body.email).toBe(DEFAULT_SENDER.email);
    expect(deliveredTo(g, 'held@example.net')).toHaveLength(0);
    await eventually(async () => !(await cli('list')).stdout.includes(id), 30_000, 'the message gone from the queue');
  }, 120_000);
});
