// The relay's observer (onRelayed) and the header explanation it carries, against the fake.
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Session } from '@cakemail-smtp/smtp-core';
import { createFakeCakemail, DEFAULT_SENDER, DEFAULT_USER, type FakeCakemail } from '@cakemail-smtp/testkit';
import { readControlHeaders } from '../src/message/control-headers.js';
import { explainHeaders } from '../src/message/explain.js';
import { prepareEmail } from '../src/message/request-body.js';
import { createRelayBackend, type RelayBackend } from '../src/relay/backend.js';
import type { RelayedMessage } from '../src/relay/observer.js';
import { bodyOf, parseVia } from './helpers/message.js';
import { relayConfig } from './helpers/relay-config.js';
import type { Logger } from '../src/types.js';

const quiet: Logger = { debug() {}, info() {}, warn() {}, error() {}, child: () => quiet };

const message = (extra: string[] = []): string =>
  [
    'Received: from client (client [192.0.2.1]) by mx',
    'From: Dev Sender <sender@example.com>',
    'To: a@example.net',
    'Cc: b@example.net',
    'Bcc: hidden@example.net',
    'Subject: Hello',
    'Date: Mon, 30 Nov 2026 12:00:00 +0000',
    'Message-ID: <obs-1@example.com>',
    'Reply-To: help@example.com',
    'X-Tags: welcome',
    'X-Track-Opens: false',
    'X-Mailer: app 1.0',
    'X-Empty:',
    'Organization: ACME',
    ...extra,
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    '',
    'Hi',
    '',
  ].join('\r\n');

describe('explainHeaders', () => {
  it.each([true, false])('says what became of each header, the forwarded ones exactly as sent (fast path: %s)', async (simple) => {
    const parsed = await parseVia(Readable.from([Buffer.from(message())]), simple);
    const explained = explainHeaders(parsed);
    expect(explained.map((h) => [h.name, h.fate, h.field ?? h.reason])).toEqual([
      ['Received', 'dropped', 'transport trace'],
      ['From', 'field', 'sender.name'],
      ['To', 'dropped', 'recipients come from RCPT TO, one API call each (email)'],
      ['Cc', 'forwarded', 'additional_headers'],
      ['Bcc', 'dropped', 'never forwarded: it would disclose the blind copies'],
      ['Subject', 'field', 'content.subject'],
      ['Date', 'dropped', 'Cakemail dates the message itself'],
      ['Message-ID', 'forwarded', 'additional_headers'],
      ['Reply-To', 'forwarded', 'additional_headers'],
      ['X-Tags', 'field', 'tags'],
      ['X-Track-Opens', 'field', 'tracking.opens'],
      ['X-Mailer', 'forwarded', 'additional_headers'],
      ['X-Empty', 'dropped', 'empty value'],
      ['Organization', 'dropped', expect.stringContaining('not forwarded: only Reply-To')],
      ['MIME-Version', 'dropped', 'transport header: Cakemail builds its own MIME'],
      ['Content-Type', 'field', 'content.html / content.text / attachment'],
    ]);
    // one source of truth: what it calls forwarded is what the request body carries
    const body = bodyOf(prepareEmail(parsed, readControlHeaders(parsed.control, 'transactional'), { senderId: '1', listId: 1 }), 'a@example.net');
    expect(explained.filter((h) => h.fate === 'forwarded').map((h) => ({ name: h.name, value: h.value }))).toEqual(body.additional_headers);
  });
});

describe('onRelayed', () => {
  let fake: FakeCakemail;
  let backend: RelayBackend;
  let seen: RelayedMessage[];

  beforeEach(async () => {
    fake = createFakeCakemail();
    await fake.listen(0);
    seen = [];
    backend = createRelayBackend(
      relayConfig(fake.url),
      { logger: quiet, onRelayed: (m) => seen.push(m) },
    );
  });
  afterEach(async () => {
    await backend.close();
    await fake.close();
  });

  async function relay(raw: string, to: string[]): Promise<string> {
    const s: Session = backend.newSession({ id: 'obs', remoteAddress: '127.0.0.1', remotePort: 1, localPort: 2, listener: 'starttls' });
    await s.auth({ mechanism: 'PLAIN', username: DEFAULT_USER.email, password: DEFAULT_USER.password });
    await s.mail(DEFAULT_SENDER.email, { smtpUtf8: false });
    try {
      return await s.data(Readable.from([Buffer.from(raw)]), { from: DEFAULT_SENDER.email, to });
    } catch (err) {
      return `refused: ${(err as { line?: string }).line ?? String(err)}`;
    }
  }

  it('hears the reply, the per-recipient outcomes with Cakemail ids and the headers', async () => {
    fake.faults.add('send', { status: 500, match: { email: 'b@example.net' } });
    const answer = await relay(message(), ['a@example.net', 'b@example.net']);
    expect(answer).toBe('refused: 451 4.3.0 Cakemail is temporarily unavailable, try again later');
    expect(seen).toHaveLength(1);
    const m = seen[0] as RelayedMessage;
    const id = fake.sent()[0]?.id;
    expect(m).toMatchObject({
      sessionId: 'obs',
      mailFrom: DEFAULT_SENDER.email,
      recipients: ['a@example.net', 'b@example.net'],
      accountId: 1001,
      reply: answer.replace('refused: ', ''),
      outcomes: [
        { rcpt: 'a@example.net', ok: true, id, reused: false },
        { rcpt: 'b@example.net', ok: false, reply: '451 4.3.0 Cakemail is temporarily unavailable, try again later', temporary: true },
      ],
    });
    expect(m.headers.find((h) => h.name === 'X-Tags')?.field).toBe('tags');
    expect(m.finished).toBeGreaterThanOrEqual(m.started);
  });

  it('hears a 250 and a refusal before any call', async () => {
    const ok = await relay(message(), ['a@example.net']);
    expect(seen[0]?.reply).toBe(`250 2.0.0 ${ok}`);
    const bad = await relay(message(['X-List-Id: nope']), ['a@example.net']);
    expect(seen[1]).toMatchObject({ reply: bad.replace('refused: ', ''), outcomes: [] });
    expect(seen[1]?.reply).toMatch(/^550 5\.\d\.\d Invalid x-list-id header/);
  });

  it('relays and replies the same when the observer throws', async () => {
    const throwing = createRelayBackend(
      relayConfig(fake.url),
      {
        logger: quiet,
        onRelayed: () => {
          throw new Error('observer bug');
        },
      },
    );
    const s = throwing.newSession({ id: 'x', remoteAddress: '127.0.0.1', remotePort: 1, localPort: 2, listener: 'starttls' });
    await s.auth({ mechanism: 'PLAIN', username: DEFAULT_USER.email, password: DEFAULT_USER.password });
    await s.mail(DEFAULT_SENDER.email, { smtpUtf8: false });
    await expect(s.data(Readable.from([Buffer.from(message())]), { from: DEFAULT_SENDER.email, to: ['a@example.net'] })).resolves.toMatch(/^Ok: queued as /);
    await throwing.close();
  });
});
