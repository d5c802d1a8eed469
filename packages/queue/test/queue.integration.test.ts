/**
 * The queue against a real redis-server with AOF on: enqueue, deliver,
 * retries, bounces, expiry, the byte cap, encryption at rest, rotation,
 * the operator functions and a graceful close.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { Registry } from 'prom-client';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  openQueue,
  QueueUnavailableError,
  type BounceFailure,
  type DeliverResult,
  type MessageQueue,
  type QueuedJob,
  type QueueOptions,
  type RecipientOutcome,
} from '../src/index.js';
import { parseKeyRing, seal } from '../src/crypto.js';
import type { JobData } from '../src/job-data.js';
import { startRedisProxy } from '@cakemail-smtp/testkit';
import { newKey, queueName, sleep, startAofRedis, waitFor, type AofRedis } from './helpers.js';

interface Body {
  readonly subject: string;
  readonly text: string;
}
interface Session {
  readonly accessToken: string;
  readonly refreshToken: string;
}

let redis: AofRedis;
let client: Redis;
const opened: MessageQueue<Body, Session>[] = [];

beforeAll(async () => {
  redis = await startAofRedis();
  client = new Redis(redis.url);
  client.on('error', () => undefined);
});
afterEach(async () => {
  await Promise.all(opened.splice(0).map((q) => q.close(1000)));
});
afterAll(async () => {
  client.disconnect();
  await redis.stop();
});

const key1 = newKey();
async function open(options: Partial<QueueOptions> = {}): Promise<MessageQueue<Body, Session>> {
  const q = await openQueue<Body, Session>({
    redisUrl: redis.url,
    keys: `k1:${key1}`,
    maxBytes: 0,
    retryBaseMs: 20,
    retryMaxMs: 200,
    name: queueName(),
    register: new Registry(),
    ...options,
  });
  opened.push(q);
  return q;
}

const message = (recipients: string[], extra: { isBounce?: boolean; text?: string } = {}) => ({
  account: '1001',
  sender: 'sender@example.com',
  recipients,
  body: { subject: 'Quarterly figures', text: extra.text ?? 'The body of a private message' },
  session: { accessToken: 'access-token-SECRET-1', refreshToken: 'refresh-token-SECRET-2' },
  ...(extra.isBounce === undefined ? {} : { isBounce: extra.isBounce }),
});

/** A deliver that answers from a script: `plan(recipient, attempt)`; records every call. */
function scripted(plan: (recipient: string, attempt: number) => RecipientOutcome) {
  const calls: { recipient: string; attempt: number; at: number; job: QueuedJob<Body, Session> }[] = [];
  const deliver = async (job: QueuedJob<Body, Session>): Promise<DeliverResult<Session>> => {
    const outcomes = new Map<string, RecipientOutcome>();
    for (const r of job.recipients) {
      calls.push({ recipient: r, attempt: job.attempt, at: Date.now(), job });
      outcomes.set(r, plan(r, job.attempt));
    }
    return { outcomes };
  };
  const accepted = (r: string) => calls.filter((c) => c.recipient === r && plan(c.recipient, c.attempt).kind === 'accepted').length;
  return { calls, deliver, accepted };
}

function recordingBounce() {
  const bounces: { job: QueuedJob<Body, Session>; failures: readonly BounceFailure[] }[] = [];
  return { bounces, bounce: async (job: QueuedJob<Body, Session>, failures: readonly BounceFailure[]) => void bounces.push({ job, failures }) };
}

async function metric(q: MessageQueue<Body, Session>, name: string, labels: Record<string, string> = {}): Promise<number> {
  const m = (await q.register.getMetricsAsJSON()).find((x) => x.name === `smtp_gateway_queue_${name}`);
  const values = (m as unknown as { values: { value: number; labels: Record<string, string> }[] } | undefined)?.values ?? [];
  return values
    .filter((v) => Object.entries(labels).every(([k, val]) => v.labels[k] === val))
    .reduce((sum, v) => sum + v.value, 0);
}

const empty = (q: MessageQueue<Body, Session>) => async () => (await q.stats()).depth === 0;

