/**
 * A 250 with some recipients refused for good: the envelope sender gets a delivery status
 * notification through the same Cakemail account (../shared/CAKEMAIL-API.md "Bounces"), end to
 * end over real SMTP into the fake Cakemail, whose per-recipient faults refuse the recipients.
 */
import { describe, expect, it } from 'vitest';
import { DEFAULT_ACCOUNT_ID, DEFAULT_SENDER, MULTI_ACCOUNT_USER, OTHER_ACCOUNT_ID, OTHER_ACCOUNT_SENDER, type SentEmail } from '@cakemail-smtp/testkit';
import { lineOf, scrapeMetrics, startGateway, textMessage, type RunningGateway } from './e2e-helpers.js';

const FROM = DEFAULT_SENDER.email;
const FAST = { CAKEMAIL_TIMEOUT_MS: '1000', UPSTREAM_DEADLINE_MS: '3000' };
const unsubscribed = { detail: [{ loc: ['body', 'email'], msg: 'Contact is unsubscribed', type: 'value_error' }] };

const bounces = (gw: RunningGateway): SentEmail[] =>
  gw.fake.sent().filter((e) => e.body.content.subject === 'Undelivered Mail Returned to Sender');

async function until(check: () => boolean, ms = 10_000): Promise<void> {
  const start = Date.now();
  while (!check()) {
    if (Date.now() - start > ms) throw new Error('timed out waiting');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Closes the gateway (which waits for the bounces being sent), runs `check`, then closes the fake. */
async function afterClose(gw: RunningGateway, check: () => void | Promise<void>): Promise<void> {
  try {
    await gw.gateway.close();
    await check();
  } finally {
    await gw.fake.close();
  }
}

async function metric(gw: RunningGateway, result: 'sent' | 'failed'): Promise<number> {
  return Number((await scrapeMetrics(gw.ports.ops)).get(`smtp_gateway_bounces_total{result="${result}"}`));
}

describe('delivery status notifications for recipients refused after others were accepted', () => {
  it('sends the DSN from and to the sender MAIL FROM matched, through the same account and list, with the RFC 3464 fields and never the body', async () => {
    const gw = await startGateway({ env: FAST });
    try {
      gw.fake.faults.set('send', { status: 422, body: unsubscribed, match: { email: 'reject@example.net' } });
      gw.fake.faults.add('send', { status: 403, match: { email: 'forbidden@example.net' } });
      const raw = textMessage({
        subject: 'Quarterly <report> & more',
        body: 'the secret body text',
        headers: ['Message-ID: <dsn-1@example.com>', 'Date: Mon, 30 Nov 2026 10:00:00 +0000'],
      });
      const reply = lineOf(await gw.sendRaw(FROM, ['ok@example.net', 'reject@example.net', 'forbidden@example.net'], raw));
      expect(reply).toMatch(/^250 2\.0\.0 Ok: queued as [0-9a-f-]{36}; not sent to reject@example\.net, forbidden@example\.net: /);

      await until(() => bounces(gw).length === 1);
      const original = gw.fake.sent().find((e) => e.body.email === 'ok@example.net');
      const [bounce] = bounces(gw);
      expect(bounce?.accountId).toBe(DEFAULT_ACCOUNT_ID);
      const { content, ...rest } = bounce?.body ?? {};
      expect(rest).toEqual({
        sender: { id: DEFAULT_SENDER.id, name: 'Mail Delivery System' },
        email: FROM,
        list_id: original?.body.list_id,
        tracking: { opens: false, clicks_html: false, clicks_text: false },
        additional_headers: [
          { name: 'Auto-Submitted', value: 'auto-replied' },
          { name: 'X-Gateway-Bounce', value: 'yes' },
        ],
      });
      expect(content).toMatchObject({ type: 'transactional', subject: 'Undelivered Mail Returned to Sender', encoding: 'utf-8' });
      const text = content?.text ?? '';
      const report = [
        'Reporting-MTA: dns; localhost',
        '',
        'Final-Recipient: rfc822; reject@example.net',
        'Action: failed',
        'Status: 5.6.0',
        'Diagnostic-Code: http; 422 Contact is unsubscribed',
        '',
        'Final-Recipient: rfc822; forbidden@example.net',
        'Action: failed',
        'Status: 5.7.1',
        'Diagnostic-Code: http; 403 Fault injected: forbidden',
      ];
      expect(text.replace(/\nArrival-Date: [^\n]+/, '')).toContain(report.join('\n'));
      expect(text).toMatch(/\nArrival-Date: [A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} \+0000\n/);
      expect(text).toContain('Subject: Quarterly <report> & more\nMessage-ID: <dsn-1@example.com>\nDate: Mon, 30 Nov 2026 10:00:00 +0000');
      expect(text).not.toContain('ok@example.net');
      const html = content?.html ?? '';
      expect(html).toContain('Final-Recipient: rfc822; reject@example.net');
      expect(html).toContain('Subject: Quarterly &#60;report&#62; &#38; more');
      for (const part of [text, html]) expect(part).not.toContain('the secret body text');
      expect(await metric(gw, 'sent')).toBe(1);

      // the client's retry after a lost 250 sends no second bounce
      expect(lineOf(await gw.sendRaw(FROM, ['ok@example.net', 'reject@example.net', 'forbidden@example.net'], raw))).toBe(reply);
      await afterClose(gw, () => {
        expect(bounces(gw)).toHaveLength(1);
        expect(gw.fake.sent().filter((e) => e.body.email === 'ok@example.net')).toHaveLength(1);
      });
    } finally {
      await gw.fake.close();
    }
  });

  it('with x-sender-id naming another sender, the DSN still goes from and to the sender MAIL FROM matched', async () => {
    const gw = await startGateway({ env: FAST });
    try {
      const other = gw.fake.addSender(DEFAULT_ACCOUNT_ID, { name: 'Other', email: 'other-sender@example.com', confirmed: true });
      gw.fake.faults.set('send', { status: 422, body: unsubscribed, match: { email: 'reject@example.net' } });
      const raw = textMessage({ subject: 'by id', headers: [`X-Sender-Id: ${other.id}`, 'Message-ID: <dsn-2@example.com>'] });
      expect(lineOf(await gw.sendRaw(FROM, ['ok@example.net', 'reject@example.net'], raw))).toMatch(/^250 /);
      await until(() => bounces(gw).length === 1);
      expect(gw.fake.sent().find((e) => e.body.email === 'ok@example.net')?.body.sender.id).toBe(other.id);
      expect(bounces(gw)[0]?.body).toMatchObject({ email: FROM, sender: { id: DEFAULT_SENDER.id } });
    } finally {
      await gw.close();
    }
  });

  it('never for a bounce (X-Gateway-Bounce: yes), an Auto-Submitted message, the null sender, or when every recipient is refused', async () => {
    const gw = await startGateway({ env: FAST });
    try {
      gw.fake.faults.set('send', { status: 422, body: unsubscribed, match: { email: 'reject@example.net' } });
      const partial = ['ok@example.net', 'reject@example.net'];
      const cases: Array<[from: string, to: string[], headers: string[], reply: RegExp]> = [
        [FROM, partial, ['X-Gateway-Bounce: yes'], /^250 /],
        [FROM, partial, ['Auto-Submitted: auto-replied'], /^250 /],
        [FROM, partial, ['Auto-Submitted: auto-generated; owner-email="x@example.com"'], /^250 /],
        ['', partial, [], /^250 /],
        [FROM, ['reject@example.net'], [], /^550 5\.6\.0 Cakemail rejected the message: Contact is unsubscribed$/],
        // the one that bounces: Auto-Submitted: no is a message written by a person
        [FROM, partial, ['Auto-Submitted: no'], /^250 /],
      ];
      for (const [i, [from, to, headers, reply]] of cases.entries()) {
        const raw = textMessage({ subject: `case ${i}`, headers: [...headers, `Message-ID: <dsn-case-${i}@example.com>`] });
        expect(lineOf(await gw.sendRaw(from, to, raw))).toMatch(reply);
      }
      await afterClose(gw, () => {
        const sent = bounces(gw);
        expect(sent.map((b) => /Subject: (case \d)/.exec(b.body.content.text ?? '')?.[1])).toEqual([`case ${cases.length - 1}`]);
      });
    } finally {
      await gw.fake.close();
    }
  });

  it('BOUNCE_PARTIAL_FAILURES=off sends none; the 250 is unchanged', async () => {
    const gw = await startGateway({ env: { ...FAST, BOUNCE_PARTIAL_FAILURES: 'off' } });
    try {
      gw.fake.faults.set('send', { status: 422, body: unsubscribed, match: { email: 'reject@example.net' } });
      const raw = textMessage({ subject: 'off', headers: ['Message-ID: <dsn-off@example.com>'] });
      expect(lineOf(await gw.sendRaw(FROM, ['ok@example.net', 'reject@example.net'], raw))).toMatch(
        /^250 2\.0\.0 Ok: queued as [0-9a-f-]{36}; not sent to reject@example\.net: Cakemail rejected the message: Contact is unsubscribed$/,
      );
      await afterClose(gw, () => {
        expect(bounces(gw)).toHaveLength(0);
        expect(gw.fake.sent()).toHaveLength(1);
      });
    } finally {
      await gw.fake.close();
    }
  });

  it("a bounce's own failure is logged and counted and never changes the client's reply", async () => {
    const gw = await startGateway({ env: FAST });
    try {
      gw.fake.faults.set('send', { status: 422, body: unsubscribed, match: { email: 'reject@example.net' } });
      gw.fake.faults.add('send', { status: 500, match: { email: FROM } });
      const raw = textMessage({ subject: 'bounce fails', headers: ['Message-ID: <dsn-fail@example.com>'] });
      expect(lineOf(await gw.sendRaw(FROM, ['ok@example.net', 'reject@example.net'], raw))).toMatch(/^250 2\.0\.0 Ok: queued as /);
      await until(() => gw.logs().some((l) => l['event'] === 'bounce_failed'));
      expect(await metric(gw, 'failed')).toBe(1);
      expect(await metric(gw, 'sent')).toBe(0);
      expect(bounces(gw)).toHaveLength(0);
    } finally {
      await gw.close();
    }
  });

  it('a shutdown waits for a bounce only for what is left of SHUTDOWN_TIMEOUT_MS, then abandons it (logged, counted)', async () => {
    // the bounce's own deadline (UPSTREAM_DEADLINE_MS) is 20 s; the shutdown has 2 s left for it
    const gw = await startGateway({
      env: { CAKEMAIL_TIMEOUT_MS: '1000', UPSTREAM_DEADLINE_MS: '20000', SHUTDOWN_TIMEOUT_MS: '20000' },
      adjust: (config) => ({ ...config, limits: { ...config.limits, closeTimeoutMs: 2000 } }),
    });
    try {
      gw.fake.faults.set('send', { status: 422, body: unsubscribed, match: { email: 'reject@example.net' } });
      gw.fake.faults.add('send', { delayMs: 60_000, match: { email: FROM } }); // the bounce hangs
      const raw = textMessage({ subject: 'bounce at shutdown', headers: ['Message-ID: <dsn-shutdown@example.com>'] });
      expect(lineOf(await gw.sendRaw(FROM, ['ok@example.net', 'reject@example.net'], raw))).toMatch(/^250 2\.0\.0 Ok: queued as /);
      await until(() => gw.fake.counts().send === 3); // ok@, reject@ and the bounce arrived
      const started = Date.now();
      await gw.gateway.close();
      // 2 s of shutdown, not the bounce's 20 s deadline on top (generous for a busy machine)
      expect(Date.now() - started).toBeLessThan(15_000);
      const msgs = gw.logs().map((l) => String(l['msg']));
      expect(msgs, msgs.join('\n')).toContain('shutdown: bounces still being sent are abandoned');
      expect(gw.logs().some((l) => l['event'] === 'bounce_failed')).toBe(true);
    } finally {
      await gw.fake.close();
    }
  });

  it('a login with several accounts bounces through the account the message used', async () => {
    const gw = await startGateway({ env: FAST });
    try {
      gw.fake.faults.set('send', { status: 422, body: unsubscribed, match: { email: 'reject@example.net' } });
      const raw = textMessage({ from: OTHER_ACCOUNT_SENDER.email, subject: 'multi', headers: ['Message-ID: <dsn-multi@example.com>'] });
      expect(lineOf(await gw.sendRaw(OTHER_ACCOUNT_SENDER.email, ['ok@example.net', 'reject@example.net'], raw, MULTI_ACCOUNT_USER))).toMatch(/^250 /);
      await until(() => bounces(gw).length === 1);
      const original = gw.fake.sent().find((e) => e.body.email === 'ok@example.net');
      expect(original?.accountId).toBe(OTHER_ACCOUNT_ID);
      expect(bounces(gw)[0]?.accountId).toBe(OTHER_ACCOUNT_ID);
      expect(bounces(gw)[0]?.body).toMatchObject({ email: OTHER_ACCOUNT_SENDER.email, sender: { id: OTHER_ACCOUNT_SENDER.id } });
      expect(bounces(gw)[0]?.body.list_id).toBe(original?.body.list_id);
    } finally {
      await gw.close();
    }
  });
});
