/**
 * The dev inbox in a real browser (Debian's headless Chromium driven by playwright-core):
 * mail sent with nodemailer through the gateway shows up without a reload; one email opened
 * shows its rendered HTML (whose script does not run and which loads nothing remote), its
 * attachment, its JSON and the header mapping; a fault armed on the page makes the client get a
 * 451 and the page show the refusal.
 *
 * The screenshot in docs/dev-inbox.png is rewritten only with UPDATE_SCREENSHOT=1 (so a test run
 * leaves the tree clean); otherwise it goes to a temporary file.
 */
import { createServer, type Server } from 'node:http';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_SENDER } from '@cakemail-smtp/testkit';
import { startGateway, type RunningGateway } from './e2e-helpers.js';

const CHROMIUM = '/usr/bin/chromium';
const SCREENSHOT = fileURLToPath(new URL('../../../docs/dev-inbox.png', import.meta.url));
const WAIT = { timeout: 20_000 };

let gw: RunningGateway;
let context: BrowserContext;
let page: Page;
let profile: string;
/** Records any request that an email's HTML body manages to make. */
let canary: Server;
let canaryUrl: string;
const canaryHits: string[] = [];

beforeAll(async () => {
  canary = createServer((req, res) => {
    canaryHits.push(req.url ?? '');
    res.end('');
  });
  await new Promise<void>((resolve) => canary.listen(0, '127.0.0.1', resolve));
  canaryUrl = `http://127.0.0.1:${(canary.address() as AddressInfo).port}`;
  gw = await startGateway({ inbox: true });
  profile = await mkdtemp(join(tmpdir(), 'inbox-chromium-'));
  context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    acceptDownloads: true,
    viewport: { width: 1360, height: 760 },
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(20_000);
}, 120_000);

afterAll(async () => {
  await context?.close();
  await gw?.close();
  await new Promise<void>((resolve) => canary?.close(() => resolve()));
  if (profile) await rm(profile, { recursive: true, force: true });
});

const pdf = Buffer.from('%PDF-1.4\n% dev inbox test\n');