describe('Redis checks', () => {
  it('confirms AOF and noeviction on the test server, and warns on a server without AOF', async () => {
    const q = await open();
    const check = await q.checkRedis();
    expect(check).toMatchObject({ appendonly: 'yes', appendfsync: 'always', maxmemoryPolicy: 'noeviction', warnings: [] });
    await client.config('SET', 'appendonly', 'no');
    await client.config('SET', 'maxmemory-policy', 'allkeys-lru');
    try {
      const off = await q.checkRedis();
      expect(off.warnings.join('\n')).toMatch(/without AOF \(appendonly no\)/);
      expect(off.warnings.join('\n')).toMatch(/maxmemory-policy is allkeys-lru/);
    } finally {
      await client.config('SET', 'appendonly', 'yes');
      await client.config('SET', 'maxmemory-policy', 'noeviction');
    }
  });
});

describe('durability', () => {
  it('keeps every acknowledged message across a kill -9 of redis-server (AOF, appendfsync always)', async () => {
    const q = await open();
    const ids: string[] = [];
    for (let i = 0; i < 20; i++) {
      const r = await q.enqueue(message([`r${i}@example.net`]));
      if (r.status === 'queued') ids.push(r.id);
    }
    const bytes = (await q.stats()).bytes;
    await redis.crashAndRestart();
    await waitFor('reconnection', async () => (await q.stats().catch(() => undefined)) !== undefined);
    expect(await q.stats()).toMatchObject({ depth: 20, bytes });
    const s = scripted(() => ({ kind: 'accepted' }));
    q.startWorkers({ concurrency: 4, deliver: s.deliver, bounce: recordingBounce().bounce });
    await waitFor('delivery', empty(q));
    expect(new Set(s.calls.map((c) => c.job.id))).toEqual(new Set(ids));
    expect(s.calls).toHaveLength(20);
  });
});

describe('enqueue and deliver', () => {
  it('delivers a queued message once, decrypted, then forgets it', async () => {
    const q = await open();
    const result = await q.enqueue(message(['a@example.net', 'b@example.net']));
    expect(result.status).toBe('queued');
    const id = result.status === 'queued' ? result.id : '';
    expect(id).toMatch(/^[0-9a-f]{20}$/);
    expect((await q.stats()).depth).toBe(1);
    expect((await q.stats()).bytes).toBeGreaterThan(0);

    const s = scripted(() => ({ kind: 'accepted' }));
    q.startWorkers({ concurrency: 2, deliver: s.deliver, bounce: recordingBounce().bounce });
    await waitFor('delivery', empty(q));
    expect(s.calls.map((c) => c.recipient).sort()).toEqual(['a@example.net', 'b@example.net']);
    const job = s.calls[0]?.job;
    expect(job).toMatchObject({ id, account: '1001', sender: 'sender@example.com', attempt: 1, resumed: false, isBounce: false });
    expect(job?.body.text).toBe('The body of a private message');
    expect(job?.session.refreshToken).toBe('refresh-token-SECRET-2');
    expect(await q.stats()).toMatchObject({ depth: 0, bytes: 0 });
    expect(await q.list()).toEqual([]);
    expect(await metric(q, 'deliveries_total', { outcome: 'accepted' })).toBe(2);
    expect(await metric(q, 'enqueued_total', { outcome: 'queued' })).toBe(1);
    expect(await metric(q, 'depth')).toBe(0);
  });

  it('retries temporary failures with backoff until success, each recipient accepted once', async () => {
    const q = await open();
    await q.enqueue(message(['ok@example.net', 'slow@example.net']));
    // slow@ fails three times, the third with a Retry-After of 1.5 s.
    const s = scripted((r, attempt) =>
      r === 'slow@example.net' && attempt <= 3
        ? { kind: 'temporary', reason: 'http; 503', ...(attempt === 3 ? { retryAfterMs: 1500 } : {}) }
        : { kind: 'accepted' },
    );
    q.startWorkers({ concurrency: 1, deliver: s.deliver, bounce: recordingBounce().bounce });
    await waitFor('delivery', empty(q));
    expect(s.calls.filter((c) => c.recipient === 'ok@example.net')).toHaveLength(1);
    expect(s.calls.filter((c) => c.recipient === 'slow@example.net').map((c) => c.attempt)).toEqual([1, 2, 3, 4]);
    expect(s.accepted('slow@example.net')).toBe(1);
    const third = s.calls.find((c) => c.recipient === 'slow@example.net' && c.attempt === 3);
    const fourth = s.calls.find((c) => c.recipient === 'slow@example.net' && c.attempt === 4);
    expect((fourth?.at ?? 0) - (third?.at ?? 0)).toBeGreaterThanOrEqual(1400);
    expect(fourth?.job.lastError).toBe('http; 503');
    expect(await metric(q, 'retries_total')).toBe(3);
    expect(await metric(q, 'deliveries_total', { outcome: 'temporary' })).toBe(3);
  });

  it('stores a refreshed session for the next attempt', async () => {
    const q = await open();
    await q.enqueue(message(['r@example.net']));
    const seen: string[] = [];
    q.startWorkers({
      concurrency: 1,
      bounce: recordingBounce().bounce,
      deliver: async (job) => {
        seen.push(job.session.accessToken);
        if (job.attempt === 1) {
          return {
            outcomes: new Map([['r@example.net', { kind: 'temporary', reason: 'http; 503' }]]),
            session: { accessToken: 'refreshed-access', refreshToken: 'refreshed-refresh' },
          };
        }
        return { outcomes: new Map([['r@example.net', { kind: 'accepted' }]]) };
      },
    });
    await waitFor('delivery', empty(q));
    expect(seen).toEqual(['access-token-SECRET-1', 'refreshed-access']);
  });

  it('counts a deliver that throws as a temporary failure of every recipient', async () => {
    const q = await open();
    await q.enqueue(message(['r@example.net']));
    let calls = 0;
    q.startWorkers({
      concurrency: 1,
      bounce: recordingBounce().bounce,
      deliver: async (job) => {
        calls++;
        if (calls === 1) throw new Error('socket hang up');
        expect(job.lastError).toBe('delivery failed: socket hang up');
        return { outcomes: new Map([['r@example.net', { kind: 'accepted' }]]) };
      },
    });
    await waitFor('delivery', empty(q));
    expect(calls).toBe(2);
  });
});

