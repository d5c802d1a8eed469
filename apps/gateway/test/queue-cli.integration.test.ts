/**
 * `pnpm run queue …`, run from the repository's root exactly as the README
 * writes it, against a real redis-server holding messages queued through the
 * queue package: what each command prints, its exit code, and its effect on
 * the queue.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openQueue, type MessageQueue, type Workers } from '@cakemail-smtp/queue';
import { eventually, QUEUE_KEY, startAofRedis, type AofRedis } from './queue-helpers.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));

interface Result {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** A README command, run from the root with the pinned pnpm on PATH. */
function readme(command: string, env: Record<string, string>): Promise<Result> {
  return new Promise((resolve) => {
    const child = spawn('bash', ['-c', `. scripts/pnpm-env.sh && exec ${command}`], {
      cwd: root,
      env: { PATH: process.env['PATH'] ?? '', HOME: process.env['HOME'] ?? '/root', NO_COLOR: '1', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

const BODY_TEXT = 'the confidential body text of a queued message';
const TOKEN = 'access-token-that-must-never-be-printed';

let redis: AofRedis;
let queue: MessageQueue<{ text: string }, { token: string }>;
let env: Record<string, string>;

async function queued(recipients: string[], lastError?: string): Promise<string> {
  const r = await queue.enqueue({
    account: '4242',
    sender: 'sender@example.com',
    recipients,
    body: { text: BODY_TEXT },
    session: { token: TOKEN },
    ...(lastError ? { lastError } : {}),
  });
  if (r.status !== 'queued') throw new Error('not queued');
  return r.id;
}

beforeAll(async () => {
  redis = await startAofRedis();
  queue = await openQueue({ redisUrl: redis.url, keys: QUEUE_KEY, maxBytes: 0 });
  env = { REDIS_URL: redis.url };
});

afterAll(async () => {
  await queue?.close();
  await redis?.stop();
});

describe('pnpm run queue', () => {
  it('list prints each message (id, account, sender, recipients, last error) and never a body or a token', async () => {
    const empty = await readme('pnpm run queue list', env);
    expect(empty.code).toBe(0);
    expect(empty.stdout).toContain('Mail queue is empty');

    const a = await queued(['one@example.net', 'two@example.net'], 'http; 503 Service Unavailable');
    const b = await queued(['three@example.net']);
    const listed = await readme('pnpm run queue list', env);
    expect(listed.code).toBe(0);
    for (const text of [a, b, '4242', 'sender@example.com', 'one@example.net', 'two@example.net', 'three@example.net', '(http; 503 Service Unavailable)', '2 Requests']) {
      expect(listed.stdout).toContain(text);
    }
    expect(listed.stdout + listed.stderr).not.toContain(BODY_TEXT);
    expect(listed.stdout + listed.stderr).not.toContain(TOKEN);
    await queue.remove(a);
    await queue.remove(b);
  });

  it('delete removes a message without a bounce; a second delete exits 1, not in the queue', async () => {
    const id = await queued(['gone@example.net']);
    const deleted = await readme(`pnpm run queue delete ${id}`, env);
    expect(deleted.code).toBe(0);
    expect(deleted.stdout).toContain(`${id}: deleted, without a bounce`);
    expect((await queue.list()).map((e) => e.id)).not.toContain(id);
    expect((await queue.stats()).depth).toBe(0);

    const again = await readme(`pnpm run queue delete ${id}`, env);
    expect(again.code).toBe(1);
    expect(again.stdout).toContain(`${id}: not in the queue`);
  });

  it('retry <id> delivers a message waiting for its retry now; retry --all counts; an unknown id exits 1', async () => {
    let attempts = 0;
    const delivered: string[] = [];
    const workers: Workers = queue.startWorkers({
      concurrency: 1,
      async deliver(job) {
        attempts++;
        if (attempts === 1) {
          // Cakemail asks for an hour: the message waits, delayed.
          return { outcomes: new Map(job.recipients.map((r) => [r, { kind: 'temporary' as const, reason: 'http; 503', retryAfterMs: 3_600_000 }])) };
        }
        delivered.push(...job.recipients);
        return { outcomes: new Map(job.recipients.map((r) => [r, { kind: 'accepted' as const }])) };
      },
      async bounce() {},
    });
    try {
      const id = await queued(['later@example.net']);
      await eventually(async () => (await queue.list()).some((e) => e.id === id && e.state === 'delayed'), 60_000, 'the first attempt');
      const all = await readme('pnpm run queue retry --all', env);
      expect(all.code).toBe(0);
      expect(all.stdout).toContain('retry: 1 to deliver now');
      await eventually(() => delivered.includes('later@example.net'), 60_000, 'the retried delivery');
      await eventually(async () => (await queue.stats()).depth === 0, 30_000, 'an empty queue');

      attempts = 0;
      const second = await queued(['next@example.net']);
      await eventually(async () => (await queue.list()).some((e) => e.id === second && e.state === 'delayed'), 60_000, 'the first attempt');
      const one = await readme(`pnpm run queue retry ${second}`, env);
      expect(one.code).toBe(0);
      expect(one.stdout).toContain(`${second}: to deliver now`);
      await eventually(() => delivered.includes('next@example.net'), 60_000, 'the retried delivery');

      const unknown = await readme('pnpm run queue retry 00000000000000000000', env);
      expect(unknown.code).toBe(1);
      expect(unknown.stdout).toContain('00000000000000000000: not in the queue');
    } finally {
      await workers.close(5000);
    }
  });

  it('bounce <id> returns the message to its sender: the next worker bounces it (cause operator), without a delivery', async () => {
    const id = await queued(['back@example.net']);
    const bounce = await readme(`pnpm run queue bounce ${id}`, env);
    expect(bounce.code).toBe(0);
    expect(bounce.stdout).toContain(`${id}: returning to its sender`);

    const bounced: Array<{ sender: string; recipient: string; cause: string }> = [];
    let deliveries = 0;
    const workers = queue.startWorkers({
      concurrency: 1,
      async deliver(job) {
        deliveries++;
        return { outcomes: new Map(job.recipients.map((r) => [r, { kind: 'accepted' as const }])) };
      },
      async bounce(job, failures) {
        for (const f of failures) bounced.push({ sender: job.sender, recipient: f.recipient, cause: f.cause });
      },
    });
    try {
      await eventually(() => bounced.length === 1, 60_000, 'the bounce');
      expect(bounced).toEqual([{ sender: 'sender@example.com', recipient: 'back@example.net', cause: 'operator' }]);
      expect(deliveries).toBe(0);
      await eventually(async () => (await queue.stats()).depth === 0, 30_000, 'an empty queue');
    } finally {
      await workers.close(5000);
    }
    const missing = await readme(`pnpm run queue bounce ${id}`, env);
    expect(missing.code).toBe(1);
  });

  it('a usage error exits 2 with the usage; without REDIS_URL exits 2 naming it; an unreachable Redis exits 1 without its password', async () => {
    const usage = await readme('pnpm run queue retry', env);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain('retry needs a queue id or --all');
    expect(usage.stderr).toContain('usage: smtp-gateway queue');

    const unknown = await readme('pnpm run queue flush', env);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('unknown command "flush"');

    const noRedis = await readme('pnpm run queue list', {});
    expect(noRedis.code).toBe(2);
    expect(noRedis.stderr).toContain('REDIS_URL: required');

    const down = await readme('pnpm run queue list', { REDIS_URL: 'redis://:hunter2-queue-password@127.0.0.1:1' });
    expect(down.code).toBe(1);
    expect(down.stderr).toContain('cannot reach Redis at redis://127.0.0.1:1: connect ECONNREFUSED');
    expect(down.stdout + down.stderr).not.toContain('hunter2');
  });
});
