// QUEUE_MODE fallback and always: the relay against testkit's fake Cakemail API, with the queue
// on a real redis-server (AOF on) and the accepted store on the same Redis.
import { randomBytes } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { Redis } from 'ioredis';
import { Registry } from 'prom-client';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, onTestFinished } from 'vitest';
import { openQueue, QueueUnavailableError, type MessageQueue, type QueueMessage, type QueueOptions, type QueuedJob } from '@cakemail-smtp/queue';
import type { Session } from '@cakemail-smtp/smtp-core';
import { createFakeCakemail, DEFAULT_SENDER, DEFAULT_USER, startRedisProxy, type FakeCakemail, type SentEmail, startPersistentRedisServer, type PersistentRedis } from '@cakemail-smtp/testkit';
import { CakemailClient } from '../src/client.js';
import { createRelayBackend, type RelayBackend } from '../src/relay/backend.js';
import { queuedKey, type QueuedBody, type QueuedSession, type QueueMode } from '../src/relay/queue.js';
import { RedisAcceptedStore } from '../src/relay/redis-accepted-store.js';
import type { Logger } from '../src/types.js';
import { refused } from './helpers/refused.js';
import { relayConfig } from './helpers/relay-config.js';
import { CountingClient } from './helpers/counting-client.js';
import { commandsSent } from './helpers/redis-monitor.js';

/** Every log line of the relay, as JSON text: tests look for secrets in it. */
let logged: string[] = [];
function recordingLogger(bindings: Record<string, unknown> = {}): Logger {
  const at = (level: string) => (obj: object, msg?: string): void => void logged.push(JSON.stringify({ level, ...bindings, ...obj, msg }));
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error'), child: (b) => recordingLogger({ ...bindings, ...b }) };
}
const ALICE = DEFAULT_SENDER.email;
const KEY = randomBytes(32).toString('base64');

let redis: PersistentRedis;
let api: FakeCakemail;
let queue: MessageQueue<QueuedBody, QueuedSession>;
let store: RedisAcceptedStore;
let storePrefix: string;
let backend: RelayBackend;
/** What the session handed to enqueue, in order. */
let enqueued: QueueMessage<QueuedBody, QueuedSession>[];

beforeAll(async () => {
  redis = await startPersistentRedisServer();
});
afterAll(async () => {
  await redis.stop();
});
beforeEach(async () => {
  api = createFakeCakemail();
  await api.listen(0);
  enqueued = [];
  logged = [];
});
afterEach(async () => {
  await queue.close(2000);
  await backend.close();
  await store.close();
  await api.close();
});