describe('bounces', () => {
  it('bounces a permanent refusal once, delivers the rest', async () => {
    const q = await open();
    await q.enqueue(message(['good@example.net', 'bad@example.net']));
    const s = scripted((r) => (r === 'bad@example.net' ? { kind: 'permanent', status: '5.6.0', reason: 'http; 422 invalid email' } : { kind: 'accepted' }));
    const b = recordingBounce();
    q.startWorkers({ concurrency: 1, deliver: s.deliver, bounce: b.bounce });
    await waitFor('delivery', empty(q));
    expect(b.bounces).toHaveLength(1);
    expect(b.bounces[0]?.failures).toEqual([{ recipient: 'bad@example.net', status: '5.6.0', reason: 'http; 422 invalid email', cause: 'permanent' }]);
    expect(b.bounces[0]?.job.body.subject).toBe('Quarterly figures');
    expect(s.calls).toHaveLength(2);
    expect(await metric(q, 'bounces_total', { cause: 'permanent', outcome: 'sent' })).toBe(1);
  });

  it('never bounces a bounce', async () => {
    const q = await open();
    await q.enqueue(message(['bad@example.net'], { isBounce: true }));
    const b = recordingBounce();
    q.startWorkers({
      concurrency: 1,
      deliver: scripted(() => ({ kind: 'permanent', status: '5.7.1', reason: 'http; 403' })).deliver,
      bounce: b.bounce,
    });
    await waitFor('drop', empty(q));
    expect(b.bounces).toHaveLength(0);
    expect(await metric(q, 'bounces_total', { cause: 'permanent', outcome: 'suppressed' })).toBe(1);
  });

  it('bounces what is still undelivered when the message expires', async () => {
    const q = await open({ maxAgeMs: 1500 });
    await q.enqueue(message(['down@example.net']));
    const s = scripted(() => ({ kind: 'temporary', reason: 'http; 503 Service Unavailable' }));
    const b = recordingBounce();
    q.startWorkers({ concurrency: 1, deliver: s.deliver, bounce: b.bounce });
    await waitFor('expiry', empty(q));
    expect(b.bounces).toHaveLength(1);
    expect(b.bounces[0]?.failures[0]).toMatchObject({ recipient: 'down@example.net', status: '4.4.7', cause: 'expired' });
    expect(b.bounces[0]?.failures[0]?.reason).toMatch(/did not succeed in 1\.5 seconds; last error: http; 503 Service Unavailable/);
    expect(s.calls.length).toBeGreaterThan(1);
    expect(await metric(q, 'bounces_total', { cause: 'expired', outcome: 'sent' })).toBe(1);
  });

  it('retries a bounce that failed without delivering the message again', async () => {
    const q = await open();
    await q.enqueue(message(['good@example.net', 'bad@example.net']));
    const s = scripted((r) => (r === 'bad@example.net' ? { kind: 'permanent', status: '5.6.0', reason: 'http; 422' } : { kind: 'accepted' }));
    let tries = 0;
    q.startWorkers({
      concurrency: 1,
      deliver: s.deliver,
      bounce: async (_job, failures) => {
        tries++;
        if (tries === 1) throw new Error('Cakemail unavailable');
        expect(failures.map((f) => f.recipient)).toEqual(['bad@example.net']);
      },
    });
    await waitFor('bounce', empty(q));
    expect(tries).toBe(2);
    expect(s.calls).toHaveLength(2);
    expect(await metric(q, 'bounces_total', { outcome: 'failed' })).toBe(1);
    expect(await metric(q, 'bounces_total', { outcome: 'sent' })).toBe(1);
  });
});

