/**
 * Limits that hold while a message is received or waits for its reply: the
 * replica's in-flight byte budget, the overall session cap during DATA, and
 * the shutdown drain, which never cuts a reply short. Real sockets and TLS; the
 * backend holds each received message until the test releases it, as the relay
 * does while it waits on Cakemail.
 */
import { text } from 'node:stream/consumers';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import type { SmtpTestClient } from '@cakemail-smtp/testkit';
import type { Backend } from '../src/index.js';
import { eventually, loggedIn, recordingBackend, startServer, USER, type Recorder, type TestServer } from './helpers.js';

let t: TestServer | undefined;
const clients: SmtpTestClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await t?.close();
  t = undefined;
});

async function client(server: TestServer): Promise<SmtpTestClient> {
  const c = await loggedIn(server);
  clients.push(c);
  return c;
}

/** A recording backend whose data() reads the whole message, then waits for release(). */
function holdingBackend(): { backend: (rec: Recorder) => Backend; received: () => number; release: () => void } {
  let received = 0;
  let open: () => void = () => {};
  const gate = new Promise<void>((resolve) => (open = resolve));
  return {
    received: () => received,
    release: () => open(),
    backend: (rec) => {
      const inner = recordingBackend(rec);
      return {
        newSession(conn) {
          const session = inner.newSession(conn);
          return {
            ...session,
            async data(message, info) {
              const body = await text(message);
              received++;
              await gate;
              rec.delivered.push({ from: info.from, to: info.to, body });
              return `Ok: queued as test-${rec.delivered.length}`;
            },
          };
        },
      };
    },
  };
}

/** `bytes` of printable text in 76-character lines, CRLF line ends. */
function message(bytes: number): string {
  const line = `${'x'.repeat(74)}\r\n`;
  return `Subject: load\r\n\r\n${line.repeat(Math.ceil(bytes / line.length))}`;
}

/** MAIL, RCPT and DATA; resolves once the 354 is in. */
async function openData(c: SmtpTestClient, mailArgs = ''): Promise<void> {
  expect((await c.command(`MAIL FROM:<${USER}>${mailArgs}`)).code).toBe(250);
  expect((await c.command('RCPT TO:<rcpt@example.test>')).code).toBe(250);
  expect((await c.command('DATA')).code).toBe(354);
}

describe('in-flight bytes (MAX_INFLIGHT_BYTES)', () => {
  it('a message that would pass the cap gets 451 4.3.1 after its final dot while the others succeed; the count returns to 0', async () => {
    const hold = holdingBackend();
    t = await startServer({ backend: hold.backend, limits: { maxInflightBytes: 100_000, maxMessageSize: 60_000 } });
    const [a, b, c] = [await client(t), await client(t), await client(t)];
    const first = a.sendMail(USER, ['rcpt@example.test'], message(40_000));
    const second = b.sendMail(USER, ['rcpt@example.test'], message(40_000));
    await eventually(() => hold.received() === 2, 10_000);
    const held = t.server.inflightBytes;
    expect(held).toBeGreaterThan(80_000);
    expect(held).toBeLessThanOrEqual(100_000);

    // 40 KB more passes the cap: refused, drained to the final dot, nothing kept.
    expect((await c.sendMail(USER, ['rcpt@example.test'], message(40_000))).raw).toBe(
      '451 4.3.1 Insufficient system storage, try again later\r\n',
    );
    expect(t.server.inflightBytes).toBe(held);
    expect(t.rec.counts.get('limit:inflight_bytes')).toBe(1);
    expect(t.rec.counts.get('message:temporary')).toBe(1);
    // The session is in sync and usable.
    expect((await c.command('NOOP')).code).toBe(250);

    hold.release();
    expect((await first).raw).toBe('250 2.0.0 Ok: queued as test-1\r\n');
    expect((await second).raw).toBe('250 2.0.0 Ok: queued as test-2\r\n');
    expect(t.server.inflightBytes).toBe(0);
    // And the retry passes now.
    expect((await c.sendMail(USER, ['rcpt@example.test'], message(40_000))).code).toBe(250);
    expect(t.server.inflightBytes).toBe(0);
    expect(t.rec.delivered).toHaveLength(3);
  });

  it('MAIL FROM SIZE= over what is free gets 452 4.3.1; a size that fits is taken, and reserves nothing', async () => {
    const hold = holdingBackend();
    t = await startServer({ backend: hold.backend, limits: { maxInflightBytes: 100_000, maxMessageSize: 90_000 } });
    const a = await client(t);
    const first = a.sendMail(USER, ['rcpt@example.test'], message(70_000));
    await eventually(() => hold.received() === 1, 10_000);
    const free = 100_000 - t.server.inflightBytes;

    const b = await client(t);
    expect((await b.command(`MAIL FROM:<${USER}> SIZE=${free + 1}`)).raw).toBe('452 4.3.1 Insufficient system storage, try again later\r\n');
    expect(t.rec.counts.get('limit:inflight_bytes')).toBe(1);
    expect(t.rec.counts.get('limit:recipients')).toBeUndefined();
    expect((await b.command(`MAIL FROM:<${USER}> SIZE=${free}`)).code).toBe(250);
    // A declaration is not a reservation.
    expect(t.server.inflightBytes).toBe(100_000 - free);

    hold.release();
    expect((await first).code).toBe(250);
    expect(t.server.inflightBytes).toBe(0);
  });

  it('gives the bytes back when the client goes away mid-DATA, and nothing is delivered', async () => {
    t = await startServer({ limits: { maxInflightBytes: 100_000 } });
    const c = await client(t);
    await openData(c);
    c.write(message(30_000));
    await eventually(() => (t?.server.inflightBytes ?? 0) >= 30_000, 10_000);
    c.close();
    await eventually(() => t?.server.inflightBytes === 0, 10_000);
    await eventually(() => t?.rec.open === 0, 10_000);
    expect(t.rec.delivered).toEqual([]);
  });

  it('gives the bytes back when the backend refuses the message', async () => {
    t = await startServer({ limits: { maxInflightBytes: 100_000 } });
    const c = await client(t);
    t.rec.failData = new Error('boom');
    expect((await c.sendMail(USER, ['rcpt@example.test'], message(30_000))).code).toBe(451);
    expect(t.server.inflightBytes).toBe(0);
  });
});

