// QUEUE_MODE fallback and always: the relay against testkit's fake Cakemail API, with the queue
// on a real redis-server (AOF on) and the accepted store on the same Redis.
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { Registry } from 'prom-client';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { openQueue, type MessageQueue, type QueueMessage, type QueueOptions, type QueuedJob } from '@cakemail-smtp/queue';
import type { Session } from '@cakemail-smtp/smtp-core';
import { createFakeCakemail, DEFAULT_SENDER, DEFAULT_USER, type FakeCakemail, type SentEmail } from '@cakemail-smtp/testkit';
import { createRelayBackend, type RelayBackend } from '../src/relay/backend.js';
import type { QueuedBody, QueuedSession, QueueMode } from '../src/relay/queue.js';
import { RedisAcceptedStore } from '../src/relay/redis-accepted-store.js';
import type { Logger } from '../src/types.js';
import { startAofRedis, type AofRedis } from './helpers/aof-redis.js';
import { refused } from './helpers/refused.js';
import { relayConfig } from './helpers/relay-config.js';

const quiet: Logger = { debug() {}, info() {}, warn() {}, error() {}, child: () => quiet };
const ALICE = DEFAULT_SENDER.email;
const KEY = randomBytes(32).toString('base64');

let redis: AofRedis;
let api: FakeCakemail;
let queue: MessageQueue<QueuedBody, QueuedSession>;
let store: RedisAcceptedStore;
let backend: RelayBackend;
/** What the session handed to enqueue, in order. */
let enqueued: QueueMessage<QueuedBody, QueuedSession>[];

beforeAll(async () => {
  redis = await startAofRedis();
});
afterAll(async () => {
  await redis.stop();
});
beforeEach(async () => {
  api = createFakeCakemail();
  await api.listen(0);
  enqueued = [];
});
afterEach(async () => {
  await queue.close(2000);
  await backend.close();
  await store.close();
  await api.close();
});

async function start(mode: Exclude<QueueMode, 'off'>, options: Partial<QueueOptions> = {}): Promise<void> {
  const maxAgeMs = options.maxAgeMs ?? 60_000;
  queue = await openQueue<QueuedBody, QueuedSession>({
    redisUrl: redis.url,
    keys: KEY,
    maxBytes: 0,
    retryBaseMs: 100,
    retryMaxMs: 400,
    name: `t${randomBytes(4).toString('hex')}`,
    register: new Registry(),
    ...options,
    maxAgeMs,
  });
  const enqueue = queue.enqueue.bind(queue);
  queue.enqueue = (message) => {
    enqueued.push(message);
    return enqueue(message);
  };
  store = await RedisAcceptedStore.connect({ url: redis.url, keyPrefix: `t:${randomBytes(4).toString('hex')}` });
  backend = createRelayBackend(relayConfig(api.url), { logger: quiet, store, inflight: store.inflight, queue: { mode, queue, maxAgeMs } });
}

/** The workers of this replica; queue.close() stops them. */
function startWorkers(): void {
  queue.startWorkers({ concurrency: 4, ...backend.queueHandlers() });
}

let sessionNo = 0;
async function session(user: { email: string; password: string } = DEFAULT_USER): Promise<Session> {
  const s = backend.newSession({ id: `q${++sessionNo}`, remoteAddress: '127.0.0.1', remotePort: 1, localPort: 2, listener: 'starttls' });
  const decision = await s.auth({ mechanism: 'PLAIN', username: user.email, password: user.password });
  if (!decision.ok) throw decision.reply;
  return s;
}

function message(extra: string[] = [], id = `<${randomBytes(6).toString('hex')}@example.com>`): string {
  return [`From: "Alice" <${ALICE}>`, 'To: one@example.net', 'Subject: Invoice 42', ...(id ? [`Message-ID: ${id}`] : []), ...extra, '', 'Hello there', ''].join('\r\n');
}

async function send(s: Session, raw: string, to: string[], from = ALICE): Promise<string> {
  if (from !== '') await s.mail(from, { smtpUtf8: false });
  for (const r of to) await s.rcpt(r);
  return s.data(Readable.from([Buffer.from(raw)]), { from, to });
}

const isBounce = (e: SentEmail): boolean => (e.body.additional_headers ?? []).some((h) => h.name === 'X-Gateway-Bounce');
const delivered = (): string[] => api.sent().filter((e) => !isBounce(e)).map((e) => e.body.email).sort();
const bounces = (): SentEmail[] => api.sent().filter(isBounce);