describe('QUEUE_MAX_BYTES', () => {
  it('refuses a message past the cap with a typed outcome, and takes it again once there is room', async () => {
    const probe = await open();
    const first = await probe.enqueue(message(['a@example.net']));
    const size = first.status === 'queued' ? first.size : 0;
    const q = await open({ maxBytes: size * 2 + 10 });
    expect((await q.enqueue(message(['a@example.net']))).status).toBe('queued');
    expect((await q.enqueue(message(['a@example.net']))).status).toBe('queued');
    const refused = await q.enqueue(message(['a@example.net']));
    expect(refused).toMatchObject({ status: 'full', maxBytes: size * 2 + 10 });
    expect((await q.stats()).depth).toBe(2);
    expect(await metric(q, 'enqueued_total', { outcome: 'full' })).toBe(1);
    q.startWorkers({ concurrency: 1, deliver: scripted(() => ({ kind: 'accepted' })).deliver, bounce: recordingBounce().bounce });
    await waitFor('delivery', empty(q));
    expect((await q.enqueue(message(['a@example.net']))).status).toBe('queued');
  });
});

describe('encryption at rest', () => {
  it('keeps bodies and tokens out of Redis and its AOF in plain text', async () => {
    const q = await open();
    const marker = 'PLAINTEXT-MARKER-7f3a';
    await q.enqueue(message(['a@example.net'], { text: marker }));
    const keys = await client.keys(`smtp-gateway:${q.options.name}:*`);
    expect(keys.length).toBeGreaterThan(0);
    let dump = '';
    for (const key of keys) {
      const type = await client.type(key);
      if (type === 'hash') dump += JSON.stringify(await client.hgetall(key));
      else if (type === 'string') dump += await client.get(key);
      else if (type === 'list') dump += JSON.stringify(await client.lrange(key, 0, -1));
      else if (type === 'zset') dump += JSON.stringify(await client.zrange(key, 0, -1));
      else if (type === 'set') dump += JSON.stringify(await client.smembers(key));
      else if (type === 'stream') dump += JSON.stringify(await client.xrange(key, '-', '+'));
    }
    expect(dump).toContain('a@example.net'); // the metadata is there, in clear
    expect(dump).toContain('sealed');
    for (const secret of [marker, 'Quarterly figures', 'access-token-SECRET-1', 'refresh-token-SECRET-2']) {
      expect(dump).not.toContain(secret);
    }
    // The append-only file on disk too.
    const aofDir = join(redis.dir, 'appendonlydir');
    let aof = '';
    for (const f of await readdir(aofDir)) aof += (await readFile(join(aofDir, f))).toString('latin1');
    expect(aof).toContain('a@example.net');
    for (const secret of [marker, 'access-token-SECRET-1', 'refresh-token-SECRET-2']) expect(aof).not.toContain(secret);
  });

  it('rotates keys: the old key still opens queued messages, new ones use the new key', async () => {
    const name = queueName();
    const key2 = newKey();
    const before = await open({ name });
    const old = await before.enqueue(message(['old@example.net']));
    const after = await open({ name, keys: `k2:${key2},k1:${key1}` });
    const fresh = await after.enqueue(message(['new@example.net']));
    const byId = new Map((await after.list()).map((e) => [e.id, e.keyId]));
    expect(byId.get(old.status === 'queued' ? old.id : '')).toBe('k1');
    expect(byId.get(fresh.status === 'queued' ? fresh.id : '')).toBe('k2');

    const s = scripted(() => ({ kind: 'accepted' }));
    after.startWorkers({ concurrency: 1, deliver: s.deliver, bounce: recordingBounce().bounce });
    await waitFor('delivery', empty(after));
    expect(s.calls.map((c) => c.job.body.text)).toEqual(['The body of a private message', 'The body of a private message']);
  });

  it('holds a message whose key is gone, naming the key id', async () => {
    const name = queueName();
    const before = await open({ name });
    await before.enqueue(message(['x@example.net']));
    const after = await open({ name, keys: newKey(), retryMaxMs: 60_000 });
    const s = scripted(() => ({ kind: 'accepted' }));
    after.startWorkers({ concurrency: 1, deliver: s.deliver, bounce: recordingBounce().bounce });
    await waitFor('an attempt', async () => (await after.list())[0]?.attempts === 1);
    const [entry] = await after.list();
    expect(entry?.state).toBe('delayed');
    expect(entry?.lastError).toMatch(/sealed with key id k1, which QUEUE_ENCRYPTION_KEY does not hold/);
    expect(s.calls).toHaveLength(0);
  });
  it('counts no possible duplicate for attempts that could not open the message (nothing was sent)', async () => {
    const name = queueName();
    const before = await open({ name });
    await before.enqueue(message(['x@example.net']));
    const after = await open({ name, keys: newKey(), retryBaseMs: 20, retryMaxMs: 50 });
    const s = scripted(() => ({ kind: 'accepted' }));
    after.startWorkers({ concurrency: 1, deliver: s.deliver, bounce: recordingBounce().bounce });
    await waitFor('three attempts', async () => ((await after.list())[0]?.attempts ?? 0) >= 3);
    expect((await after.stats()).possibleDuplicates).toBe(0);
    expect(s.calls).toHaveLength(0);
  });
  it('counts no possible duplicate for attempts whose message opens but does not inflate (nothing was sent)', async () => {
    const q = await open();
    const queued = await q.enqueue(message(['x@example.net']));
    const id = queued.status === 'queued' ? queued.id : '';
    // Sealed with the right key over bytes that are not a deflate stream: unseal succeeds, inflate throws.
    const session = Buffer.from('{}');
    const plain = Buffer.concat([Buffer.from([0, 0, 0, session.length]), session, Buffer.from('not a deflate stream')]);
    const job = await q.queue.getJob(id);
    await job?.updateData({ ...(job.data as JobData), sealed: seal(parseKeyRing(`k1:${key1}`), plain, id) });
    const s = scripted(() => ({ kind: 'accepted' }));
    q.startWorkers({ concurrency: 1, deliver: s.deliver, bounce: recordingBounce().bounce });
    await waitFor('three attempts', async () => ((await q.queue.getJob(id))?.attemptsMade ?? 0) >= 3);
    expect((await q.stats()).possibleDuplicates).toBe(0);
    expect(s.calls).toHaveLength(0);
  });
  it('parks a message without its key in the failed set once it expires, for the operator', async () => {
    const name = queueName();
    const before = await open({ name });
    const queued = await before.enqueue(message(['x@example.net']));
    const after = await open({ name, keys: newKey(), maxAgeMs: 1000, retryMaxMs: 60_000 });
    const b = recordingBounce();
    const keyless = after.startWorkers({ concurrency: 1, deliver: scripted(() => ({ kind: 'accepted' })).deliver, bounce: b.bounce });
    await waitFor('parking', async () => (await after.list())[0]?.state === 'failed');
    expect(b.bounces).toHaveLength(0);
    expect((await after.stats()).depth).toBe(1);
    await keyless.close(1000);
    // With the key back, the operator's retry delivers it.
    const restored = await open({ name });
    const s = scripted(() => ({ kind: 'accepted' }));
    restored.startWorkers({ concurrency: 1, deliver: s.deliver, bounce: recordingBounce().bounce });
    expect(await restored.retry(queued.status === 'queued' ? queued.id : '')).toBe('retried');
    await waitFor('delivery', empty(restored));
    expect(s.calls.map((c) => c.recipient)).toEqual(['x@example.net']);
  });
});

