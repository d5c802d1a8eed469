/**
 * Edge defences, byte-exact (go-smtp's server_test.go, aiosmtpd's
 * test_smtpsmuggling.py): every case asserts the exact reply, that the session
 * stays in sync or is closed as specified, and what reached the backend.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Socket } from 'node:net';
import { SMUGGLING_SEQUENCES, SmtpTestClient, ehlo, greeted, startTls } from '@cakemail-smtp/testkit';
import { createMemoryAuthLimiter } from '../src/auth-limiter/index.js';
import { SmtpError, type AuthDecision } from '../src/index.js';
import { PASSWORD, USER, eventually, loggedIn, startServer, testAuthLimits, type TestServer } from './helpers.js';

let t: TestServer | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

/** MAIL, RCPT, DATA, then the raw bytes as given (nothing added, no dot-stuffing). */
async function rawData(client: SmtpTestClient, bytes: string): Promise<void> {
  expect((await client.command('MAIL FROM:<a@example.test>')).code).toBe(250);
  expect((await client.command('RCPT TO:<b@example.test>')).code).toBe(250);
  expect((await client.command('DATA')).code).toBe(354);
  client.write(bytes);
}

/** The session answers NOOP next, and nothing else is waiting: it is in sync. */
async function inSync(client: SmtpTestClient): Promise<void> {
  expect((await client.command('NOOP')).raw).toBe('250 2.0.0 OK\r\n');
  await new Promise((resolve) => setTimeout(resolve, 50));
  expect(client.pending()).toHaveLength(0);
}

describe('end of DATA and SMTP smuggling', () => {
  const smuggled = 'MAIL FROM:<evil@example.test>\r\nRCPT TO:<victim@example.test>\r\nDATA\r\nSubject: smuggled\r\n\r\nsmuggled\r\n';
  it.each(SMUGGLING_SEQUENCES)('%s neither ends the message nor starts a second one', async (_name, sequence) => {
    t = await startServer();
    const client = await loggedIn(t);
    await rawData(client, `Subject: one\r\n\r\nbody${sequence}${smuggled}\r\n.\r\n`);
    expect((await client.read()).raw).toBe('250 2.0.0 Ok: queued as test-1\r\n');
    await inSync(client);
    expect(t.rec.delivered).toHaveLength(1);
    expect(t.rec.delivered[0]?.to).toEqual(['b@example.test']);
    expect(t.rec.delivered[0]?.body).toContain('smuggled');
    client.close();
  });

  it('only <CR><LF>.<CR><LF> ends DATA, even split across packets', async () => {
    t = await startServer();
    const client = await loggedIn(t);
    await rawData(client, 'Subject: split\r\n\r\nbody\r');
    await new Promise((resolve) => setTimeout(resolve, 20));
    client.write('\n.');
    await new Promise((resolve) => setTimeout(resolve, 20));
    client.write('\r\n');
    expect((await client.read()).code).toBe(250);
    expect(t.rec.delivered[0]?.body).toBe('Subject: split\r\n\r\nbody\r\n');
    await inSync(client);
    client.close();
  });
});

describe('bare LF and bare CR', () => {
  it('normalize (the default): a bare LF becomes a line end', async () => {
    t = await startServer();
    const client = await loggedIn(t);
    await rawData(client, 'Subject: lf\nX-A: 1\r\n\r\nline1\nline2\r\n.\r\n');
    expect((await client.read()).code).toBe(250);
    expect(t.rec.delivered[0]?.body).toBe('Subject: lf\r\nX-A: 1\r\n\r\nline1\r\nline2\r\n');
    await inSync(client);
    client.close();
  });

  it('reject: a bare LF gets 550 5.5.2 at end of data and nothing is delivered', async () => {
    t = await startServer({ limits: { bareLf: 'reject' } });
    const client = await loggedIn(t);
    await rawData(client, 'Subject: lf\r\n\r\nline1\nline2\r\n.\r\n');
    expect((await client.read()).raw).toBe('550 5.5.2 Bare LF line endings are not allowed, use CRLF\r\n');
    expect(t.rec.delivered).toHaveLength(0);
    expect(t.rec.counts.get('limit:bare_lf')).toBe(1);
    await inSync(client);
    // a clean message afterwards goes through
    expect((await client.sendMail('a@example.test', ['b@example.test'], 'Subject: ok\r\n\r\nfine\r\n')).code).toBe(250);
    client.close();
  });

  it('a bare CR is content, never a line end', async () => {
    t = await startServer();
    const client = await loggedIn(t);
    await rawData(client, 'Subject: cr\rBcc: victim@example.test\r\n\r\nbody\rmore\r\n.\r\n');
    expect((await client.read()).code).toBe(250);
    expect(t.rec.delivered[0]?.body).toBe('Subject: cr\rBcc: victim@example.test\r\n\r\nbody\rmore\r\n');
    await inSync(client);
    client.close();
  });
});

