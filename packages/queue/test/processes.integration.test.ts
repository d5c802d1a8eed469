/**
 * Worker processes against a real redis-server with AOF on and the testkit's
 * fake Cakemail API: two replicas share the queue; a replica killed with
 * SIGKILL mid-delivery loses nothing, and its only duplicates are the sends
 * in flight at the kill, counted; 200 messages queued through an outage are
 * all delivered once the API is back, each exactly once.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { createFakeCakemail, DEFAULT_ACCOUNT_ID, DEFAULT_SENDER, DEFAULT_USER, type FakeCakemail } from '@cakemail-smtp/testkit';
import { Redis } from 'ioredis';
import { Registry } from 'prom-client';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { openQueue, type MessageQueue } from '../src/index.js';
import {
  fakeDeliver,
  fakeLogin,
  newKey,
  queueName,
  startAofRedis,
  waitFor,
  type AofRedis,
  type FakeBody,
  type FakeSession,
} from './helpers.js';

const childScript = fileURLToPath(new URL('./fixtures/worker-child.ts', import.meta.url));
const key = `k1:${newKey()}`;

let redis: AofRedis;
let client: Redis;
let fake: FakeCakemail;
let apiUrl: string;
let listId: number;
let session: FakeSession;
let name: string;
let queue: MessageQueue<FakeBody, FakeSession>;
const children = new Set<ChildProcess>();

beforeAll(async () => {
  redis = await startAofRedis();
  client = new Redis(redis.url);
  fake = createFakeCakemail();
  apiUrl = await fake.listen();
  listId = fake.addList(DEFAULT_ACCOUNT_ID, { name: 'SMTP Gateway' }).id;
  session = await fakeLogin(apiUrl, DEFAULT_USER.email, DEFAULT_USER.password);
});
beforeEach(async () => {
  fake.reset();
  await client.del('delivered-by', 'bounces');
  name = queueName();
  queue = await openQueue<FakeBody, FakeSession>({
    redisUrl: redis.url,
    keys: key,
    maxBytes: 0,
    name,
    retryBaseMs: 50,
    retryMaxMs: 500,
    lockDurationMs: 5000,
    stalledIntervalMs: 1000,
    register: new Registry(),
  });
});
afterEach(async () => {
  for (const child of children) child.kill('SIGKILL');
  children.clear();
  await queue.close(1000);
});
afterAll(async () => {
  client.disconnect();
  await fake.close();
  await redis.stop();
});

async function startChild(worker: string, concurrency: number): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', childScript], {
    env: {
      PATH: process.env['PATH'] ?? '',
      REDIS_URL: redis.url,
      QUEUE_NAME: name,
      QUEUE_ENCRYPTION_KEY: key,
      API_URL: apiUrl,
      CONCURRENCY: String(concurrency),
      WORKER_NAME: worker,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  await waitFor(`worker ${worker} ready (output: ${out})`, () => {
    if (child.exitCode !== null) throw new Error(`worker ${worker} exited: ${out}`);
    return out.includes('ready\n');
  });
  return child;
}

async function enqueueMessages(count: number, recipientsEach: number): Promise<string[]> {
  const emails: string[] = [];
  for (let i = 0; i < count; i++) {
    const recipients = Array.from({ length: recipientsEach }, (_, j) => `m${i}r${j}@example.net`);
    emails.push(...recipients);
    const result = await queue.enqueue({
      account: String(DEFAULT_ACCOUNT_ID),
      sender: DEFAULT_SENDER.email,
      recipients,
      body: {
        accountId: DEFAULT_ACCOUNT_ID,
        request: {
          sender: { id: DEFAULT_SENDER.id, name: DEFAULT_SENDER.name },
          list_id: listId,
          content: { type: 'transactional', subject: `Message ${i}`, text: `Body ${i}`, encoding: 'utf-8' },
        },
      },
      session,
    });
    expect(result.status).toBe('queued');
  }
  return emails;
}

/** How many times the fake accepted each address. */
function sendsPerEmail(): Map<string, number> {
  const counts = new Map<string, number>();
  for (const s of fake.sent()) counts.set(s.body.email as string, (counts.get(s.body.email as string) ?? 0) + 1);
  return counts;
}

const empty = async () => (await queue.stats()).depth === 0;

