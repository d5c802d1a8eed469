// The queue modes on the wire: a real SMTP client (nodemailer over STARTTLS) through smtp-core's
// server and the relay backend, the fake Cakemail API, and the queue on a real redis-server (AOF).
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { MessageQueue } from '@cakemail-smtp/queue';
import { createFakeCakemail, type FakeCakemail, startPersistentRedisServer, type PersistentRedis } from '@cakemail-smtp/testkit';
import { createRelayBackend, type RelayBackend } from '../src/relay/backend.js';
import type { QueuedBody, QueuedSession, QueueMode } from '../src/relay/queue.js';
import type { Logger } from '../src/types.js';
import { relayConfig } from './helpers/relay-config.js';
import { openTestQueue, sendThrough, startSmtpFront, type Sent, type SmtpFront } from './helpers/smtp-front.js';

const quiet: Logger = { debug() {}, info() {}, warn() {}, error() {}, child: () => quiet };

let redis: PersistentRedis;
let api: FakeCakemail;
let queue: MessageQueue<QueuedBody, QueuedSession>;
let backend: RelayBackend;
let front: SmtpFront;

beforeAll(async () => {
  redis = await startPersistentRedisServer();
});
afterAll(async () => {
  await redis.stop();
});
afterEach(async () => {
  await front.close();
  await queue.close(2000);
  await backend.close();
  await api.close();
});

async function start(mode: Exclude<QueueMode, 'off'>, maxBytes = 0): Promise<void> {
  api = createFakeCakemail();
  await api.listen(0);
  const maxAgeMs = 60_000;
  queue = await openTestQueue(redis.url, maxAgeMs, maxBytes);
  backend = createRelayBackend(relayConfig(api.url), { logger: quiet, queue: { mode, queue, maxAgeMs } });
  front = await startSmtpFront(backend);
}

function sendMail(to: string[]): Promise<Sent> {
  return sendThrough(front, { to, subject: 'Queued', text: 'Hello from a printer' });
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
    await front.close();
    await queue.close(2000);
    await backend.close();
    await api.close();

    await start('always', 100);
    const full = await sendMail(['one@example.net']);
    expect(full).toEqual({ responseCode: 452, response: '452 4.3.1 Insufficient system storage, try again later' });
  });
});