describe('NUL bytes', () => {
  it('gets 554 5.6.0 and none of the message reaches the backend', async () => {
    t = await startServer();
    const client = await loggedIn(t);
    await rawData(client, 'Subject: nul\r\n\r\nbefore\0after\r\n.\r\n');
    expect((await client.read()).raw).toBe('554 5.6.0 Message contains NUL characters\r\n');
    expect(t.rec.delivered).toHaveLength(0);
    await inSync(client);
    client.close();
  });
});

describe('message size', () => {
  it('552 5.3.4 at MAIL SIZE= and during DATA; nothing of it is delivered', async () => {
    t = await startServer({ limits: { maxMessageSize: 2048 } });
    const client = await loggedIn(t);
    expect((await client.command('MAIL FROM:<a@example.test> SIZE=4096')).raw).toMatch(/^552 5\.3\.4 /);
    await rawData(client, `Subject: big\r\n\r\n${'x'.repeat(100)}\r\n`.repeat(40) + '.\r\n');
    expect((await client.read()).raw).toBe('552 5.3.4 Message size exceeds fixed maximum message size\r\n');
    expect(t.rec.delivered).toHaveLength(0);
    await inSync(client);
    client.close();
  });
});

describe('command lines', () => {
  it('a terminated line over 512 octets gets 500 5.5.2 and the session stays usable', async () => {
    t = await startServer();
    const client = await ehlo(t.client);
    const exact = `NOOP ${'a'.repeat(505)}`; // 510 + CRLF = 512 octets
    expect(exact.length).toBe(510);
    expect((await client.command(exact)).code).toBe(250);
    expect((await client.command(`${exact}b`)).raw).toBe('500 5.5.2 Line too long\r\n');
    expect((await client.command(`NOOP ${'a'.repeat(20_000)}`)).raw).toBe('500 5.5.2 Line too long\r\n');
    await inSync(client);
    expect(t.rec.counts.get('limit:line_length')).toBe(2);
    client.close();
  });

  it('an unterminated line over 512 octets is answered at once; its tail is dropped', async () => {
    t = await startServer();
    const client = await ehlo(t.client);
    client.write(`MAIL FROM:<${'a'.repeat(600)}`);
    expect((await client.read()).raw).toBe('500 5.5.2 Line too long\r\n');
    client.write(`${'b'.repeat(70_000)}>\r\n`); // the rest of that line: no reply of its own
    await inSync(client);
    client.close();
  });

  it('pipelined commands around a long line are each answered, in order', async () => {
    t = await startServer();
    const client = await ehlo(t.client);
    client.write(`NOOP\r\nNOOP ${'x'.repeat(600)}\r\nRSET\r\n`);
    expect((await client.read()).raw).toBe('250 2.0.0 OK\r\n');
    expect((await client.read()).raw).toBe('500 5.5.2 Line too long\r\n');
    expect((await client.read()).raw).toBe('250 2.0.0 Flushed\r\n');
    await inSync(client);
    client.close();
  });

  it('AUTH lines may be up to 12 288 octets (RFC 4954)', async () => {
    t = await startServer();
    const client = await startTls(t.client);
    const long = Buffer.from(`\0${USER}\0${'p'.repeat(3000)}`).toString('base64');
    expect((await client.command(`AUTH PLAIN ${long}`)).raw).toBe('535 5.7.8 Authentication credentials invalid\r\n');
    expect((await client.command(`AUTH PLAIN ${'A'.repeat(12_300)}`)).raw).toBe('500 5.5.2 Line too long\r\n');
    expect((await client.auth(USER, PASSWORD)).code).toBe(235);
    client.close();
  });

  it('invalid base64 in AUTH gets 501 5.5.2 and the session stays usable', async () => {
    t = await startServer();
    const client = await startTls(t.client);
    expect((await client.command('AUTH PLAIN !!!not-base64!!!')).raw).toBe('501 5.5.2 Invalid base64 in authentication exchange\r\n');
    expect((await client.command('AUTH LOGIN')).raw).toBe('334 VXNlcm5hbWU6\r\n');
    expect((await client.command('dXNlcg=%')).raw).toBe('501 5.5.2 Invalid base64 in authentication exchange\r\n');
    expect((await client.command('AUTH PLAIN')).raw).toBe('334 \r\n');
    expect((await client.command('AAAA*AAA')).raw).toBe('501 5.5.2 Invalid base64 in authentication exchange\r\n');
    expect(t.rec.auths).toHaveLength(0);
    expect((await client.auth(USER, PASSWORD)).code).toBe(235);
    await inSync(client);
    client.close();
  });
});

