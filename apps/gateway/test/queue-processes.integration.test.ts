/**
 * QUEUE_MODE across gateway processes (`node dist/main.js start`, as the
 * container runs it) sharing one redis-server with AOF on and the testkit's
 * fake Cakemail API: `kill -9` of a gateway while it delivers, then a restart,
 * loses nothing and duplicates only the sends in flight (counted, at most
 * QUEUE_CONCURRENCY); two replicas deliver each message once.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { openQueue } from '@cakemail-smtp/queue';
import {
  createFakeCakemail,
  createMailer,
  DEFAULT_SENDER,
  DEFAULT_USER,
  loopbackGatewayEnv,
  testCertificates,
  type FakeCakemail,
  type SentEmail,
} from '@cakemail-smtp/testkit';
import { scrapeMetrics } from './e2e-helpers.js';
import { eventually, queueEnv, startAofRedis, type AofRedis } from './queue-helpers.js';

const main = fileURLToPath(new URL('../dist/main.js', import.meta.url));

interface Gateway {
  readonly child: ChildProcess;
  readonly smtpPort: number;
  readonly opsPort: number;
  output(): string;
}

let redis: AofRedis;
let fake: FakeCakemail;
const children: ChildProcess[] = [];

beforeEach(async () => {
  redis = await startAofRedis();
  fake = createFakeCakemail();
  await fake.listen(0, '127.0.0.1');
});

afterEach(async () => {
  for (const child of children.splice(0)) {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = once(child, 'exit');
      child.kill('SIGKILL');
      await exited;
    }
  }
  await fake.close();
  await redis.stop();
});

async function startGatewayProcess(env: Record<string, string>): Promise<Gateway> {
  const certs = await testCertificates();
  const child = spawn(process.execPath, [main, 'start'], {
    env: {
      PATH: process.env['PATH'] ?? '',
      ...loopbackGatewayEnv(certs),
      TLS_RELOAD_INTERVAL_MS: '0',
      CAKEMAIL_API_URL: fake.url,
      UPSTREAM_DEADLINE_MS: '10000',
      SHUTDOWN_TIMEOUT_MS: '10000',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const ready = (): { smtpPort: number; opsPort: number } | undefined => {
    const line = out.split('\n').find((l) => l.includes('"gateway ready"'));
    return line === undefined ? undefined : (JSON.parse(line) as { smtpPort: number; opsPort: number });
  };
  await eventually(() => {
    if (child.exitCode !== null) throw new Error(`the gateway exited ${child.exitCode}:\n${out}`);
    return ready() !== undefined;
  }, 60_000, 'the gateway to start');
  const { smtpPort, opsPort } = ready() as { smtpPort: number; opsPort: number };
  return { child, smtpPort, opsPort, output: () => out };
}

/** Sends one message per recipient through nodemailer, `parallel` connections at a time; answers the reply lines. */
async function sendAll(ports: readonly number[], recipients: readonly string[], parallel = 8): Promise<string[]> {
  const { ca } = await testCertificates();
  const replies: string[] = [];
  for (let i = 0; i < recipients.length; i += parallel) {
    const batch = recipients.slice(i, i + parallel);
    replies.push(
      ...(await Promise.all(
        batch.map(async (to, j) => {
          const port = ports[(i + j) % ports.length] as number;
          const mailer = createMailer({ port, host: '127.0.0.1', ca, auth: { user: DEFAULT_USER.email, pass: DEFAULT_USER.password } });
          try {
            const info = await mailer.sendMail({ from: DEFAULT_SENDER.email, to, subject: `to ${to}`, text: 'Hello', messageId: `<${to}@example.com>` });
            return info.response;
          } finally {
            mailer.close();
          }
        }),
      )),
    );
  }
  return replies;
}

const isBounce = (e: SentEmail): boolean => (e.body.additional_headers ?? []).some((h) => h.name === 'X-Gateway-Bounce');
const sendsTo = (email: string): number => fake.sent().filter((e) => !isBounce(e) && e.body.email === email).length;

