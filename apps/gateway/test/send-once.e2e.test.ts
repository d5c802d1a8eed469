/**
 * POST /v2/emails is not idempotent: a send that Cakemail may have processed is never repeated
 * by the gateway itself (found by an adversarial review), end to end into the fake Cakemail.
 */
import { describe, expect, it } from 'vitest';
import { DEFAULT_SENDER } from '@cakemail-smtp/testkit';
import { lineOf, sentTo, startGateway, textMessage } from './e2e-helpers.js';

const FROM = DEFAULT_SENDER.email;

describe('a slow Cakemail is waited for, not asked twice', () => {
  // A send waits for its answer up to UPSTREAM_DEADLINE_MS, not CAKEMAIL_TIMEOUT_MS: repeating
  // it after a timeout would queue the email a second time if Cakemail had merely been slow.
  it('a slow 201 (over CAKEMAIL_TIMEOUT_MS, within the deadline) → 250, sent once', async () => {
    const gw = await startGateway({ env: { CAKEMAIL_TIMEOUT_MS: '400', UPSTREAM_DEADLINE_MS: '4000' } });
    try {
      // warm the sender / list caches
      expect((await gw.send({ from: FROM, to: 'warm@example.net', subject: 'warm', text: 'warm' })).ok).toBe(true);
      gw.fake.reset();
      gw.fake.faults.set('send', { delayMs: 700, times: 1 });
      const reply = await gw.sendRaw(FROM, ['once@example.net'], textMessage({ subject: 'slow upstream', headers: ['Message-ID: <slow-1@example.com>'] }));
      // let the first (timed-out) request finish on the fake's side
      await new Promise((r) => setTimeout(r, 800));
      expect(lineOf(reply)).toMatch(/^250 2\.0\.0 Ok: queued as /);
      expect(sentTo(gw.fake, 'once@example.net')).toHaveLength(1);
    } finally {
      await gw.close();
    }
  });
});

describe('a retry while the first attempt is still in flight never sends a second copy', () => {
  const RCPT = 'inflight@example.net';
  const message = (id: string) => textMessage({ to: RCPT, subject: 'in flight', headers: [`Message-ID: <${id}@example.com>`] });

  /** Waits until `check` is true, polling; fails after `ms`. */
  async function until(check: () => boolean, ms = 10_000): Promise<void> {
    const start = Date.now();
    while (!check()) {
      if (Date.now() - start > ms) throw new Error('timed out waiting');
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  /** A client that sends the message and gives up (disconnects) once its send reached the fake. */
  async function sendAndGiveUp(gw: Awaited<ReturnType<typeof startGateway>>, raw: string): Promise<void> {
    const first = await gw.login();
    const pending = first.sendMail(FROM, [RCPT], raw).catch(() => undefined);
    await until(() => (gw.fake.faults.list('send')[0]?.hits ?? 0) >= 1);
    first.close();
    await pending;
  }

  it('the retry waits for the outcome and answers the first attempt’s id: one send reaches Cakemail', async () => {
    const gw = await startGateway({ env: { UPSTREAM_DEADLINE_MS: '20000' } });
    try {
      expect((await gw.send({ from: FROM, to: 'warm@example.net', subject: 'warm', text: 'warm' })).ok).toBe(true);
      gw.fake.reset();
      gw.fake.faults.set('send', { delayMs: 5000, match: { email: RCPT } });
      await sendAndGiveUp(gw, message('inflight-1'));

      const retry = lineOf(await gw.sendRaw(FROM, [RCPT], message('inflight-1')));
      await until(() => sentTo(gw.fake, RCPT).length >= 1);
      const sent = sentTo(gw.fake, RCPT);
      expect(sent).toHaveLength(1);
      expect(retry).toBe(`250 2.0.0 Ok: queued as ${sent[0]?.id}`);
      expect(gw.fake.faults.list('send')[0]?.hits).toBe(1);
      // the retry really found the first attempt in flight
      expect(gw.logs().some((l) => l['event'] === 'inflight_wait')).toBe(true);
    } finally {
      await gw.close();
    }
  });

  it('past INFLIGHT_WAIT_MS the retry gets 451 4.3.0 (delivery in progress); the next retry gets the id; one send', async () => {
    const gw = await startGateway({ env: { UPSTREAM_DEADLINE_MS: '20000', INFLIGHT_WAIT_MS: '300' } });
    try {
      expect((await gw.send({ from: FROM, to: 'warm@example.net', subject: 'warm', text: 'warm' })).ok).toBe(true);
      gw.fake.reset();
      gw.fake.faults.set('send', { delayMs: 5000, match: { email: RCPT } });
      await sendAndGiveUp(gw, message('inflight-2'));

      expect(lineOf(await gw.sendRaw(FROM, [RCPT], message('inflight-2')))).toBe(
        '451 4.3.0 A delivery of this message is still in progress, try again later',
      );
      await until(() => sentTo(gw.fake, RCPT).length >= 1);
      const again = lineOf(await gw.sendRaw(FROM, [RCPT], message('inflight-2')));
      const sent = sentTo(gw.fake, RCPT);
      expect(sent).toHaveLength(1);
      expect(again).toBe(`250 2.0.0 Ok: queued as ${sent[0]?.id}`);
      expect(gw.fake.faults.list('send')[0]?.hits).toBe(1);
    } finally {
      await gw.close();
    }
  });
});
