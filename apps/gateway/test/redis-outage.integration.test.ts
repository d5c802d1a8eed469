/**
 * Redis (REDIS_URL) goes away mid-test, a real redis-server stopped: the accepted-recipient
 * store answers from the replica's memory (every write went there too), so a client's retry
 * on the same replica never sends again to a recipient Cakemail accepted, whether it was
 * accepted before the outage or during it. Real SMTP, the fake Cakemail.
 */
import { afterEach, beforeEach, expect, it } from 'vitest';
import { DEFAULT_SENDER, startRedisServer, type TestRedis } from '@cakemail-smtp/testkit';
import { lineOf, sentTo, startGateway, textMessage, type RunningGateway } from './e2e-helpers.js';

const FROM = DEFAULT_SENDER.email;
const RCPTS = ['a@example.net', 'b@example.net'];
const RATE_LIMITED = '451 4.7.1 Cakemail rate limit reached, try again later';

let redis: TestRedis;
let gw: RunningGateway;

beforeEach(async () => {
  // a server of its own, whatever REDIS_URL says: this test stops it
  redis = await startRedisServer();
  gw = await startGateway({ env: { REDIS_URL: redis.url, AUTH_LOCKOUT_KEY: 'redis-outage-test-lockout-key-0123456789' } });
  // warm the login, sender and list caches
  expect((await gw.send({ from: FROM, to: 'warm@example.net', subject: 'warm', text: 'warm' })).ok).toBe(true);
  gw.fake.reset();
});

afterEach(async () => {
  await gw.close();
  await redis.stop();
});

it('accepted before the outage: the retry during the outage skips that recipient', async () => {
  const message = textMessage({ subject: 'outage after', headers: [`Message-ID: <outage-after-${Date.now()}@example.com>`] });
  gw.fake.faults.set('send', { status: 429, retryAfter: 300, times: 1, match: { email: 'b@example.net' } });
  expect(lineOf(await gw.sendRaw(FROM, RCPTS, message))).toBe(RATE_LIMITED);
  await redis.stop();

  const retry = lineOf(await gw.sendRaw(FROM, RCPTS, message));
  expect(retry).toBe(`250 2.0.0 Ok: queued as ${sentTo(gw.fake, 'a@example.net')[0]?.id} (+1 more)`);
  expect(sentTo(gw.fake, 'a@example.net')).toHaveLength(1);
  expect(sentTo(gw.fake, 'b@example.net')).toHaveLength(1);
});

it('accepted during the outage: the retry skips that recipient too', async () => {
  await redis.stop();
  const message = textMessage({ subject: 'outage before', headers: [`Message-ID: <outage-before-${Date.now()}@example.com>`] });
  gw.fake.faults.set('send', { status: 429, retryAfter: 300, times: 1, match: { email: 'b@example.net' } });
  expect(lineOf(await gw.sendRaw(FROM, RCPTS, message))).toBe(RATE_LIMITED);

  const retry = lineOf(await gw.sendRaw(FROM, RCPTS, message));
  expect(retry).toBe(`250 2.0.0 Ok: queued as ${sentTo(gw.fake, 'a@example.net')[0]?.id} (+1 more)`);
  expect(sentTo(gw.fake, 'a@example.net')).toHaveLength(1);
  expect(sentTo(gw.fake, 'b@example.net')).toHaveLength(1);
  expect(gw.logs().some((l) => l['msg'] === 'Redis unavailable')).toBe(true);
});
