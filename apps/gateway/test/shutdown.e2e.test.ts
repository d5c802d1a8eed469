/**
 * Shutdown drains (SIGTERM → gateway.close()): readiness turns 503, no new
 * connections, idle sessions get 421 4.3.2 at once, and a message being relayed
 * gets its real reply before the 421. Nothing is lost, nothing is cut short.
 */
import { connect } from 'node:net';
import { expect, it } from 'vitest';
import { DEFAULT_SENDER } from '@cakemail-smtp/testkit';
import { lineOf, startGateway, textMessage } from './e2e-helpers.js';

it('lets the message in flight finish, says 421 to idle sessions, and refuses new connections', async () => {
  const gw = await startGateway({ env: { SHUTDOWN_TIMEOUT_MS: '10000' } });
  try {
    gw.fake.faults.set('send', { delayMs: 600 });
    const idle = await gw.login();
    const busy = await gw.login();
    const reply = busy.sendMail(DEFAULT_SENDER.email, ['a@example.net'], textMessage({ subject: 'in flight' }));
    const start = Date.now();
    while (gw.fake.counts().send === 0) {
      if (Date.now() - start > 5000) throw new Error('the send never reached the fake');
      await new Promise((resolve) => setTimeout(resolve, 10));
    }

    const closing = gw.gateway.close();
    expect((await fetch(`http://127.0.0.1:${gw.ports.ops}/health/ready`)).status).toBe(503);
    expect(lineOf(await idle.read())).toBe('421 4.3.2 Service shutting down, try again later');
    await idle.closed();

    expect(lineOf(await reply)).toMatch(/^250 2\.0\.0 Ok: queued as [0-9a-f-]{36}$/);
    expect(lineOf(await busy.read())).toBe('421 4.3.2 Service shutting down, try again later');
    await busy.closed();
    expect(gw.fake.sent()).toHaveLength(1);

    await closing;
    expect(Date.now() - start).toBeLessThan(5000); // not the 10 s grace period: nobody was left
    const refused = await new Promise<string>((resolve) => {
      const socket = connect(gw.ports.smtp, '127.0.0.1');
      socket.once('connect', () => resolve('connected'));
      socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
    });
    expect(refused).toBe('ECONNREFUSED');
  } finally {
    await gw.close().catch(() => {});
  }
});

it('never cuts a message being relayed: the client gets its real 250 (not 421 while Cakemail delivers), and it is sent once', async () => {
  // loadConfig refuses SHUTDOWN_TIMEOUT_MS < UPSTREAM_DEADLINE_MS; the drain must not cut a relay
  // even then, so this configuration is built past it: the relay outlasts the shutdown timeout.
  const gw = await startGateway({
    env: { UPSTREAM_DEADLINE_MS: '10000', SHUTDOWN_TIMEOUT_MS: '10000' },
    adjust: (config) => ({ ...config, limits: { ...config.limits, closeTimeoutMs: 300 } }),
  });
  try {
    gw.fake.faults.set('send', { delayMs: 2000 });
    const busy = await gw.login();
    const reply = busy.sendMail(DEFAULT_SENDER.email, ['a@example.net'], textMessage({ subject: 'slow relay' }));
    const start = Date.now();
    // counts() counts a call when it arrives; calls and sent() record it once answered.
    while (gw.fake.counts().send === 0) {
      if (Date.now() - start > 5000) throw new Error('the send never reached the fake');
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    expect(gw.fake.sent()).toEqual([]); // mid-relay

    const closing = gw.gateway.close();
    const line = lineOf(await reply);
    const sent = gw.fake.sent();
    expect(sent).toHaveLength(1);
    expect(line).toBe(`250 2.0.0 Ok: queued as ${sent[0]?.id}`);
    expect(lineOf(await busy.read())).toBe('421 4.3.2 Service shutting down, try again later');
    await busy.closed();
    await closing;
    expect(gw.fake.calls.filter((c) => c.route === 'send')).toHaveLength(1);
  } finally {
    await gw.close().catch(() => {});
  }
});