describe('floods', () => {
  it.each(['NOOP', 'RSET', 'VRFY someone', 'XYZZY'])('%s after AUTH is bounded: 421 4.7.0 and close', async (command) => {
    t = await startServer({ limits: { maxJunkCommands: 5 } });
    const client = await loggedIn(t);
    // the ladder's two EHLOs counted as two
    for (let i = 0; i < 3; i++) expect((await client.command(command)).code).not.toBe(421);
    expect((await client.command(command)).raw).toBe('421 4.7.0 Too many commands without a message, closing connection\r\n');
    await client.closed();
    expect(t.rec.counts.get('limit:command_flood')).toBe(1);
  });

  it('a delivered message resets the count', async () => {
    t = await startServer({ limits: { maxJunkCommands: 3 } });
    const client = await loggedIn(t);
    for (let round = 0; round < 3; round++) {
      expect((await client.command('NOOP')).code).toBe(250);
      expect((await client.sendMail('a@example.test', ['b@example.test'], 'Subject: x\r\n\r\nx\r\n')).code).toBe(250);
      expect((await client.command('NOOP')).code).toBe(250);
      expect((await client.command('RSET')).code).toBe(250);
    }
    client.close();
  });

  it('unknown commands before AUTH are bounded too', async () => {
    t = await startServer();
    const client = await ehlo(t.client);
    let reply;
    for (let i = 0; i < 12; i++) {
      reply = await client.command('BOGUS');
      if (reply.code === 421) break;
    }
    expect(reply?.raw).toBe('421 4.7.0 Too many commands without a message, closing connection\r\n');
    await client.closed();
  });

  it('transactions per session are bounded', async () => {
    t = await startServer({ limits: { maxMessagesPerSession: 2 } });
    const client = await loggedIn(t);
    for (let i = 0; i < 2; i++) expect((await client.sendMail('a@example.test', ['b@example.test'], 'Subject: x\r\n\r\nx\r\n')).code).toBe(250);
    expect((await client.command('MAIL FROM:<a@example.test>')).raw).toBe('421 4.7.0 Too many messages in this session, reconnect to send more\r\n');
    await client.closed();
    expect(t.rec.delivered).toHaveLength(2);
  });
});