/** A counter's value on a replica's /metrics (0 when absent). */
async function metric(g: Gateway, name: string, labels = ''): Promise<number> {
  return (await scrapeMetrics(g.opsPort)).get(`${name}${labels ? `{${labels}}` : ''}`) ?? 0;
}

it('kill -9 while delivering, then a restart: every recipient delivered; duplicates only the sends in flight, counted, at most QUEUE_CONCURRENCY', async () => {
  const env = { ...queueEnv(redis, 'always'), QUEUE_CONCURRENCY: '4', LOG_LEVEL: 'info' };
  const first = await startGatewayProcess(env);
  // each send takes 2 s (15 rounds of 4 for 60 messages): however slow the machine is at sending them,
  // the kill finds deliveries left and sends in flight
  fake.faults.set('send', { delayMs: 2000 });
  const recipients = Array.from({ length: 60 }, (_, i) => `crash-${i}@example.net`);
  const replies = await sendAll([first.smtpPort], recipients);
  for (const line of replies) expect(line).toMatch(/^250 2\.0\.0 Ok: queued as [0-9a-f]{20}$/);

  await eventually(() => fake.sent().length >= 4, 120_000, 'deliveries under way');
  first.child.kill('SIGKILL');
  await once(first.child, 'exit');
  const beforeRestart = fake.sent().length;
  expect(beforeRestart).toBeLessThan(recipients.length);

  const second = await startGatewayProcess(env);
  // the dead replica's jobs come back when their locks expire (30 s) and the stalled-job check runs (every 15 s)
  await eventually(() => recipients.every((to) => sendsTo(to) > 0), 240_000, 'every recipient delivered');
  const queue = await openQueue({ redisUrl: redis.url, maxBytes: 0 });
  let stats;
  try {
    await eventually(async () => (await queue.stats()).depth === 0, 60_000, 'an empty queue');
    stats = await queue.stats();
  } finally {
    await queue.close();
  }
  const duplicated = recipients.filter((to) => sendsTo(to) > 1);
  for (const to of recipients) expect(sendsTo(to), to).toBeLessThanOrEqual(2);
  // the attempts that resumed after the kill are counted, in Redis and on the restarted replica's /metrics
  expect(stats.possibleDuplicates).toBeGreaterThanOrEqual(1);
  expect(stats.possibleDuplicates).toBeLessThanOrEqual(4);
  expect(duplicated.length).toBeLessThanOrEqual(stats.possibleDuplicates);
  expect(await metric(second, 'smtp_gateway_queue_possible_duplicates_total')).toBe(stats.possibleDuplicates);
  expect(fake.sent().filter(isBounce)).toHaveLength(0);
}, 600_000);

it('two replicas sharing Redis deliver each queued message once, and both deliver', async () => {
  const env = { ...queueEnv(redis, 'always'), QUEUE_CONCURRENCY: '4' };
  const a = await startGatewayProcess(env);
  const b = await startGatewayProcess(env);
  fake.faults.set('send', { delayMs: 50 });
  const recipients = Array.from({ length: 100 }, (_, i) => `replica-${i}@example.net`);
  const replies = await sendAll([a.smtpPort, b.smtpPort], recipients);
  for (const line of replies) expect(line).toMatch(/^250 2\.0\.0 Ok: queued as [0-9a-f]{20}$/);
  await eventually(() => recipients.every((to) => sendsTo(to) > 0), 240_000, 'every recipient delivered');
  await new Promise((resolve) => setTimeout(resolve, 2000));
  for (const to of recipients) expect(sendsTo(to), to).toBe(1);
  const accepted = 'outcome="accepted"';
  const byA = await metric(a, 'smtp_gateway_queue_deliveries_total', accepted);
  const byB = await metric(b, 'smtp_gateway_queue_deliveries_total', accepted);
  expect(byA + byB).toBe(100);
  expect(byA).toBeGreaterThan(0);
  expect(byB).toBeGreaterThan(0);
}, 600_000);