describe('operator functions', () => {
  it('lists metadata only, retries now, deletes, and bounces on request', async () => {
    const q = await open({ retryBaseMs: 60_000, retryMaxMs: 60_000 });
    const ids: string[] = [];
    for (const r of ['one@example.net', 'two@example.net', 'three@example.net']) {
      const res = await q.enqueue({ ...message([r]), lastError: 'http; 503 from the relay' });
      if (res.status === 'queued') ids.push(res.id);
    }
    let outage = true;
    const s = scripted(() => (outage ? { kind: 'temporary', reason: 'http; 429', retryAfterMs: 60_000 } : { kind: 'accepted' }));
    const b = recordingBounce();
    q.startWorkers({ concurrency: 3, deliver: s.deliver, bounce: b.bounce });
    await waitFor('three attempts', async () => (await q.list()).filter((e) => e.state === 'delayed').length === 3);

    const list = await q.list();
    expect(list.map((e) => e.id)).toEqual(ids);
    expect(list[0]).toMatchObject({
      account: '1001',
      sender: 'sender@example.com',
      recipients: ['one@example.net'],
      attempts: 1,
      lastError: 'http; 429',
      isBounce: false,
      keyId: 'k1',
    });
    expect(list[0]?.nextAttemptAt).toBeGreaterThan(Date.now() + 30_000);
    expect(JSON.stringify(list)).not.toMatch(/private message|SECRET|Quarterly/);

    outage = false;
    expect(await q.retry(ids[0] as string)).toBe('promoted');
    await waitFor('the retried one', async () => (await q.list()).length === 2);
    expect(await q.remove(ids[1] as string)).toBe('removed');
    expect(await q.remove(ids[1] as string)).toBe('not-found');
    expect(await q.bounce(ids[2] as string)).toBe('scheduled');
    await waitFor('the bounced one', empty(q));
    expect(b.bounces).toHaveLength(1);
    expect(b.bounces[0]?.failures).toEqual([
      { recipient: 'three@example.net', status: '5.0.0', reason: 'returned to the sender by the postmaster', cause: 'operator' },
    ]);
    expect(s.calls.filter((c) => c.recipient === 'one@example.net')).toHaveLength(2);
    expect(s.calls.filter((c) => c.recipient === 'three@example.net')).toHaveLength(1);
    expect(await q.stats()).toMatchObject({ depth: 0, bytes: 0 });
    expect(await q.retry('0000000000nothere000')).toBe('not-found');
    expect(await q.retry('../etc')).toBe('not-found');
  });

  it('retry all promotes every delayed message', async () => {
    const q = await open({ retryBaseMs: 60_000, retryMaxMs: 60_000 });
    for (let i = 0; i < 3; i++) await q.enqueue(message([`r${i}@example.net`]));
    let outage = true;
    const s = scripted(() => (outage ? { kind: 'temporary', reason: 'http; 503', retryAfterMs: 60_000 } : { kind: 'accepted' }));
    q.startWorkers({ concurrency: 3, deliver: s.deliver, bounce: recordingBounce().bounce });
    await waitFor('three attempts', async () => (await q.list()).filter((e) => e.state === 'delayed').length === 3);
    outage = false;
    expect(await q.retry('all')).toMatchObject({ promoted: 3 });
    await waitFor('delivery', empty(q));
  });
});

