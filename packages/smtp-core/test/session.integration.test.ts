import { connect } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SmtpTestClient, authenticated, ehlo, greeted, startTls } from '@cakemail-smtp/testkit';
import { PASSWORD, USER, startServer, type TestServer } from './helpers.js';

let t: TestServer;
beforeEach(async () => {
  t = await startServer();
});
afterEach(async () => {
  await t.close();
});

describe('greeting', () => {
  it('is sent at once: a client that talks first is answered, not told it talks too soon', async () => {
    // smtp-server waits 100 ms before its greeting and answers anything sent
    // before it with "421 You talk too soon". Without that wait the greeting
    // goes out in the same tick as the accept, and the early EHLO is answered.
    const socket = connect(t.port, '127.0.0.1');
    socket.write('EHLO early.test\r\n');
    let data = '';
    socket.setEncoding('latin1');
    await new Promise<void>((resolve) => socket.on('data', (chunk: string) => ((data += chunk), /\r\n250 /.test(data) || /^421/m.test(data) ? resolve() : undefined)));
    socket.destroy();
    expect(data).toMatch(/^220 gateway\.test ESMTP Cakemail SMTP gateway\r\n250-gateway\.test /);
    expect(data).not.toContain('talk too soon');
  });

  it('greets with the hostname on both listeners', async () => {
    const plain = await greeted(t.client);
    const secure = await greeted(t.implicit);
    expect(plain.greeting?.raw).toBe('220 gateway.test ESMTP Cakemail SMTP gateway\r\n');
    expect(secure.greeting?.raw).toBe('220 gateway.test ESMTP Cakemail SMTP gateway\r\n');
    plain.close();
    secure.close();
  });
});

describe('STARTTLS listener', () => {
  it('advertises STARTTLS and not AUTH in plaintext, and AUTH PLAIN LOGIN once TLS', async () => {
    const client = await greeted(t.client);
    const before = await client.ehlo();
    expect(before.lines).toContain('STARTTLS');
    expect(before.lines).toContain('ENHANCEDSTATUSCODES');
    expect(before.lines.some((l) => l.startsWith('AUTH'))).toBe(false);
    await client.startTls();
    const after = await client.ehlo();
    expect(after.lines).toContain('AUTH PLAIN LOGIN');
    expect(after.lines).not.toContain('STARTTLS');
    client.close();
  });

  it('refuses AUTH before STARTTLS with 530 5.7.0', async () => {
    const client = await ehlo(t.client);
    const reply = await client.auth(USER, PASSWORD);
    expect(reply.raw).toBe('530 5.7.0 Must issue a STARTTLS command first\r\n');
    expect(t.rec.auths).toHaveLength(0);
    client.close();
  });

  it('refuses MAIL before AUTH with 530 5.7.0, in plaintext and after TLS', async () => {
    const plain = await ehlo(t.client);
    expect((await plain.command('MAIL FROM:<a@example.test>')).raw).toBe('530 5.7.0 Authentication required\r\n');
    plain.close();
    const secure = await startTls(t.client);
    expect((await secure.command('MAIL FROM:<a@example.test>')).raw).toBe('530 5.7.0 Authentication required\r\n');
    expect((await secure.command('RCPT TO:<b@example.test>')).raw).toBe('530 5.7.0 Authentication required\r\n');
    expect((await secure.command('DATA')).raw).toBe('530 5.7.0 Authentication required\r\n');
    secure.close();
  });

  it('starts the session over after the handshake: MAIL before a new EHLO gets 503 5.5.1', async () => {
    const client = await ehlo(t.client);
    await client.startTls();
    expect((await client.command('MAIL FROM:<a@example.test>')).raw).toMatch(/^503 5\.5\.1 /);
    expect((await client.auth(USER, PASSWORD)).code).toBe(503);
    expect((await client.ehlo()).code).toBe(250);
    expect((await client.auth(USER, PASSWORD)).code).toBe(235);
    client.close();
  });

  it('discards every byte pipelined after STARTTLS, a partial line included (CVE-2011-0411)', async () => {
    const client = await ehlo(t.client);
    client.write('STARTTLS\r\nRSET\r\nMAIL FROM:<injected@example.test>\r\nNOOP');
    const ready = await client.read();
    expect(ready.raw).toBe('220 2.0.0 Ready to start TLS\r\n');
    await client.upgrade();
    // If any injected line had survived, its reply would come first, or the
    // partial "NOOP" would prefix this EHLO and make it unrecognised.
    const reply = await client.ehlo();
    expect(reply.code).toBe(250);
    expect(reply.lines[0]).toMatch(/^gateway\.test /);
    expect((await client.command('NOOP')).raw).toBe('250 2.0.0 OK\r\n');
    expect(client.pending()).toHaveLength(0);
    client.close();
  });

  it('authenticates with PLAIN and LOGIN after STARTTLS, and refuses a wrong password with 535 5.7.8', async () => {
    for (const mechanism of ['PLAIN', 'LOGIN'] as const) {
      const client = await startTls(t.client);
      expect((await client.auth(USER, 'wrong', mechanism)).raw).toBe('535 5.7.8 Authentication credentials invalid\r\n');
      expect((await client.auth(USER, PASSWORD, mechanism)).raw).toBe('235 2.7.0 Authentication successful\r\n');
      client.close();
    }
    expect(t.rec.auths.map((a) => a.mechanism)).toEqual(['PLAIN', 'PLAIN', 'LOGIN', 'LOGIN']);
  });

  it('relays a message with enhanced codes on every reply', async () => {
    const client = await authenticated({ ...t.client, username: USER, password: PASSWORD });
    expect((await client.command('MAIL FROM:<a@example.test>')).raw).toBe('250 2.1.0 Accepted\r\n');
    expect((await client.command('RCPT TO:<b@example.test>')).raw).toBe('250 2.1.5 Accepted\r\n');
    expect((await client.command('DATA')).raw).toBe('354 End data with <CR><LF>.<CR><LF>\r\n');
    client.write('Subject: hi\r\n\r\n..dot\r\nbody\r\n.\r\n');
    expect((await client.read()).raw).toBe('250 2.0.0 Ok: queued as test-1\r\n');
    expect(t.rec.delivered).toEqual([{ from: 'a@example.test', to: ['b@example.test'], body: 'Subject: hi\r\n\r\n.dot\r\nbody\r\n' }]);
    client.close();
  });

  it('answers pipelined MAIL, RCPT and DATA in one TLS record', async () => {
    const client = await authenticated({ ...t.client, username: USER, password: PASSWORD });
    // Each TLS record the server writes reaches the client as its own 'data' chunk.
    const chunks: string[] = [];
    client.socket.on('data', (data: string) => chunks.push(data));
    client.write('MAIL FROM:<a@example.test>\r\nRCPT TO:<b@example.test>\r\nDATA\r\n');
    expect((await client.read()).raw).toBe('250 2.1.0 Accepted\r\n');
    expect((await client.read()).raw).toBe('250 2.1.5 Accepted\r\n');
    expect((await client.read()).raw).toBe('354 End data with <CR><LF>.<CR><LF>\r\n');
    expect(chunks).toEqual(['250 2.1.0 Accepted\r\n250 2.1.5 Accepted\r\n354 End data with <CR><LF>.<CR><LF>\r\n']);
    // A reply that waits on the backend still goes out on its own.
    client.write('Subject: hi\r\n\r\nbody\r\n.\r\n');
    expect((await client.read()).raw).toBe('250 2.0.0 Ok: queued as test-1\r\n');
    expect(t.rec.delivered).toHaveLength(1);
    client.close();
  });
});