describe('the overall session cap during DATA (SESSION_MAX_MS)', () => {
  it('a message dripped in past the cap is dropped: 421 4.4.2, closed, nothing delivered', async () => {
    t = await startServer({ limits: { sessionMaxMs: 1500, maxInflightBytes: 100_000 } });
    const c = await client(t);
    await openData(c);
    c.write('Subject: drip\r\n\r\n');
    // One byte every 100 ms, for longer than the cap; the final dot comes only if nobody stopped us.
    const dripping = (async () => {
      for (let i = 0; i < 60 && !c.isClosed; i++) {
        c.write('x');
        await sleep(100);
      }
      if (!c.isClosed) c.write('\r\n.\r\n');
    })();
    expect((await c.read()).raw).toBe('421 4.4.2 Session time limit reached, closing connection\r\n');
    await c.closed(10_000);
    await dripping;
    await eventually(() => t?.rec.open === 0, 10_000);
    expect(t.rec.delivered).toEqual([]);
    expect(t.rec.counts.get('limit:session_time')).toBe(1);
    expect(t.server.inflightBytes).toBe(0);
  });

  it('a message already received gets its reply first', async () => {
    const hold = holdingBackend();
    t = await startServer({ backend: hold.backend, limits: { sessionMaxMs: 800 } });
    const c = await client(t);
    const reply = c.sendMail(USER, ['rcpt@example.test'], message(1_000));
    await eventually(() => hold.received() === 1, 10_000);
    await sleep(1_200); // past the cap while the backend holds the message
    expect(c.isClosed).toBe(false);
    hold.release();
    expect((await reply).raw).toBe('250 2.0.0 Ok: queued as test-1\r\n');
    expect((await c.read()).raw).toBe('421 4.4.2 Session time limit reached, closing connection\r\n');
    await c.closed(10_000);
  });
});

describe('shutdown drain', () => {
  it('a message waiting for its reply is never cut at the close timeout: the client gets the real reply, then 421 4.3.2', async () => {
    const hold = holdingBackend();
    t = await startServer({ backend: hold.backend, limits: { closeTimeoutMs: 300 } });
    const busy = await client(t);
    const idle = await client(t);
    const reply = busy.sendMail(USER, ['rcpt@example.test'], message(1_000));
    await eventually(() => hold.received() === 1, 10_000);

    let closed = false;
    const closing = t.server.close().then(() => (closed = true));
    expect((await idle.read()).raw).toBe('421 4.3.2 Service shutting down, try again later\r\n');
    await sleep(1_000); // well past closeTimeoutMs
    expect(busy.pending()).toEqual([]);
    expect(busy.isClosed).toBe(false);
    expect(closed).toBe(false);

    hold.release();
    expect((await reply).raw).toBe('250 2.0.0 Ok: queued as test-1\r\n');
    expect((await busy.read()).raw).toBe('421 4.3.2 Service shutting down, try again later\r\n');
    await busy.closed(10_000);
    await closing;
    expect(t.rec.delivered).toHaveLength(1);
  });

  it('at the cut-off (closeTimeoutMs - maxReplyWaitMs) a message still being received is dropped with 421 4.3.2; nothing is delivered', async () => {
    t = await startServer({ limits: { closeTimeoutMs: 5_000, maxReplyWaitMs: 4_500, maxInflightBytes: 100_000 } });
    const c = await client(t);
    await openData(c);
    c.write(message(2_000));
    await eventually(() => (t?.server.inflightBytes ?? 0) > 0, 10_000);
    const started = Date.now();
    const closing = t.server.close();
    expect((await c.read()).raw).toBe('421 4.3.2 Service shutting down, try again later\r\n');
    expect(Date.now() - started).toBeLessThan(4_500); // the cut-off, not closeTimeoutMs
    c.write('\r\n.\r\n');
    await c.closed(10_000);
    await closing;
    expect(t.rec.delivered).toEqual([]);
    expect(t.server.inflightBytes).toBe(0);
  });
});
