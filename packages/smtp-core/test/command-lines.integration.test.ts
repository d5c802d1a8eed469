/**
 * Command lines at the edges: refused commands count against the flood limit, a refused DATA
 * does not switch line policing off, DATA lines split across TCP segments, and the greeting.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { SmtpTestClient, ehlo, greeted, startTls } from '@cakemail-smtp/testkit';
import { loggedIn, startServer, type TestServer } from './helpers.js';

let t: TestServer | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

/** Sends `command` up to `n` times; answers the replies (stops at a 421 or a closed socket). */
async function flood(client: SmtpTestClient, command: string, n: number): Promise<number[]> {
  const codes: number[] = [];
  for (let i = 0; i < n; i++) {
    let code: number;
    try {
      code = (await client.command(command)).code;
    } catch {
      break;
    }
    codes.push(code);
    if (code === 421) break;
  }
  return codes;
}

describe('refused commands are bounded like junk ones', () => {
  // A command that is refused (AUTH on plaintext, bad AUTH, RCPT/DATA out of sequence) moves no
  // mail either: it counts against MAX_JUNK_COMMANDS (Postfix's smtpd_hard_error_limit).
  it('AUTH on plaintext before TLS (530 every time) is bounded', async () => {
    t = await startServer({ limits: { maxJunkCommands: 5, maxUnauthenticatedCommands: 5 } });
    const client = await ehlo(t.client);
    const codes = await flood(client, 'AUTH PLAIN', 40);
    client.close();
    expect(codes).toContain(421);
  });

  it('AUTH with a bad mechanism / bad base64 after STARTTLS (504/501) is bounded', async () => {
    t = await startServer({ limits: { maxJunkCommands: 5, maxUnauthenticatedCommands: 5, maxAuthFailures: 3 } });
    const client = await startTls(t.client);
    const codes = [...(await flood(client, 'AUTH CRAM-MD5', 20)), ...(await flood(client, 'AUTH PLAIN !!!!', 20))];
    client.close();
    expect(codes).toContain(421);
  });

  it('after AUTH, RCPT without MAIL (503) is bounded', async () => {
    t = await startServer({ limits: { maxJunkCommands: 5 } });
    const client = await loggedIn(t);
    const codes = await flood(client, 'RCPT TO:<b@example.test>', 40);
    client.close();
    expect(codes).toContain(421);
  });
});

describe('a refused DATA leaves line policing on for the rest of the chunk', () => {
  // The chunk is cut after a DATA line; what follows is policed once the parser has refused it.
  it('a 600-octet command pipelined after a refused DATA gets 500 5.5.2', async () => {
    t = await startServer();
    const client = await loggedIn(t);
    client.write(`DATA\r\nNOOP ${'x'.repeat(600)}\r\n`);
    expect((await client.read()).code).toBe(503);
    expect((await client.read()).raw).toBe('500 5.5.2 Line too long\r\n');
    client.close();
  });

  it('a 13 000-octet line after a refused DATA gets 500 5.5.2 and the session stays usable', async () => {
    t = await startServer({ limits: { idleTimeoutMs: 60_000 } });
    const client = await ehlo({ ...t.client, timeoutMs: 1500 });
    client.write(`DATA\r\nNOOP ${'x'.repeat(13_000)}\r\n`);
    expect((await client.read()).code).toBe(530); // DATA before AUTH
    expect((await client.read()).raw).toBe('500 5.5.2 Line too long\r\n');
    expect((await client.command('NOOP')).raw).toBe('250 2.0.0 OK\r\n');
    client.close();
  });
});

describe('a DATA line with a trailing space is recognised: the message is not rewritten', () => {
  // A client that sends the message in the same segment as "DATA " (without waiting for the 354,
  // as blasters and some embedded stacks do) must not get its long message lines policed.
  it('"DATA " + a message with a 600-octet line in one write: 250, the body intact', async () => {
    t = await startServer();
    const client = await loggedIn(t);
    expect((await client.command('MAIL FROM:<a@example.test>')).code).toBe(250);
    expect((await client.command('RCPT TO:<b@example.test>')).code).toBe(250);
    const long = 'y'.repeat(600);
    client.write(`DATA \r\nSubject: x\r\n\r\n${long}\r\n.\r\n`);
    expect((await client.read()).code).toBe(354);
    const final = await client.read();
    expect(final.raw).toMatch(/^250 /);
    expect(t.rec.delivered[0]?.body).toBe(`Subject: x\r\n\r\n${long}\r\n`);
    client.close();
  });
});

describe('segment boundaries and the greeting', () => {
  it('a CR that ends one TCP segment and the LF that starts the next are one CRLF in DATA', async () => {
    t = await startServer();
    const client = await loggedIn(t);
    expect((await client.command('MAIL FROM:<a@example.test>')).code).toBe(250);
    expect((await client.command('RCPT TO:<b@example.test>')).code).toBe(250);
    expect((await client.command('DATA')).code).toBe(354);
    client.write('Subject: x\r');
    await new Promise((r) => setTimeout(r, 30));
    client.write('\n\r\nbody\r');
    await new Promise((r) => setTimeout(r, 30));
    client.write('\n.\r\n');
    expect((await client.read()).code).toBe(250);
    expect(t.rec.delivered[0]?.body).toBe('Subject: x\r\n\r\nbody\r\n');
    client.close();
  });

  it('a bare LF split from its line by a segment boundary is still normalised', async () => {
    t = await startServer();
    const client = await loggedIn(t);
    expect((await client.command('MAIL FROM:<a@example.test>')).code).toBe(250);
    expect((await client.command('RCPT TO:<b@example.test>')).code).toBe(250);
    expect((await client.command('DATA')).code).toBe(354);
    client.write('Subject: x\r\n\r\na');
    await new Promise((r) => setTimeout(r, 30));
    client.write('\nb\r\n.\r\n');
    expect((await client.read()).code).toBe(250);
    expect(t.rec.delivered[0]?.body).toBe('Subject: x\r\n\r\na\r\nb\r\n');
    client.close();
  });

  it('the greeting (220) is sent at once, without the library 100 ms wait', async () => {
    t = await startServer();
    const client = await greeted(t.client);
    expect(client.greeting?.code).toBe(220);
    client.close();
  });
});