describe('implicit TLS listener', () => {
  it('advertises AUTH and not STARTTLS, and authenticates', async () => {
    const client = await greeted(t.implicit);
    const reply = await client.ehlo();
    expect(reply.lines).toContain('AUTH PLAIN LOGIN');
    expect(reply.lines).not.toContain('STARTTLS');
    expect((await client.auth(USER, PASSWORD, 'LOGIN')).code).toBe(235);
    client.close();
  });
});

describe('errors', () => {
  it('answers an unexpected backend error with 451 4.3.0 and a generic text, and logs the real one', async () => {
    t.rec.failData = new Error('database at 10.1.2.3 exploded');
    const client = await authenticated({ ...t.client, username: USER, password: PASSWORD });
    const reply = await client.sendMail('a@example.test', ['b@example.test'], 'Subject: x\r\n\r\nx\r\n');
    expect(reply.raw).toBe('451 4.3.0 Temporary internal error, try again later\r\n');
    expect(t.rec.logs.some((l) => l.level === 'error' && (l.obj as { err?: Error }).err?.message === 'database at 10.1.2.3 exploded')).toBe(true);
    // the session is still usable
    expect((await client.command('NOOP')).code).toBe(250);
    client.close();
  });

  it('answers a typed error with its own code and enhanced code', async () => {
    const { Replies } = await import('../src/index.js');
    t.rec.failAuth = Replies.S454_AUTH_UNAVAILABLE;
    const client = await startTls(t.client);
    expect((await client.auth(USER, PASSWORD)).raw).toBe('454 4.7.0 Temporary authentication failure, try again later\r\n');
    client.close();
  });

  it('calls reset on RSET and logout on close', async () => {
    const client = await authenticated({ ...t.client, username: USER, password: PASSWORD });
    const resetsBefore = t.rec.resets;
    expect((await client.command('RSET')).code).toBe(250);
    expect(t.rec.resets).toBeGreaterThan(resetsBefore);
    expect(t.rec.open).toBe(1);
    await client.command('QUIT');
    await client.closed();
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(t.rec.open).toBe(0);
  });
});

describe('client compatibility', () => {
  it('lets SmtpTestClient see the server close after QUIT', async () => {
    const client = await SmtpTestClient.connect(t.client);
    expect((await client.command('QUIT')).raw).toBe('221 2.0.0 Bye\r\n');
    await client.closed();
  });
});
