/**
 * Two replicas of the gateway sharing one Redis (REDIS_URL), as behind a load
 * balancer: failed logins on one lock the (username, IP) pair on the other, and
 * a client's retry that lands on the other replica does not send again to the
 * recipients Cakemail already accepted. Real redis-server (the one .ci/run
 * starts, or one of the test's own), real SMTP, the fake Cakemail.
 */
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { pino } from 'pino';
import { connectRedis } from '@cakemail-smtp/smtp-core';
import {
  authenticated,
  createFakeCakemail,
  DEFAULT_SENDER,
  DEFAULT_USER,
  loopbackGatewayEnv,
  startTls,
  testCertificates,
  testRedis,
  type TestRedis,
} from '@cakemail-smtp/testkit';
import { loadConfig } from '../src/config/index.js';
import { createGateway, type Gateway } from '../src/gateway.js';

let redis: TestRedis;
const fake = createFakeCakemail();
const gateways: Gateway[] = [];
const ports: number[] = [];

beforeAll(async () => {
  redis = await testRedis();
  const api = await fake.listen();
  const certs = await testCertificates();
  for (let i = 0; i < 2; i++) {
    const config = loadConfig({
      ...loopbackGatewayEnv(certs),
      CAKEMAIL_API_URL: api,
      REDIS_URL: redis.url,
      // the same key on both: they hash usernames alike, so they share the lockouts
      AUTH_LOCKOUT_KEY: 'replicas-test-lockout-key-0123456789abcdef',
      MAX_AUTH_FAILURES: '100',
    });
    const gateway = createGateway(config, { logger: pino({ level: 'silent' }) });
    ports.push((await gateway.listen()).smtpPort);
    gateways.push(gateway);
  }
});

afterAll(async () => {
  for (const gateway of gateways) await gateway.close();
  await fake.close();
  await redis.stop();
});

it('a pair locked on one replica is locked on the other', async () => {
  const certs = await testCertificates();
  const tls = { ca: certs.ca, servername: 'localhost' };
  // a username of its own, so a shared REDIS_URL's earlier runs do not interfere
  const username = `replica-${Date.now()}@example.com`;
  const first = await startTls({ port: ports[0] as number, tls });
  for (let i = 0; i < 10; i++) expect((await first.auth(username, 'wrong')).code).toBe(535);
  first.close();
  const second = await startTls({ port: ports[1] as number, tls });
  expect((await second.auth(username, 'wrong')).raw).toBe('454 4.7.0 Too many failed authentication attempts, try again later\r\n');
  // the real customer, same IP, is not locked by failures on another username
  expect((await second.auth(DEFAULT_USER.email, DEFAULT_USER.password)).code).toBe(235);
  second.close();

  // Redis holds neither the username nor its plain SHA-256, which anyone reading it could test guesses against.
  const client = await connectRedis({ url: redis.url });
  try {
    const keys = await client.keys('smtp-gateway:auth:pair:*');
    expect(keys.length).toBeGreaterThan(0);
    const all = keys.join(' ');
    expect(all).not.toContain(username);
    expect(all).not.toContain(username.split('@')[0]);
    expect(all).not.toContain(createHash('sha256').update(username).digest('hex').slice(0, 16));
  } finally {
    client.disconnect();
  }
});

it("a retry on the other replica skips the recipients Cakemail already accepted", async () => {
  const certs = await testCertificates();
  const tls = { ca: certs.ca, servername: 'localhost' };
  // unique per run, so a shared REDIS_URL's earlier runs do not interfere
  const message = [
    `From: ${DEFAULT_SENDER.email}`,
    'To: a@example.net, b@example.net',
    'Subject: across replicas',
    `Message-ID: <replica-retry-${Date.now()}@example.com>`,
    '',
    'Hello',
    '',
  ].join('\r\n');
  const send = async (port: number) => {
    const client = await authenticated({ port, tls, username: DEFAULT_USER.email, password: DEFAULT_USER.password });
    const reply = await client.sendMail(DEFAULT_SENDER.email, ['a@example.net', 'b@example.net'], message);
    client.close();
    return reply;
  };
  fake.faults.set('send', { status: 429, retryAfter: 300, times: 1, match: { email: 'b@example.net' } }); // past the deadline: answered at once
  expect((await send(ports[0] as number)).raw).toBe('451 4.7.1 Cakemail rate limit reached, try again later\r\n');
  const retry = await send(ports[1] as number);
  expect(retry.raw).toMatch(/^250 2\.0\.0 Ok: queued as [0-9a-f-]{36} \(\+1 more\)\r\n$/);
  const sentTo = (email: string) => fake.sent().filter((e) => e.body.email === email && e.body.content.subject === 'across replicas');
  expect(sentTo('a@example.net')).toHaveLength(1);
  expect(sentTo('b@example.net')).toHaveLength(1);
});

it('a retry on the other replica while the first attempt is in flight waits for it: one send, the same id', async () => {
  const certs = await testCertificates();
  const tls = { ca: certs.ca, servername: 'localhost' };
  const rcpt = 'inflight-replicas@example.net';
  const message = [
    `From: ${DEFAULT_SENDER.email}`,
    `To: ${rcpt}`,
    'Subject: in flight across replicas',
    `Message-ID: <replica-inflight-${Date.now()}@example.com>`,
    '',
    'Hello',
    '',
  ].join('\r\n');
  // warm both replicas' sender and list caches
  for (const port of ports) {
    const warm = await authenticated({ port, tls, username: DEFAULT_USER.email, password: DEFAULT_USER.password });
    expect((await warm.sendMail(DEFAULT_SENDER.email, ['warm@example.net'], 'Subject: warm\r\n\r\nwarm\r\n')).code).toBe(250);
    warm.close();
  }
  fake.faults.set('send', { delayMs: 5000, match: { email: rcpt } });
  try {
    const first = await authenticated({ port: ports[0] as number, tls, username: DEFAULT_USER.email, password: DEFAULT_USER.password });
    const pending = first.sendMail(DEFAULT_SENDER.email, [rcpt], message).catch(() => undefined);
    for (let start = Date.now(); (fake.faults.list('send')[0]?.hits ?? 0) < 1; ) {
      if (Date.now() - start > 10_000) throw new Error('the first send never reached the fake');
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    first.close(); // the client gives up and retries on the other replica
    await pending;
    const second = await authenticated({ port: ports[1] as number, tls, username: DEFAULT_USER.email, password: DEFAULT_USER.password, timeoutMs: 20_000 });
    const retry = await second.sendMail(DEFAULT_SENDER.email, [rcpt], message);
    second.close();
    const sent = fake.sent().filter((e) => e.body.email === rcpt);
    expect(sent).toHaveLength(1);
    expect(retry.raw).toBe(`250 2.0.0 Ok: queued as ${sent[0]?.id}\r\n`);
    expect(fake.faults.list('send')[0]?.hits).toBe(1);
  } finally {
    fake.faults.clear();
  }
});