describe('the dev inbox in Chromium', { timeout: 120_000 }, () => {
  it('shows a message sent with nodemailer without a reload, then opens it', async () => {
    await page.goto(`${gw.fake.url}/`);
    await expect.poll(() => page.textContent('#live'), WAIT).toBe('live');
    // a marker that a reload would lose
    await page.evaluate(() => ((globalThis as unknown as { marker: number }).marker = 42));

    const subject = 'Your invoice <March>';
    const sent = await gw.send({
      from: `Billing Team <${DEFAULT_SENDER.email}>`,
      to: 'alice@example.net',
      bcc: 'audit@example.net',
      subject,
      text: 'Your invoice is attached.',
      html: `<h1 id="greeting" style="color:#2b59c3">Hello Alice</h1><p>Your invoice is attached.</p>
<script>document.body.setAttribute('data-ran', 'yes'); new Image().src = '${canaryUrl}/script';</script>
<img src="${canaryUrl}/remote.png" alt="">`,
      attachments: [{ filename: 'invoice-march.pdf', content: pdf, contentType: 'application/pdf' }],
      headers: { 'X-Tags': 'invoice, billing', 'X-Campaign': 'march', 'X-Track-Clicks-Html': 'false' },
    });
    expect(sent.line).toMatch(/^250 2\.0\.0 Ok: queued as [0-9a-f-]{36}/);
    const id = /queued as ([0-9a-f-]{36})/.exec(sent.line)?.[1] as string;

    // two recipients (To and Bcc), two calls, both in the list with the id the client saw
    const row = page.locator('#rows tr', { hasText: 'alice@example.net' });
    await expect.poll(() => row.count(), WAIT).toBe(1);
    await expect.poll(() => page.locator('#rows tr', { hasText: 'audit@example.net' }).count(), WAIT).toBe(1);
    const text = (await row.textContent()) ?? '';
    for (const shown of [subject, 'Billing Team', DEFAULT_SENDER.email, 'transactional', 'invoice', 'billing', '1001']) expect(text).toContain(shown);
    expect(await page.locator('#rows').textContent()).toContain(id);
    expect(await page.evaluate(() => (globalThis as unknown as { marker?: number }).marker)).toBe(42);

    await row.locator('a').click();
    await page.waitForURL(/\/_inbox\/call\/\d+$/);
    expect(await page.textContent('h1')).toBe(subject);

    // the HTML body, rendered, its script not run, nothing loaded from elsewhere
    const frame = page.frameLocator('iframe.html');
    expect(await frame.locator('#greeting').textContent()).toBe('Hello Alice');
    expect(await frame.locator('body').getAttribute('data-ran')).toBeNull();
    expect(await page.locator('iframe.html').getAttribute('sandbox')).toBe('');
    expect(await page.textContent('pre.text')).toBe('Your invoice is attached.');

    // the attachment downloads as it was sent
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('text=download')]);
    expect(download.suggestedFilename()).toBe('invoice-march.pdf');
    expect((await readFile(await download.path())).equals(pdf)).toBe(true);

    // the JSON of POST /v2/emails, and the header mapping
    const json = JSON.parse((await page.textContent('#json')) ?? '') as Record<string, unknown>;
    expect(json).toMatchObject({
      email: expect.stringMatching(/^(alice|audit)@example\.net$/),
      content: { type: 'transactional', subject, encoding: 'utf-8' },
      tags: ['invoice', 'billing'],
      tracking: { clicks_html: false },
      additional_headers: expect.arrayContaining([{ name: 'X-Campaign', value: 'march' }]),
    });
    const mapping = page.locator('table.mapping');
    expect(await mapping.locator('tr', { hasText: 'X-Tags' }).textContent()).toContain('tags');
    expect(await mapping.locator('tr', { hasText: 'X-Campaign' }).textContent()).toContain('additional_headers');
    expect(await mapping.locator('tr', { hasText: 'Bcc' }).count()).toBe(0); // nodemailer does not write Bcc into the message
    expect(await mapping.locator('tr.dropped', { hasText: 'MIME-Version' }).textContent()).toContain('dropped: transport header');
    expect(await page.textContent('body')).toContain(`250 2.0.0 Ok: queued as ${id}`);
    expect(canaryHits).toEqual([]);
  });

  it('arms a fault on the page: the client gets a 451 and the page shows the refusal and the hit', async () => {
    await page.goto(`${gw.fake.url}/`);
    await expect.poll(() => page.textContent('#live'), WAIT).toBe('live');
    const shipped = await gw.send({ from: `Acme Shop <${DEFAULT_SENDER.email}>`, to: 'carol@example.org', subject: 'Your order has shipped', html: '<p>On its way.</p>', headers: { 'X-Tags': 'orders' } });
    expect(shipped.ok).toBe(true);
    await expect.poll(() => page.locator('#rows tr.accepted', { hasText: 'carol@example.org' }).count(), WAIT).toBe(1);
    await page.selectOption('select[name=route]', 'send');
    await page.selectOption('select[name=effect]', 'status');
    await page.fill('input[name=status]', '500');
    await page.click('form#arm button[type=submit]');
    const armed = page.locator('#faults tr', { hasText: 'HTTP 500' });
    await expect.poll(() => armed.count(), WAIT).toBe(1);
    expect(await armed.locator('td.hits').textContent()).toBe('0');

    const sent = await gw.send({ from: DEFAULT_SENDER.email, to: 'bob@example.net', subject: 'Password reset', text: 'Reset it.' });
    expect(sent.ok).toBe(false);
    expect(sent.line).toBe('451 4.3.0 Cakemail is temporarily unavailable, try again later');

    const refused = page.locator('#rows tr.refused', { hasText: 'bob@example.net' });
    await expect.poll(() => refused.count(), WAIT).toBe(1);
    const shown = (await refused.textContent()) ?? '';
    expect(shown).toContain('HTTP 500');
    expect(shown).toContain('451 4.3.0 Cakemail is temporarily unavailable, try again later');
    await expect.poll(() => armed.locator('td.hits').textContent(), WAIT).toBe('1');

    const path = process.env['UPDATE_SCREENSHOT'] === '1' ? SCREENSHOT : join(profile, 'dev-inbox.png');
    const png = await page.screenshot({ path, fullPage: true });
    expect(png.subarray(1, 4).toString()).toBe('PNG');

    await page.click('#disarm');
    await expect.poll(() => page.locator('#no-faults').count(), WAIT).toBe(1);
    expect(gw.fake.faults.list()).toEqual([]);
  });

  it('clears the list with its button', async () => {
    await page.click('#clear');
    await expect.poll(() => page.textContent('#rows'), WAIT).toContain('No email yet');
    expect(gw.fake.calls).toEqual([]);
  });
});