async function start(mode: Exclude<QueueMode, 'off'>, options: Partial<QueueOptions> = {}, client?: CakemailClient): Promise<void> {
  const maxAgeMs = options.maxAgeMs ?? 60_000;
  queue = await openQueue<QueuedBody, QueuedSession>({
    redisUrl: options.redisUrl ?? redis.url,
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
  storePrefix = `t:${randomBytes(4).toString('hex')}`;
  store = await RedisAcceptedStore.connect({ url: redis.url, keyPrefix: storePrefix });
  backend = createRelayBackend(relayConfig(api.url), {
    logger: recordingLogger(),
    store,
    inflight: store.inflight,
    queue: { mode, queue, maxAgeMs },
    ...(client === undefined ? {} : { client }),
  });
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
const sendsTo = (email: string): number =>
  api.callsTo('send').filter((c) => (c.body as { email?: string } | undefined)?.email === email).length;
const textOf = (e: SentEmail | undefined): string => e?.body.content.text ?? '';

describe('the accepted store\'s round trips', () => {
  /** The commands the relay sent with the accepted store's prefix. */
  const storeCommands = (run: () => Promise<void>): Promise<string[]> => commandsSent(redis.url, storePrefix, run);

  it('two per recipient sent at once: its turn (read and mark) and its settlement (id and release)', async () => {
    await start('fallback');
    const s = await session();
    const commands = await storeCommands(async () => {
      await send(s, message(), ['one@example.net', 'two@example.net']);
    });
    expect(delivered()).toEqual(['one@example.net', 'two@example.net']);
    expect(commands).toEqual(['eval', 'eval', 'eval', 'eval']);
  });

  it('two per recipient delivered from the queue', async () => {
    await start('always');
    const s = await session();
    await send(s, message(), ['one@example.net', 'two@example.net']);
    const commands = await storeCommands(async () => {
      startWorkers();
      await waitFor('delivery', drained);
    });
    expect(delivered()).toEqual(['one@example.net', 'two@example.net']);
    expect(commands).toEqual(['eval', 'eval', 'eval', 'eval']);
  });
});

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

  it('40 messages during an outage: each gets 250 with its own queue id, and each reaches Cakemail exactly once after it', async () => {
    await start('fallback');
    api.faults.set('send', { status: 503 });
    const texts = await Promise.all(
      Array.from({ length: 40 }, async (_, i) => send(await session(), message([], `<bulk-${i}@example.com>`), [`r${i}@example.net`])),
    );
    expect(texts.every((t) => /^Ok: queued as [0-9a-f]{20}; delivery to Cakemail deferred$/.test(t))).toBe(true);
    expect(new Set(texts).size).toBe(40);
    expect(api.sent()).toHaveLength(0);
    api.faults.clear();
    startWorkers();
    await waitFor('delivery', drained, 60_000);
    expect(delivered()).toEqual(Array.from({ length: 40 }, (_, i) => `r${i}@example.net`).sort());
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

  it('queues the temporary failures and bounces the refusals for good when nothing was accepted at once', async () => {
    await start('fallback');
    api.faults.add('send', { status: 422, body: { detail: [{ loc: ['body'], msg: 'bad recipient', type: 'value_error' }] }, match: { email: 'one@example.net' } });
    api.faults.add('send', { status: 503, match: { email: 'two@example.net' } });
    const s = await session();
    const text = await send(s, message(), ['one@example.net', 'two@example.net']);
    expect(text).toMatch(/^Ok: queued as [0-9a-f]{20}; delivery to Cakemail deferred for 1 of 2 recipients; not sent to one@example\.net: Cakemail rejected the message: bad recipient$/);
    expect(enqueued.map((m) => m.recipients)).toEqual([['two@example.net']]);
    await waitFor('the bounce', () => bounces().length === 1);
    expect(textOf(bounces()[0])).toContain('<one@example.net>: bad recipient');
    api.faults.clear();
    startWorkers();
    await waitFor('delivery', drained);
    expect(delivered()).toEqual(['two@example.net']);
    expect(bounces()).toHaveLength(1);
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

  it('answers 451 4.3.0 when Redis does not take the message', async () => {
    const proxy = await startRedisProxy(redis.url);
    try {
      await start('always', { redisUrl: proxy.url });
      const s = await session();
      await proxy.cut();
      const err = await refused(send(s, message(), ['one@example.net']));
      expect(err.line).toBe('451 4.3.0 The message could not be queued, try again later');
      await expect(queue.enqueue(enqueued[0] as QueueMessage<QueuedBody, QueuedSession>)).rejects.toBeInstanceOf(QueueUnavailableError);
    } finally {
      await proxy.restore();
    }
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
  it('a refusal for good after queueing: one bounce to the envelope sender, naming the recipient and Cakemail\'s reason', async () => {
    await start('always');
    api.faults.set('send', { status: 403, body: { detail: [{ code: 403, msg: 'Recipient is suppressed', type: 'forbidden' }] }, match: { email: 'one@example.net' } });
    const s = await session();
    await send(s, message(), ['one@example.net', 'two@example.net']);
    startWorkers();
    await waitFor('the bounce', drained);
    expect(delivered()).toEqual(['two@example.net']);
    expect(bounces()).toHaveLength(1);
    const bounce = bounces()[0];
    expect(bounce?.body.email).toBe(ALICE);
    expect(bounce?.body.sender.id).toBe(DEFAULT_SENDER.id);
    expect(bounce?.body.content.subject).toBe('Undelivered Mail Returned to Sender');
    const text = textOf(bounce);
    expect(text).toContain('<one@example.net>: Recipient is suppressed');
    expect(text).toContain('Final-Recipient: rfc822; one@example.net');
    expect(text).toContain('Status: 5.7.1');
    expect(text).toContain('Diagnostic-Code: http; 403 Recipient is suppressed');
    expect(text).toContain('Subject: Invoice 42');
    expect(text).not.toContain('two@example.net');
    expect(sendsTo('one@example.net')).toBe(1);
  });

  it('never bounces a bounce: neither a failed bounce nor a gateway bounce that was queued', async () => {
    await start('always');
    api.faults.set('send', { status: 422 });
    const s = await session();
    await send(s, message(), ['one@example.net']);
    await send(s, message(['X-Gateway-Bounce: yes']), ['two@example.net']);
    await send(s, message(['Auto-Submitted: auto-replied']), ['three@example.net']);
    startWorkers();
    await waitFor('the queue to empty', drained);
    await new Promise((resolve) => setTimeout(resolve, 500));
    // The first message's bounce was tried once and refused; the other two never bounce.
    expect(api.callsTo('send').map((c) => (c.body as { email: string }).email).sort()).toEqual(['one@example.net', ALICE, 'three@example.net', 'two@example.net']);
    expect(enqueued.map((m) => m.isBounce)).toEqual([false, true, false]);
  });

  it('bounces with 4.4.7 what could not be delivered before QUEUE_MAX_AGE_MS', async () => {
    await start('always', { maxAgeMs: 1500 });
    api.faults.set('send', { status: 503, match: { email: 'one@example.net' } });
    const s = await session();
    await send(s, message(), ['one@example.net']);
    startWorkers();
    await waitFor('the bounce', drained);
    expect(bounces()).toHaveLength(1);
    const text = textOf(bounces()[0]);
    expect(text).toContain('Status: 4.4.7');
    expect(text).toContain('Final-Recipient: rfc822; one@example.net');
    expect(text).toMatch(/<one@example\.net>: delivery to Cakemail did not succeed in 1\.5 seconds; last error: Cakemail POST \/v2\/emails/);
    expect(delivered()).toEqual([]);
  });

  it('refreshes a queued session whose access token expired, and stores the new one', async () => {
    await start('always');
    const s = await session();
    await send(s, message(), ['one@example.net']);
    api.expireTokens();
    const { deliver } = backend.queueHandlers();
    const job = jobOf(enqueued[0], 'refresh-job');
    const result = await deliver(job, new AbortController().signal);
    expect([...result.outcomes.values()].map((o) => o.kind)).toEqual(['accepted']);
    expect(result.session?.accessToken).toBeDefined();
    expect(result.session?.accessToken).not.toBe(job.session.accessToken);
    expect(api.callsTo('token').map((c) => (c.body as Record<string, string>)['grant_type'])).toEqual(['password', 'refresh_token']);
    expect(delivered()).toEqual(['one@example.net']);
    // No token reaches a log line.
    const all = logged.join('\n');
    for (const secret of [job.session.accessToken, job.session.refreshToken, result.session?.accessToken ?? '?', DEFAULT_USER.password]) {
      expect(all).not.toContain(secret);
    }
  });

  it('refreshes a login once for all the jobs queued from it', async () => {
    await start('always');
    const s = await session();
    await send(s, message(), ['one@example.net']);
    await send(s, message(), ['two@example.net']);
    api.expireTokens();
    const { deliver } = backend.queueHandlers();
    const [a, b] = [jobOf(enqueued[0], 'login-a'), jobOf(enqueued[1], 'login-b')];
    const results = await Promise.all([deliver(a, new AbortController().signal), deliver(b, new AbortController().signal)]);
    expect(delivered()).toEqual(['one@example.net', 'two@example.net']);
    expect(api.callsTo('token').map((c) => (c.body as Record<string, string>)['grant_type'])).toEqual(['password', 'refresh_token']);
    expect(results[0]?.session?.accessToken).toBe(results[1]?.session?.accessToken);
  });

  it('a refresh refused: every recipient 5.7.0, bounced through a live login of the same user', async () => {
    await start('always');
    const s = await session();
    await send(s, message(), ['one@example.net', 'two@example.net']);
    api.revokeTokens(DEFAULT_USER.email);
    startWorkers();
    // Refused: the refresh of the message's session by deliver, then by the bounce, then that of
    // this replica's login (the bounce's second try). The bounce waits for a new login.
    await waitFor('the refused refreshes', () => api.callsTo('token').filter((c) => c.status === 401).length >= 3);
    expect(bounces()).toHaveLength(0);
    // A new login of the same user (a new password, so that it cannot be the cached login whose
    // tokens were revoked, whatever the order of the refused refreshes above).
    api.setPassword(DEFAULT_USER.email, 'a-new-password-42');
    await session({ email: DEFAULT_USER.email, password: 'a-new-password-42' });
    await waitFor('the bounce', drained);
    expect(delivered()).toEqual([]);
    expect(bounces()).toHaveLength(1);
    const text = textOf(bounces()[0]);
    expect(text).toContain('Status: 5.7.0');
    expect(text).toContain('Final-Recipient: rfc822; two@example.net');
    expect(text).toContain('Diagnostic-Code: http; 401 the Cakemail session of this queued message expired and could not be refreshed; send the message again');
  });

  it('queues through a /token outage after a cached login, and delivers once /token is back', async () => {
    await start('fallback');
    const s = await session();
    // The sender and the list are known (cached) from a first message; then the token expires.
    await send(s, message(), ['zero@example.net']);
    api.expireTokens();
    api.faults.set('token', { status: 503 });
    const text = await send(s, message(), ['one@example.net']);
    expect(text).toMatch(/^Ok: queued as [0-9a-f]{20}; delivery to Cakemail deferred$/);
    expect(enqueued[0]?.lastError).toMatch(/POST \/token/);
    api.faults.clear();
    startWorkers();
    await waitFor('delivery', drained);
    expect(delivered()).toEqual(['one@example.net', 'zero@example.net']);
  });

  it('sends one recipient at a time, and leaves the rest for the next attempt after a temporary failure', async () => {
    const client = new CountingClient({ apiUrl: api.url, timeoutMs: 2000, connections: 8 });
    onTestFinished(() => client.close());
    await start('always', {}, client);
    const s = await session();
    await send(s, message(), ['one@example.net', 'two@example.net', 'three@example.net', 'four@example.net']);
    api.faults.add('send', { delayMs: 100 });
    const { deliver } = backend.queueHandlers();
    const first = await deliver(jobOf(enqueued[0], 'one-at-a-time'), new AbortController().signal);
    expect([...first.outcomes.values()].map((o) => o.kind)).toEqual(['accepted', 'accepted', 'accepted', 'accepted']);
    expect(client.maxInFlight).toBe(1);

    await send(s, message(), ['one@example.net', 'two@example.net', 'three@example.net']);
    api.faults.set('send', { status: 503, match: { email: 'two@example.net' } });
    const second = await deliver(jobOf(enqueued[1], 'stops'), new AbortController().signal);
    expect([...second.outcomes.entries()].map(([rcpt, o]) => [rcpt, o.kind])).toEqual([
      ['one@example.net', 'accepted'],
      ['two@example.net', 'temporary'],
      ['three@example.net', 'temporary'],
    ]);
    expect(second.outcomes.get('three@example.net')).toMatchObject({ reason: expect.stringMatching(/^not tried after: Cakemail POST \/v2\/emails/) });
    expect(sendsTo('three@example.net')).toBe(1);
  });

  it('stops sending when its signal aborts (shutdown): the recipients stay temporary', async () => {
    await start('always');
    const s = await session();
    await send(s, message(), ['one@example.net']);
    const aborted = new AbortController();
    aborted.abort();
    const result = await backend.queueHandlers().deliver(jobOf(enqueued[0], 'aborted'), aborted.signal);
    expect([...result.outcomes.values()]).toEqual([{ kind: 'temporary', reason: 'not sent: the worker is shutting down' }]);
    expect(api.counts().send ?? 0).toBe(0);
  });

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

  it('stores no token, password or message content in Redis in plain text (the AOF on disk)', async () => {
    await start('fallback');
    api.faults.set('send', { status: 503 });
    const s = await session();
    await send(s, message(['X-Secret-Note: Tiramisu recipe'], '<content-check@example.com>'), ['one@example.net']);
    const m = enqueued[0];
    expect(m).toBeDefined();
    const aof = await readTree(redis.dir);
    expect(aof).toContain('one@example.net'); // the clear metadata is there: the check reads the right files
    for (const secret of [m?.session.accessToken ?? '?', m?.session.refreshToken ?? '?', DEFAULT_USER.password, 'Invoice 42', 'Hello there', 'Tiramisu', 'content-check']) {
      expect(aof).not.toContain(secret);
    }
  });

  it('keeps a queued recipient in the accepted store for longer than QUEUE_MAX_AGE_MS', async () => {
    const maxAgeMs = 3 * 86_400_000;
    await start('always', { maxAgeMs });
    const s = await session();
    await send(s, message(), ['one@example.net']);
    const job = jobOf(enqueued[0], 'long-lived');
    await backend.queueHandlers().deliver(job, new AbortController().signal);
    const client = new Redis(redis.url);
    try {
      const ttl = await client.pttl(`${storePrefix}:${queuedKey(job.body, job.id, 'one@example.net')}`);
      expect(ttl).toBeGreaterThan(maxAgeMs);
    } finally {
      client.disconnect();
    }
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

/** Every file under `dir`, as latin1 text. */
async function readTree(dir: string): Promise<string> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  const files = entries.filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name));
  return (await Promise.all(files.map((f) => readFile(f, 'latin1')))).join('\n');
}

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
