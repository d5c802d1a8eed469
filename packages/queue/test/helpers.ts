/**
 * Test plumbing: a redis-server with AOF on (appendfsync always; testkit's), a key ring, a fake Cakemail session, and a deliver
 * function that talks to the testkit's fake Cakemail API the way the relay
 * does (one POST per recipient, an accepted-recipient set that keeps a retry
 * from sending twice).
 */
import { randomBytes } from 'node:crypto';
import { startPersistentRedisServer, type PersistentRedis } from '@cakemail-smtp/testkit';
import { Redis } from 'ioredis';
import type { DeliverResult, QueuedJob, RecipientOutcome } from '../src/index.js';

/** The queue's Redis in these tests: AOF on, `appendfsync always` (testkit's). */
export type AofRedis = PersistentRedis;
export const startAofRedis = (): Promise<AofRedis> => startPersistentRedisServer();

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
