/**
 * Limits that hold while a message is received or relayed, through the whole
 * gateway into the fake Cakemail: MAX_INFLIGHT_BYTES (the fake delays sends,
 * so the relay holds the messages) and SESSION_MAX_MS during DATA.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { DEFAULT_SENDER } from '@cakemail-smtp/testkit';
import { lineOf, scrapeMetrics, startGateway, textMessage, type RunningGateway } from './e2e-helpers.js';

async function metric(gw: RunningGateway, line: string): Promise<number | undefined> {
  return (await scrapeMetrics(gw.ports.ops)).get(line);
}

/** Sends that reached the fake, answered or not (calls() records them once answered). */
const sends = (gw: RunningGateway): number => gw.fake.counts().send;

async function until(check: () => boolean, what: string): Promise<void> {
  const start = Date.now();
  while (!check()) {
    if (Date.now() - start > 10_000) throw new Error(`${what}: not in time`);
    await sleep(10);
  }
}

describe('MAX_INFLIGHT_BYTES', () => {
  it('concurrent messages past the cap get 451 4.3.1 (452 4.3.1 at SIZE=) while the others are relayed; the gauge returns to 0', async () => {
    const gw = await startGateway({ env: { MAX_INFLIGHT_BYTES: '200000', MAX_MESSAGE_SIZE: '100000' } });
    try {
      gw.fake.faults.set('send', { delayMs: 1500 });
      const body = `${'y'.repeat(78)}\r\n`.repeat(1000); // 80 KB
      const [a, b, c] = [await gw.login(), await gw.login(), await gw.login()];
      const first = a.sendMail(DEFAULT_SENDER.email, ['a@example.net'], textMessage({ subject: 'one', body }));
      const second = b.sendMail(DEFAULT_SENDER.email, ['b@example.net'], textMessage({ subject: 'two', body }));
      await until(() => sends(gw) === 2, 'both sends held by the fake');
      const held = await metric(gw, 'smtp_gateway_inflight_message_bytes');
      expect(held).toBeGreaterThan(160_000);

      // Declared: refused at MAIL FROM.
      expect(lineOf(await c.command(`MAIL FROM:<${DEFAULT_SENDER.email}> SIZE=80000`))).toBe(
        '452 4.3.1 Insufficient system storage, try again later',
      );
      // Undeclared: refused after the final dot, nothing relayed.
      expect(lineOf(await c.sendMail(DEFAULT_SENDER.email, ['c@example.net'], textMessage({ subject: 'three', body })))).toBe(
        '451 4.3.1 Insufficient system storage, try again later',
      );

      expect(lineOf(await first)).toMatch(/^250 2\.0\.0 Ok: queued as /);
      expect(lineOf(await second)).toMatch(/^250 2\.0\.0 Ok: queued as /);
      expect(gw.fake.sent().map((e) => e.body.content.subject).sort()).toEqual(['one', 'two']);
      expect(await metric(gw, 'smtp_gateway_inflight_message_bytes')).toBe(0);
      expect(await metric(gw, 'smtp_gateway_limit_rejections_total{reason="inflight_bytes"}')).toBe(2);

      // The retry passes once the others are answered.
      gw.fake.faults.clear();
      expect(lineOf(await c.sendMail(DEFAULT_SENDER.email, ['c@example.net'], textMessage({ subject: 'three', body })))).toMatch(/^250 /);
      expect(await metric(gw, 'smtp_gateway_inflight_message_bytes')).toBe(0);
    } finally {
      await gw.close();
    }
  });
});

describe('SESSION_MAX_MS during DATA', () => {
  it('a message dripped in one byte at a time past the cap is dropped: 421 4.4.2, closed, nothing reaches Cakemail', async () => {
    const gw = await startGateway({ env: { SESSION_MAX_MS: '2000' } });
    try {
      const client = await gw.login();
      expect((await client.command(`MAIL FROM:<${DEFAULT_SENDER.email}>`)).code).toBe(250);
      expect((await client.command('RCPT TO:<drip@example.net>')).code).toBe(250);
      expect((await client.command('DATA')).code).toBe(354);
      client.write(textMessage({ subject: 'drip', body: '' }));
      const dripping = (async () => {
        for (let i = 0; i < 60 && !client.isClosed; i++) {
          client.write('z');
          await sleep(100);
        }
        if (!client.isClosed) client.write('\r\n.\r\n');
      })();
      expect(lineOf(await client.read())).toBe('421 4.4.2 Session time limit reached, closing connection');
      await client.closed(10_000);
      await dripping;
      await sleep(200);
      expect(gw.fake.sent()).toEqual([]);
      expect(sends(gw)).toBe(0);
      expect(await metric(gw, 'smtp_gateway_limit_rejections_total{reason="session_time"}')).toBe(1);
    } finally {
      await gw.close();
    }
  });
});
