// The queue modes on the wire: a real SMTP client (nodemailer over STARTTLS) through smtp-core's
// server and the relay backend, the fake Cakemail API, and the queue on a real redis-server (AOF).
import { randomBytes } from 'node:crypto';
import { Registry } from 'prom-client';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { openQueue, type MessageQueue } from '@cakemail-smtp/queue';
import { createMemoryAuthLimiter, createSmtpServer, type AuthLimiter, type SmtpServer } from '@cakemail-smtp/smtp-core';
import { serverTlsSettings } from '@cakemail-smtp/tls';
import { createFakeCakemail, createMailer, DEFAULT_SENDER, DEFAULT_USER, testCertificates, type FakeCakemail, startPersistentRedisServer, type PersistentRedis } from '@cakemail-smtp/testkit';
import { createRelayBackend, type RelayBackend } from '../src/relay/backend.js';
import type { QueuedBody, QueuedSession, QueueMode } from '../src/relay/queue.js';
import type { Logger } from '../src/types.js';
import { relayConfig } from './helpers/relay-config.js';

const quiet: Logger = { debug() {}, info() {}, warn() {}, error() {}, child: () => quiet };

let redis: PersistentRedis;
let api: FakeCakemail;
let queue: MessageQueue<QueuedBody, QueuedSession>;
let backend: RelayBackend;
let smtp: SmtpServer;
let limiter: AuthLimiter;
let port: number;
let ca: string;

beforeAll(async () => {
  redis = await startPersistentRedisServer();
});
afterAll(async () => {
  await redis.stop();
});
afterEach(async () => {
  await smtp.close();
  await limiter.close();
  await queue.close(2000);
  await backend.close();
  await api.close();
});

async function start(mode: Exclude<QueueMode, 'off'>, maxBytes = 0): Promise<void> {
  api = createFakeCakemail();
  await api.listen(0);
  const maxAgeMs = 60_000;
  queue = await openQueue<QueuedBody, QueuedSession>({
    redisUrl: redis.url,
    keys: randomBytes(32).toString('base64'),
    maxBytes,
    retryBaseMs: 100,
    retryMaxMs: 400,
    maxAgeMs,
    name: `s${randomBytes(4).toString('hex')}`,
    register: new Registry(),
  });
  backend = createRelayBackend(relayConfig(api.url), { logger: quiet, queue: { mode, queue, maxAgeMs } });
  const certs = await testCertificates();
  ca = certs.ca;
  limiter = createMemoryAuthLimiter({ pairLimit: 10, ipLimit: 30, windowMs: 60_000 });
  smtp = createSmtpServer({
    hostname: 'gateway.test',
    greeting: 'Cakemail SMTP gateway',
    host: '127.0.0.1',
    port: 0,
    securePort: null,
    tls: { current: () => ({ cert: certs.cert, key: certs.key }), onChange: () => () => undefined },
    tlsSettings: serverTlsSettings,
    backend,
    limits: {
      maxMessageSize: 10_485_760,
      maxRecipients: 100,
      idleTimeoutMs: 60_000,
      handshakeTimeoutMs: 10_000,
      maxConnections: 0,
      maxConnectionsPerIp: 20,
      sessionMaxMs: 0,
      maxMessagesPerSession: 100,
      maxJunkCommands: 50,
      maxAuthFailures: 3,
      maxUnauthenticatedCommands: 10,
      bareLf: 'normalize',
      maxInflightBytes: 0,
      closeTimeoutMs: 500,
      maxReplyWaitMs: 0,
    },
    authLimiter: limiter,
  });
  port = (await smtp.listen()).port;
}

async function sendMail(to: string[]): Promise<{ response: string } | { responseCode: number; response: string }> {
  const mailer = createMailer({ port, ca, auth: { user: DEFAULT_USER.email, pass: DEFAULT_USER.password } });
  try {
    const info = await mailer.sendMail({ from: DEFAULT_SENDER.email, to, subject: 'Queued', text: 'Hello from a printer' });
    return { response: info.response };
  } catch (err) {
    const e = err as { responseCode?: number; response?: string };
    if (e.responseCode === undefined) throw err;
    return { responseCode: e.responseCode, response: e.response ?? '' };
  } finally {
    mailer.close();
  }
}

async function waitFor(what: string, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('the queue modes over SMTP', () => {
  it('fallback: a client that never retries gets 250 during an outage, and every recipient gets the message once after it', async () => {
    await start('fallback');
    api.faults.set('send', { status: 503 });
    const sent = await sendMail(['one@example.net', 'two@example.net']);
    expect(sent.response).toMatch(/^250 2\.0\.0 Ok: queued as [0-9a-f]{20}; delivery to Cakemail deferred$/);
    api.faults.clear();
    queue.startWorkers({ concurrency: 2, ...backend.queueHandlers() });
    await waitFor('delivery', async () => (await queue.stats()).depth === 0);
    expect(api.sent().map((e) => e.body.email).sort()).toEqual(['one@example.net', 'two@example.net']);
    expect(api.sent()[0]?.body.content).toMatchObject({ subject: 'Queued', text: 'Hello from a printer' });
  });

  it('always: 250 with the queue id and no POST yet; 452 4.3.1 when the queue is full', async () => {
    await start('always');
    const sent = await sendMail(['one@example.net']);
    expect(sent.response).toMatch(/^250 2\.0\.0 Ok: queued as [0-9a-f]{20}$/);
    expect(api.counts().send ?? 0).toBe(0);
    await smtp.close();
    await limiter.close();
    await queue.close(2000);
    await backend.close();
    await api.close();

    await start('always', 100);
    const full = await sendMail(['one@example.net']);
    expect(full).toEqual({ responseCode: 452, response: '452 4.3.1 Insufficient system storage, try again later' });
  });
});
