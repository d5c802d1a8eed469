/**
 * Edge defences through the whole gateway, into the fake Cakemail: what the
 * client is answered, that the session stays in sync, and what reached (or did
 * not reach) Cakemail. smtp-core's edge.integration.test.ts has the full matrix
 * against a recording backend; these prove the same at the API.
 */
import { describe, expect, it } from 'vitest';
import { DEFAULT_SENDER, SMUGGLING_SEQUENCES, type SmtpTestClient } from '@cakemail-smtp/testkit';
import { lineOf, textMessage, useGateway } from './e2e-helpers.js';

const FROM = DEFAULT_SENDER.email;

async function rawData(client: SmtpTestClient, bytes: string): Promise<void> {
  expect((await client.command(`MAIL FROM:<${FROM}>`)).code).toBe(250);
  expect((await client.command('RCPT TO:<to@example.net>')).code).toBe(250);
  expect((await client.command('DATA')).code).toBe(354);
  client.write(bytes);
}

describe.each(['normalize', 'reject'] as const)('BARE_LF_POLICY=%s', (policy) => {
  const gw = useGateway({ env: { BARE_LF_POLICY: policy } });

  it.each(SMUGGLING_SEQUENCES)('a smuggled second message after %s never reaches Cakemail', async (_name, sequence) => {
    gw.fake.reset();
    const client = await gw.login();
    const smuggled = `MAIL FROM:<${FROM}>\r\nRCPT TO:<victim@example.net>\r\nDATA\r\nSubject: smuggled\r\n\r\nevil\r\n`;
    await rawData(client, `${textMessage({ subject: 'one', body: `body${sequence}${smuggled}` })}.\r\n`);
    const reply = await client.read();
    const bareLf = sequence.replace(/\r\n/g, '').includes('\n');
    if (policy === 'reject' && bareLf) {
      expect(lineOf(reply)).toBe('550 5.5.2 Bare LF line endings are not allowed, use CRLF');
      expect(gw.fake.sent()).toHaveLength(0);
    } else {
      expect(lineOf(reply)).toMatch(/^250 2\.0\.0 Ok: queued as /);
      expect(gw.fake.sent().map((e) => e.body.email)).toEqual(['to@example.net']);
      expect(gw.fake.sent()[0]?.body.content.subject).toBe('one');
    }
    // in sync: the next command gets its own reply, nothing else is waiting
    expect(lineOf(await client.command('NOOP'))).toBe('250 2.0.0 OK');
    expect(client.pending()).toHaveLength(0);
    client.close();
  });
});

describe('content checks', () => {
  const gw = useGateway();

  it('a NUL byte gets 554 5.6.0 and nothing reaches Cakemail', async () => {
    gw.fake.reset();
    const client = await gw.login();
    await rawData(client, `${textMessage({ subject: 'nul', body: 'a\0b' })}.\r\n`);
    expect(lineOf(await client.read())).toBe('554 5.6.0 Message contains NUL characters');
    expect(gw.fake.callsTo('send')).toHaveLength(0);
    expect(lineOf(await client.command('NOOP'))).toBe('250 2.0.0 OK');
    client.close();
  });

  it('a bare CR in a header never starts another header (no injected Bcc or X- header)', async () => {
    gw.fake.reset();
    const raw = textMessage({ subject: 'hello\rBcc: victim@example.net\rX-Evil: 1' });
    const reply = await gw.sendRaw(FROM, ['to@example.net'], raw);
    expect(lineOf(reply)).toMatch(/^250 /);
    const [sent] = gw.fake.sent();
    expect(sent?.body.email).toBe('to@example.net');
    expect(sent?.body.content.subject).toBe('hello Bcc: victim@example.net X-Evil: 1');
    expect(JSON.stringify(sent?.body.additional_headers ?? [])).not.toMatch(/x-evil|bcc/i);
  });
});