describe('graceful close', () => {
  it('returns a job whose delivery outlasts the timeout to the queue, pending recipients intact', async () => {
    const name = queueName();
    const q = await open({ name });
    await q.enqueue(message(['done@example.net', 'stuck@example.net']));
    let started = false;
    const workers = q.startWorkers({
      concurrency: 1,
      bounce: recordingBounce().bounce,
      deliver: async (_job, signal) => {
        started = true;
        await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve()));
        return {
          outcomes: new Map<string, RecipientOutcome>([
            ['done@example.net', { kind: 'accepted' }],
            ['stuck@example.net', { kind: 'temporary', reason: 'aborted at shutdown' }],
          ]),
        };
      },
    });
    await waitFor('delivery start', () => started);
    await workers.close(300);
    const [entry] = await q.list();
    expect(entry).toMatchObject({ state: 'waiting', recipients: ['stuck@example.net'], lastError: 'aborted at shutdown' });
    expect((await q.stats()).possibleDuplicates).toBe(0);

    const s = scripted(() => ({ kind: 'accepted' }));
    const next = await open({ name });
    next.startWorkers({ concurrency: 1, deliver: s.deliver, bounce: recordingBounce().bounce });
    await waitFor('delivery', empty(next));
    expect(s.calls.map((c) => c.recipient)).toEqual(['stuck@example.net']);
    expect(s.calls[0]?.job.resumed).toBe(false);
  });

  it('abandons a delivery that ignores its abort signal; stalled-job recovery returns the job, counted as a possible duplicate', async () => {
    const name = queueName();
    const timing = { lockDurationMs: 1000, stalledIntervalMs: 300 };
    const q = await open({ name, ...timing });
    await q.enqueue(message(['deaf@example.net']));
    let started = false;
    const workers = q.startWorkers({
      concurrency: 1,
      bounce: recordingBounce().bounce,
      deliver: async () => {
        started = true;
        return new Promise<never>(() => undefined);
      },
    });
    await waitFor('delivery start', () => started);
    await workers.close(100);
    const s = scripted(() => ({ kind: 'accepted' }));
    const next = await open({ name, ...timing });
    next.startWorkers({ concurrency: 1, deliver: s.deliver, bounce: recordingBounce().bounce });
    await waitFor('recovery and delivery', empty(next));
    expect(s.calls.map((c) => [c.recipient, c.job.resumed])).toEqual([['deaf@example.net', true]]);
    expect((await next.stats()).possibleDuplicates).toBe(1);
    expect(await metric(next, 'possible_duplicates_total')).toBe(1);
  });

  it('lets a delivery that finishes within the timeout complete', async () => {
    const q = await open();
    await q.enqueue(message(['a@example.net']));
    let started = false;
    const workers = q.startWorkers({
      concurrency: 1,
      bounce: recordingBounce().bounce,
      deliver: async () => {
        started = true;
        await sleep(300);
        return { outcomes: new Map([['a@example.net', { kind: 'accepted' }]]) };
      },
    });
    await waitFor('delivery start', () => started);
    await workers.close(10_000);
    expect((await q.stats()).depth).toBe(0);
  });
});