// Child processes start through tsx and the machine may be shared: generous time, and locks long
// enough that a busy event loop is not taken for a dead worker (which would redeliver a live job).
describe('worker processes', { timeout: 120_000 }, () => {
  it('two replicas share the queue and deliver each message once', async () => {
    fake.faults.set('send', { delayMs: 20 });
    await startChild('a', 2);
    await startChild('b', 2);
    const emails = await enqueueMessages(40, 2);
    await waitFor('delivery', empty, 120_000);
    const sends = sendsPerEmail();
    expect([...sends.keys()].sort()).toEqual([...emails].sort());
    expect([...sends.values()].every((n) => n === 1)).toBe(true);
    const by = await client.hgetall('delivered-by');
    expect(Number(by['a'])).toBeGreaterThan(0);
    expect(Number(by['b'])).toBeGreaterThan(0);
    expect(Number(by['a']) + Number(by['b'])).toBe(80);
    expect((await queue.stats()).possibleDuplicates).toBe(0);
  });

  it('kill -9 mid-delivery loses nothing; duplicates are only the sends in flight, and are counted', async () => {
    const concurrency = 4;
    // Slow sends (about 5 s for the 70 left at the kill), so that a loaded machine cannot finish them
    // all before the kill and leave nothing in flight to prove the point.
    fake.faults.set('send', { delayMs: 300 });
    const victim = await startChild('victim', concurrency);
    const emails = await enqueueMessages(30, 3);
    await waitFor('some deliveries', () => fake.sent().length >= 20, 120_000);
    const exited = once(victim, 'exit');
    victim.kill('SIGKILL');
    await exited;
    const sentAtKill = fake.sent().length;
    expect(sentAtKill).toBeLessThan(emails.length);
    expect((await queue.list()).some((e) => e.state === 'active')).toBe(true);

    await startChild('restarted', concurrency);
    await waitFor('recovery and delivery', empty, 120_000);

    const sends = sendsPerEmail();
    expect([...sends.keys()].sort()).toEqual([...emails].sort());
    const duplicates = [...sends.values()].filter((n) => n > 1).length;
    const counted = (await queue.stats()).possibleDuplicates;
    expect(counted).toBeGreaterThanOrEqual(1);
    expect(counted).toBeLessThanOrEqual(concurrency);
    expect(duplicates).toBeLessThanOrEqual(counted);
    expect([...sends.values()].every((n) => n <= 2)).toBe(true);
  });

  it('a SIGTERM lets the replica finish what it holds', async () => {
    fake.faults.set('send', { delayMs: 50 });
    const child = await startChild('graceful', 4);
    const emails = await enqueueMessages(20, 2);
    await waitFor('some deliveries', () => fake.sent().length >= 5, 120_000);
    const exited = once(child, 'exit');
    child.kill('SIGTERM');
    const [code] = await exited;
    expect(code).toBe(0);
    await startChild('next', 4);
    await waitFor('delivery', empty, 120_000);
    const sends = sendsPerEmail();
    expect([...sends.keys()].sort()).toEqual([...emails].sort());
    expect([...sends.values()].every((n) => n === 1)).toBe(true);
    expect((await queue.stats()).possibleDuplicates).toBe(0);
  });
});

describe('an outage', { timeout: 120_000 }, () => {
  it('delivers 200 messages queued during an outage exactly once after it ends', async () => {
    fake.faults.set('send', { status: 503 });
    const emails = await enqueueMessages(200, 2);
    const workers = queue.startWorkers({
      concurrency: 8,
      deliver: fakeDeliver(apiUrl, client),
      bounce: async () => {
        throw new Error('no bounce expected');
      },
    });
    // Every message has failed at least once before the API comes back.
    await waitFor('an attempt at each message', async () => (await queue.list(1000)).every((e) => e.attempts >= 1), 120_000);
    expect(fake.sent()).toHaveLength(0);
    fake.faults.clear('send');
    await waitFor('delivery', empty, 120_000);
    const sends = sendsPerEmail();
    expect(sends.size).toBe(400);
    expect([...sends.keys()].sort()).toEqual([...emails].sort());
    expect([...sends.values()].every((n) => n === 1)).toBe(true);
    await workers.close(5000);
  });
});
