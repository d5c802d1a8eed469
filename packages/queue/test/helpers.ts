/**
 * Test plumbing: a redis-server with AOF on (appendfsync always) in its own
 * temporary directory, a key ring, a fake Cakemail session, and a deliver
 * function that talks to the testkit's fake Cakemail API the way the relay
 * does (one POST per recipient, an accepted-recipient set that keeps a retry
 * from sending twice).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '@cakemail-smtp/testkit';
import { Redis } from 'ioredis';
import type { DeliverResult, QueuedJob, RecipientOutcome } from '../src/index.js';

export interface AofRedis {
  readonly url: string;
  readonly dir: string;
  /** SIGKILL the server, then start it again on the same port from the same AOF. */
  crashAndRestart(): Promise<void>;
  stop(): Promise<void>;
}


/** Starts redis-server on `port` and resolves once it answers PING; undefined if it exits first. */
async function spawnRedis(port: number, dir: string): Promise<ChildProcess | undefined> {
  const child: ChildProcess = spawn(
    process.env['REDIS_SERVER_BIN'] ?? '/usr/bin/redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'yes', '--appendfsync', 'always'],
    { stdio: 'ignore' },
  );
  const probe = new Redis(`redis://127.0.0.1:${port}`, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  probe.on('error', () => undefined);
  const deadline = Date.now() + 10_000;
  try {
    while (child.exitCode === null && Date.now() < deadline) {
      try {
        await probe.connect();
        // A server still loading its AOF answers LOADING; wait until it answers PONG.
        if ((await probe.ping()) === 'PONG') return child;
      } catch {
        probe.disconnect();
      }
      await sleep(50);
    }
  } finally {
    probe.disconnect();
  }
  child.kill('SIGKILL');
  return undefined;
}

async function kill(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill(signal);
  await exited;
}

export async function startAofRedis(): Promise<AofRedis> {
  const dir = await mkdtemp(join(tmpdir(), 'queue-redis-'));
  for (let attempt = 1; attempt <= 3; attempt++) {
    const port = await freePort();
    let child = await spawnRedis(port, dir);
    if (!child) continue;
    // If the test process exits without afterAll (a crash), take the server with it.
    const killOnExit = () => child?.kill('SIGKILL');
    process.on('exit', killOnExit);
    return {
      url: `redis://127.0.0.1:${port}`,
      dir,
      async crashAndRestart() {
        if (child) await kill(child, 'SIGKILL');
        child = await spawnRedis(port, dir);
        if (!child) throw new Error(`redis-server did not restart on port ${port}`);
      },
      async stop() {
        process.removeListener('exit', killOnExit);
        if (child) await kill(child, 'SIGTERM');
        await rm(dir, { recursive: true, force: true });
      },
    };
  }
  await rm(dir, { recursive: true, force: true });
  throw new Error('redis-server did not start');
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `check` until it is true; fails after `timeoutMs` with `what`. */
export async function waitFor(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

export const newKey = (): string => randomBytes(32).toString('base64');

/** A unique queue name per test, so tests sharing a Redis stay apart. */
export const queueName = (): string => `t${randomBytes(4).toString('hex')}`;

export interface FakeSession {
  readonly accessToken: string;
  readonly refreshToken: string;
}

export interface FakeBody {
  readonly accountId: number;
  readonly request: Record<string, unknown>;
}

/**
 * Deliver as the relay does, against the fake Cakemail API: recipients one at
 * a time, skipping those the accepted set already holds (the relay's
 * accepted-recipient store), recording each 201 there.
 */
export function fakeDeliver(apiUrl: string, redis: Redis) {
  return async (job: QueuedJob<FakeBody, FakeSession>): Promise<DeliverResult<FakeSession>> => {
    const outcomes = new Map<string, RecipientOutcome>();
    const acceptedKey = `accepted:${job.id}`;
    for (const email of job.recipients) {
      if ((await redis.sismember(acceptedKey, email)) === 1) {
        outcomes.set(email, { kind: 'accepted' });
        continue;
      }
      let response: Response;
      try {
        response = await fetch(`${apiUrl}/v2/emails?account_id=${job.body.accountId}`, {
          method: 'POST',
          headers: { authorization: `Bearer ${job.session.accessToken}`, 'content-type': 'application/json' },
          body: JSON.stringify({ ...job.body.request, email }),
        });
      } catch (err) {
        outcomes.set(email, { kind: 'temporary', reason: `connection failed: ${(err as Error).message}` });
        continue;
      }
      const text = await response.text();
      if (response.status === 201) {
        await redis.sadd(acceptedKey, email);
        outcomes.set(email, { kind: 'accepted', id: (JSON.parse(text) as { data: { id: string } }).data.id });
      } else if (response.status === 429 || response.status >= 500) {
        const retryAfter = Number(response.headers.get('retry-after') ?? NaN);
        outcomes.set(email, {
          kind: 'temporary',
          reason: `http; ${response.status}`,
          ...(Number.isFinite(retryAfter) ? { retryAfterMs: retryAfter * 1000 } : {}),
        });
      } else {
        outcomes.set(email, { kind: 'permanent', status: response.status === 403 ? '5.7.1' : '5.6.0', reason: `http; ${response.status} ${text.slice(0, 100)}` });
      }
    }
    return { outcomes };
  };
}

/** Logs in to the fake with the seeded user: the session a queued message carries. */
export async function fakeLogin(apiUrl: string, username: string, password: string): Promise<FakeSession> {
  const response = await fetch(`${apiUrl}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'password', username, password }).toString(),
  });
  const json = (await response.json()) as { access_token: string; refresh_token: string };
  return { accessToken: json.access_token, refreshToken: json.refresh_token };
}