describe('without the key or without Redis', () => {
  it('serves the operator functions without QUEUE_ENCRYPTION_KEY, and refuses to store or deliver', async () => {
    const name = queueName();
    const producer = await open({ name });
    const queued = await producer.enqueue(message(['a@example.net']));
    const operator = await openQueue<Body, Session>({ redisUrl: redis.url, maxBytes: 0, name, register: new Registry() });
    try {
      expect((await operator.list()).map((e) => e.recipients)).toEqual([['a@example.net']]);
      await expect(operator.enqueue(message(['b@example.net']))).rejects.toThrow(/opened without QUEUE_ENCRYPTION_KEY/);
      expect(() => operator.startWorkers({ concurrency: 1, deliver: scripted(() => ({ kind: 'accepted' })).deliver, bounce: recordingBounce().bounce })).toThrow(
        /opened without QUEUE_ENCRYPTION_KEY/,
      );
      expect(await operator.remove(queued.status === 'queued' ? queued.id : '')).toBe('removed');
      expect(await operator.stats()).toMatchObject({ depth: 0, bytes: 0 });
    } finally {
      await operator.close();
    }
  });

  it('throws QueueUnavailableError at once when Redis is away, and stores again when it is back', async () => {
    const proxy = await startRedisProxy(redis.url);
    const q = await open({ redisUrl: proxy.url });
    try {
      expect((await q.enqueue(message(['a@example.net']))).status).toBe('queued');
      await proxy.cut();
      await expect(q.enqueue(message(['b@example.net']))).rejects.toBeInstanceOf(QueueUnavailableError);
      expect(await metric(q, 'enqueued_total', { outcome: 'error' })).toBe(1);
      await proxy.restore();
      await waitFor('reconnection', async () => (await q.enqueue(message(['c@example.net'])).catch(() => undefined)) !== undefined);
      expect((await q.list()).map((e) => e.recipients[0])).toEqual(['a@example.net', 'c@example.net']);
    } finally {
      await proxy.close();
    }
  });
});