async function waitFor(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const drained = async (): Promise<boolean> => (await queue.stats()).depth === 0;

describe('QUEUE_MODE=fallback', () => {
  it('queues a message Cakemail could not take, answers 250 with the queue id, and delivers each recipient once after the outage', async () => {
    await start('fallback');
    api.faults.set('send', { status: 503 });
    const s = await session();
    const text = await send(s, message(), ['one@example.net', 'two@example.net']);
    expect(text).toMatch(/^Ok: queued as [0-9a-f]{20}; delivery to Cakemail deferred$/);
    const queueId = text.split(' ')[3]?.replace(';', '');
    expect((await queue.list()).map((e) => ({ id: e.id, recipients: [...e.recipients].sort() }))).toEqual([
      { id: queueId, recipients: ['one@example.net', 'two@example.net'] },
    ]);
    expect(api.sent()).toHaveLength(0);

    api.faults.clear();
    startWorkers();
    await waitFor('delivery', drained);
    expect(delivered()).toEqual(['one@example.net', 'two@example.net']);
    expect(bounces()).toHaveLength(0);
  });

  it('queues only the recipients Cakemail did not accept; those it accepted are sent once', async () => {
    await start('fallback');
    api.faults.set('send', { status: 503, match: { email: 'three@example.net' } });
    const s = await session();
    const text = await send(s, message(), ['one@example.net', 'two@example.net', 'three@example.net']);
    const first = api.sent()[0]?.id;
    expect(text).toMatch(new RegExp(`^Ok: queued as [0-9a-f]{20}; delivery to Cakemail deferred for 1 of 3 recipients; accepted by Cakemail: ${first} \\(\\+1 more\\)$`));
    expect(enqueued.map((m) => m.recipients)).toEqual([['three@example.net']]);

    api.faults.clear();
    startWorkers();
    await waitFor('delivery', drained);
    expect(delivered()).toEqual(['one@example.net', 'three@example.net', 'two@example.net']);
  });

  it('answers a refusal for good at once and never queues it', async () => {
    await start('fallback');
    api.faults.set('send', { status: 422, body: { detail: [{ loc: ['body'], msg: 'bad content', type: 'value_error' }] } });
    const s = await session();
    const err = await refused(send(s, message(), ['one@example.net']));
    expect(err.line).toBe('550 5.6.0 Cakemail rejected the message: bad content');
    expect(enqueued).toHaveLength(0);
  });

  it('answers the 4xx it would without a queue when the queue is full, and the retry skips what was accepted', async () => {
    await start('fallback', { maxBytes: 100 });
    api.faults.set('send', { status: 503, match: { email: 'two@example.net' } });
    const s = await session();
    const raw = message();
    const err = await refused(send(s, raw, ['one@example.net', 'two@example.net']));
    expect(err.line).toBe('451 4.3.0 Cakemail is temporarily unavailable, try again later');
    expect(enqueued).toHaveLength(1);
    api.faults.clear();
    await send(s, raw, ['one@example.net', 'two@example.net']);
    expect(delivered()).toEqual(['one@example.net', 'two@example.net']);
  });
});

describe('QUEUE_MODE=always', () => {
  it('answers 250 with the queue id once the message is stored, before any POST, and the workers deliver it', async () => {
    await start('always');
    const s = await session();
    const text = await send(s, message(), ['one@example.net', 'two@example.net']);
    expect(text).toMatch(/^Ok: queued as [0-9a-f]{20}$/);
    expect(api.counts().send ?? 0).toBe(0);
    expect(await queue.stats()).toMatchObject({ depth: 1 });
    startWorkers();
    await waitFor('delivery', drained);
    expect(delivered()).toEqual(['one@example.net', 'two@example.net']);
    const body = api.sent()[0]?.body;
    expect(body).toMatchObject({ sender: { id: DEFAULT_SENDER.id, name: 'Alice' }, content: { subject: 'Invoice 42', text: 'Hello there' } });
  });

  it('still refuses before queueing what the mapping refuses (an unconfirmed sender, a bad attachment)', async () => {
    await start('always');
    const s = await session();
    expect((await refused(s.mail('nobody@example.com', { smtpUtf8: false }))).code).toBe(553);
    const err = await refused(send(s, message(['x-tags: not a tag!']), ['one@example.net']));
    expect(err.code).toBe(550);
    expect(enqueued).toHaveLength(0);
  });

  it('answers 452 4.3.1 when the queue is full', async () => {
    await start('always', { maxBytes: 100 });
    const s = await session();
    const err = await refused(send(s, message(), ['one@example.net']));
    expect(err.line).toBe('452 4.3.1 Insufficient system storage, try again later');
    expect(api.counts().send ?? 0).toBe(0);
  });
});

describe('queue workers', () => {
  it('a retry of the same job after a crash sends nothing Cakemail accepted already', async () => {
    await start('always');
    const s = await session();
    await send(s, message(), ['one@example.net', 'two@example.net']);
    const job = jobOf(enqueued[0], 'crashed-job');
    const { deliver } = backend.queueHandlers();
    const first = await deliver(job, new AbortController().signal);
    const second = await deliver({ ...job, attempt: 2, resumed: true }, new AbortController().signal);
    expect(api.sent()).toHaveLength(2);
    expect([...second.outcomes.values()]).toEqual([...first.outcomes.values()]);
    expect([...first.outcomes.values()].map((o) => o.kind)).toEqual(['accepted', 'accepted']);
  });

  it('keys a message without Message-ID and Date by its job: two identical cron mails are both delivered', async () => {
    await start('always');
    const s = await session();
    const raw = message([], '');
    await send(s, raw, ['one@example.net']);
    await send(s, raw, ['one@example.net']);
    const { deliver } = backend.queueHandlers();
    const [a, b] = [jobOf(enqueued[0], 'cron-a'), jobOf(enqueued[1], 'cron-b')];
    await deliver(a, new AbortController().signal);
    await deliver(b, new AbortController().signal);
    await deliver({ ...a, attempt: 2 }, new AbortController().signal);
    expect(delivered()).toEqual(['one@example.net', 'one@example.net']);
  });
});

/** The job a worker would see for what the session enqueued. */
function jobOf(m: QueueMessage<QueuedBody, QueuedSession> | undefined, id: string): QueuedJob<QueuedBody, QueuedSession> {
  if (m === undefined) throw new Error('nothing enqueued');
  return {
    id,
    account: m.account,
    sender: m.sender,
    recipients: m.recipients,
    body: m.body,
    session: m.session,
    isBounce: m.isBounce ?? false,
    queuedAt: Date.now(),
    attempt: 1,
    lastError: m.lastError,
    size: 1,
    resumed: false,
  };
}
