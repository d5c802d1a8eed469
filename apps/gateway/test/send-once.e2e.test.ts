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