describe('brute force', () => {
  it('3 failed AUTH on one connection: 421 4.7.0 and close', async () => {
    t = await startServer();
    const client = await startTls(t.client);
    expect((await client.auth(USER, 'wrong1')).raw).toBe('535 5.7.8 Authentication credentials invalid\r\n');
    expect((await client.auth(USER, 'wrong2', 'LOGIN')).raw).toBe('535 5.7.8 Authentication credentials invalid\r\n');
    expect((await client.auth(USER, 'wrong3')).raw).toBe('421 4.7.0 Too many failed authentication attempts, closing connection\r\n');
    await client.closed();
  });

  async function failFrom(server: TestServer, localAddress: string, username: string, times: number): Promise<void> {
    let left = times;
    while (left > 0) {
      const client = await startTls({ ...server.client, localAddress });
      for (let i = 0; i < 2 && left > 0; i++, left--) expect((await client.auth(username, 'wrong')).code).toBe(535);
      client.close();
    }
  }

  it('10 failures for one username from one IP lock that pair, not other IPs', async () => {
    t = await startServer();
    await failFrom(t, '127.0.0.1', USER, 10);
    const locked = await startTls(t.client);
    expect((await locked.auth(USER, PASSWORD)).raw).toBe('454 4.7.0 Too many failed authentication attempts, try again later\r\n');
    locked.close();
    const other = await startTls({ ...t.client, localAddress: '127.0.0.2' });
    expect((await other.auth(USER, PASSWORD)).code).toBe(235);
    other.close();
    expect(t.rec.counts.get('limit:auth_lockout_user')).toBe(1);
    // hammering the lock on one connection is bounded like failures are
    const hammer = await startTls(t.client);
    expect((await hammer.auth(USER, PASSWORD)).code).toBe(454);
    expect((await hammer.auth(USER, PASSWORD)).code).toBe(454);
    expect((await hammer.auth(USER, PASSWORD)).raw).toBe('421 4.7.0 Too many failed authentication attempts, closing connection\r\n');
    await hammer.closed();
  });

  it('9 failures do not lock; success forgets them', async () => {
    t = await startServer();
    await failFrom(t, '127.0.0.3', USER, 9);
    const client = await startTls({ ...t.client, localAddress: '127.0.0.3' });
    expect((await client.auth(USER, PASSWORD)).code).toBe(235);
    client.close();
    await failFrom(t, '127.0.0.3', USER, 9);
    const again = await startTls({ ...t.client, localAddress: '127.0.0.3' });
    expect((await again.auth(USER, PASSWORD)).code).toBe(235);
    again.close();
  });

  it('30 failures from one IP lock that IP for every username, until the window passes', async () => {
    // A window long enough for the 30 failures (5 TLS sessions) to fit in it on a loaded machine.
    const windowMs = 10_000;
    t = await startServer({ authLimiter: createMemoryAuthLimiter({ ...testAuthLimits, windowMs }) });
    for (let u = 0; u < 5; u++) await failFrom(t, '127.0.0.4', `user${u}@example.test`, 6);
    const lockedAt = Date.now();
    const locked = await startTls({ ...t.client, localAddress: '127.0.0.4' });
    expect((await locked.auth(USER, PASSWORD)).raw).toBe('454 4.7.0 Too many failed authentication attempts, try again later\r\n');
    locked.close();
    const elsewhere = await startTls({ ...t.client, localAddress: '127.0.0.5' });
    expect((await elsewhere.auth(USER, PASSWORD)).code).toBe(235);
    elsewhere.close();
    // the lock lasts one window from the 30th failure
    await new Promise((resolve) => setTimeout(resolve, lockedAt + windowMs + 100 - Date.now()));
    const later = await startTls({ ...t.client, localAddress: '127.0.0.4' });
    expect((await later.auth(USER, PASSWORD)).code).toBe(235);
    later.close();
  });
});

describe('AUTH refusals by reason', () => {
  const denied: AuthDecision = { ok: false, reason: 'denied', reply: new SmtpError(535, '5.7.8', 'Login refused for this account') };
  const unavailable: AuthDecision = { ok: false, reason: 'unavailable', reply: new SmtpError(454, '4.7.0', 'Cannot check now') };

  it('only invalid credentials count towards the lockout: denied and unavailable logins do not', async () => {
    t = await startServer({ authLimiter: createMemoryAuthLimiter({ ...testAuthLimits, pairLimit: 2 }) });
    for (const refusal of [denied, unavailable]) {
      t.rec.refuseAuth = refusal;
      for (let i = 0; i < 3; i++) {
        const client = await startTls(t.client);
        expect((await client.auth(USER, PASSWORD)).code).toBe(refusal.ok ? 235 : refusal.reply.code);
        client.close();
      }
    }
    t.rec.refuseAuth = undefined;
    const client = await startTls(t.client);
    expect((await client.auth(USER, PASSWORD)).code).toBe(235);
    client.close();
    const wrong = await startTls(t.client);
    expect((await wrong.auth(USER, 'wrong1')).code).toBe(535);
    expect((await wrong.auth(USER, 'wrong2')).code).toBe(535);
    wrong.close();
    const locked = await startTls(t.client);
    expect((await locked.auth(USER, PASSWORD)).raw).toBe('454 4.7.0 Too many failed authentication attempts, try again later\r\n');
    locked.close();
  });

  it('on one connection a denied login counts towards maxAuthFailures, an unavailable one does not', async () => {
    t = await startServer();
    t.rec.refuseAuth = unavailable;
    const retrying = await startTls(t.client);
    for (let i = 0; i < 4; i++) expect((await retrying.auth(USER, PASSWORD)).raw).toBe('454 4.7.0 Cannot check now\r\n');
    retrying.close();
    t.rec.refuseAuth = denied;
    const refused = await startTls(t.client);
    expect((await refused.auth(USER, PASSWORD)).raw).toBe('535 5.7.8 Login refused for this account\r\n');
    expect((await refused.auth(USER, PASSWORD)).raw).toBe('535 5.7.8 Login refused for this account\r\n');
    expect((await refused.auth(USER, PASSWORD)).raw).toBe('421 4.7.0 Too many failed authentication attempts, closing connection\r\n');
    await refused.closed();
  });
});

