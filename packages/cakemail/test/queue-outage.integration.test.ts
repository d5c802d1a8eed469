// An outage of minutes is invisible in the queue modes (issue #11's "Done when"): a client that
// logged in before the outage can log in again, pass MAIL FROM and DATA, and get its 250 during
// an outage longer than every cache TTL (AUTH_CACHE_TTL_MS, the senders' TTL, the access token's
// freshness), because the relay serves the answers Cakemail gave last (stale-if-unavailable).
// Real SMTP (nodemailer over STARTTLS) through smtp-core's server and the relay backend, the fake
// Cakemail API switched to an outage and back, the queue on a real redis-server (AOF). Small TTLs
// keep it short; the outage only has to outlast them.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { MessageQueue } from '@cakemail-smtp/queue';
import { createFakeCakemail, type FakeCakemail, type RouteKey, startPersistentRedisServer, type PersistentRedis } from '@cakemail-smtp/testkit';
import { createRelayBackend, type RelayBackend, type RelayConfig } from '../src/relay/backend.js';
import type { QueuedBody, QueuedSession, QueueMode } from '../src/relay/queue.js';
import type { Logger } from '../src/types.js';
import { relayConfig } from './helpers/relay-config.js';
import { openTestQueue, sendThrough, startSmtpFront, type Sent, type SmtpFront } from './helpers/smtp-front.js';

const quiet: Logger = { debug() {}, info() {}, warn() {}, error() {}, child: () => quiet };
const ROUTES: readonly RouteKey[] = ['token', 'senders', 'lists', 'createList', 'send'];
/** Longer than every TTL below: the auth cache, the senders' cache, a 2 s token's freshness (1 s). */
const OUTAGE_MS = 1_500;
const SHORT_TTLS: Partial<RelayConfig> = { authCacheTtlMs: 300, sendersTtlMs: 300 };

let redis: PersistentRedis;
let api: FakeCakemail | undefined;
let queue: MessageQueue<QueuedBody, QueuedSession> | undefined;
let backend: RelayBackend | undefined;
let front: SmtpFront | undefined;

beforeAll(async () => {
  redis = await startPersistentRedisServer();
});
afterAll(async () => {
  await redis.stop();
});
afterEach(async () => {
  await front?.close();
  await queue?.close(2000);
  await backend?.close();
  await api?.close();
  front = queue = backend = api = undefined;
});

async function start(mode: QueueMode, overrides: Partial<RelayConfig>, tokenTtlSeconds = 2): Promise<FakeCakemail> {
  const fake = createFakeCakemail({ tokenTtlSeconds });
  api = fake;
  await fake.listen(0);
  const maxAgeMs = 60_000;
  if (mode !== 'off') {
    queue = await openTestQueue(redis.url, maxAgeMs);
  }
  backend = createRelayBackend(relayConfig(fake.url, overrides), {
    logger: quiet,
    ...(queue === undefined || mode === 'off' ? {} : { queue: { mode, queue, maxAgeMs } }),
  });
  front = await startSmtpFront(backend);
  return fake;
}

function sendMail(subject: string, to: string[], pass?: string): Promise<Sent> {
  if (front === undefined) throw new Error('no SMTP listener');
  return sendThrough(front, { to, subject, text: 'Hello from a printer' }, pass);
}

/** Every route of the fake fails as told, until `recover()`. */
function outage(fake: FakeCakemail, how: 'http503' | 'reset'): void {
  for (const route of ROUTES) fake.faults.set(route, how === 'http503' ? { status: 503 } : { reset: true });
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function waitFor(what: string, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** The recipients of the emails the fake accepted with this subject, sorted. */
function deliveredWith(fake: FakeCakemail, subject: string): string[] {
  return fake
    .sent()
    .filter((e) => (e.body.content as { subject?: string } | undefined)?.subject === subject)
    .map((e) => e.body.email as string)
    .sort();
}

describe('an outage longer than every cache TTL, in the queue modes', () => {
  for (const [mode, how] of [
    ['fallback', 'http503'],
    ['always', 'reset'],
  ] as const) {
    it(`${mode} (every call ${how === 'http503' ? 'answered 503' : 'reset'}): a new session AUTHs, MAIL FROM, DATA → 250 queued; after recovery delivered exactly once`, async () => {
      const fake = await start(mode, SHORT_TTLS);
      const before = await sendMail('Before the outage', ['one@example.net']);
      expect(before).toMatchObject({ response: expect.stringMatching(/^250 2\.0\.0 Ok: queued as /) });

      outage(fake, how);
      await sleep(OUTAGE_MS);
      const during = await sendMail('During the outage', ['one@example.net', 'two@example.net']);
      expect(during).toMatchObject({ response: expect.stringMatching(/^250 2\.0\.0 Ok: queued as [0-9a-f]{20}/) });
      if (mode === 'fallback') expect((during as { response: string }).response).toMatch(/; delivery to Cakemail deferred$/);
      // A wrong password finds no login to stand in for it.
      expect(await sendMail('Wrong password', ['one@example.net'], 'not-the-password')).toEqual({
        responseCode: 454,
        response: '454 4.7.0 Temporary authentication failure, try again later',
      });
      expect(deliveredWith(fake, 'During the outage')).toEqual([]);

      fake.faults.clear();
      const q = queue;
      if (q === undefined || backend === undefined) throw new Error('no queue');
      q.startWorkers({ concurrency: 2, ...backend.queueHandlers() });
      await waitFor('delivery', async () => (await q.stats()).depth === 0);
      expect(deliveredWith(fake, 'During the outage')).toEqual(['one@example.net', 'two@example.net']);
      expect(deliveredWith(fake, 'Wrong password')).toEqual([]);
    });
  }

  it('off (no queue): the same outage is answered as without stale answers, 454 at AUTH and 451 at MAIL FROM', async () => {
    let fake = await start('off', SHORT_TTLS);
    expect(await sendMail('Before the outage', ['one@example.net'])).toMatchObject({ response: expect.stringMatching(/^250 /) });
    outage(fake, 'http503');
    await sleep(OUTAGE_MS);
    expect(await sendMail('During the outage', ['one@example.net'])).toEqual({
      responseCode: 454,
      response: '454 4.7.0 Temporary authentication failure, try again later',
    });
    await front?.close();
    await backend?.close();
    await fake.close();

    // A login still within AUTH_CACHE_TTL_MS (and its token fresh), the senders' cache expired: MAIL FROM → 451.
    fake = await start('off', { sendersTtlMs: 300 }, 3600);
    expect(await sendMail('Before the outage', ['one@example.net'])).toMatchObject({ response: expect.stringMatching(/^250 /) });
    outage(fake, 'http503');
    await sleep(OUTAGE_MS);
    const during = await sendMail('During the outage', ['one@example.net']);
    expect(during).toMatchObject({ responseCode: 451, response: expect.stringMatching(/^451 4\.\d\.\d /) });
    fake.faults.clear();
    expect(deliveredWith(fake, 'During the outage')).toEqual([]);
  });
});