describe('connections', () => {
  it('MAX_CONNECTIONS: one over gets 421 4.7.0 at the greeting', async () => {
    t = await startServer({ limits: { maxConnections: 2, maxConnectionsPerIp: 0 } });
    const a = await greeted(t.client);
    const b = await greeted(t.client);
    const c = await greeted(t.client);
    expect(c.greeting?.raw).toBe('421 4.7.0 Too many connections, try again later\r\n');
    await c.closed();
    a.close();
    await eventually(() => t?.server.connections === 1);
    const d = await greeted(t.client);
    expect(d.greeting?.code).toBe(220);
    b.close();
    d.close();
  });

  it('MAX_CONNECTIONS_PER_IP: one over gets 421 4.7.0; other IPs are served; STARTTLS does not leak the count', async () => {
    t = await startServer({ limits: { maxConnectionsPerIp: 2 } });
    const server = t;
    const a = await startTls(server.client); // upgraded: still counted once, released on close
    const b = await greeted(server.client);
    const c = await greeted(server.client);
    expect(c.greeting?.raw).toBe('421 4.7.0 Too many connections from your address, try again later\r\n');
    await c.closed();
    const other = await greeted({ ...server.client, localAddress: '127.0.0.2' });
    expect(other.greeting?.code).toBe(220);
    a.close();
    b.close();
    other.close();
    await eventually(() => server.server.connections === 0);
    const again = [await greeted(server.client), await greeted(server.client)];
    expect(again.map((x) => x.greeting?.code)).toEqual([220, 220]);
    for (const x of again) x.close();
  });

  it('an idle session gets 421 4.4.2 and is closed', async () => {
    t = await startServer({ limits: { idleTimeoutMs: 300 } });
    const client = await ehlo(t.client);
    expect((await client.read()).raw).toBe('421 4.4.2 Idle timeout, closing connection\r\n');
    await client.closed();
  });

  it('the overall session cap closes even a busy session with 421 4.4.2', async () => {
    t = await startServer({ limits: { sessionMaxMs: 400, maxJunkCommands: 1000 } });
    const client = await loggedIn(t);
    let reply;
    for (let i = 0; i < 100; i++) {
      reply = await client.command('NOOP');
      if (reply.code !== 250) break;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(reply?.raw).toBe('421 4.4.2 Session time limit reached, closing connection\r\n');
    await client.closed();
  });

  it('does no reverse DNS lookup: the client is named by its address literal', async () => {
    t = await startServer();
    const client = await greeted(t.client);
    // With a reverse lookup, 127.0.0.1 would be greeted as "localhost".
    expect((await client.ehlo()).lines[0]).toBe('gateway.test Nice to meet you, [127.0.0.1]');
    client.close();
  });

  it('sets TCP_NODELAY on accepted sockets', async () => {
    const spy = vi.spyOn(Socket.prototype, 'setNoDelay');
    try {
      t = await startServer();
      spy.mockClear();
      const client = await greeted(t.client);
      // the server's side of this connection, on a port the client did not choose
      const serverSide = spy.mock.contexts.filter((s) => (s as Socket).localPort === t?.port);
      expect(serverSide.length).toBeGreaterThan(0);
      expect(spy.mock.calls.every((args) => args[0] === true || args[0] === undefined)).toBe(true);
      client.close();
    } finally {
      spy.mockRestore();
    }
  });
});
