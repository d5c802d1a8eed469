/**
 * The gateway behind a real HAProxy with PROXY protocol (issue 9, item 4):
 * PROXY_PROTOCOL=on trusts HAProxy's address (127.0.0.1), so each client is
 * its own address for per-IP limits, logs and metrics; clients use
 * 127.0.0.2 and 127.0.0.3 as their source addresses.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect } from 'node:net';
import { DEFAULT_SENDER, DEFAULT_USER, authenticated, freePort, greeted, startHaproxy, type Haproxy } from '@cakemail-smtp/testkit';
import { scrapeMetrics, startGateway, textMessage, type RunningGateway } from './e2e-helpers.js';

describe.each([
  ['send-proxy-v2', 'v2'],
  ['send-proxy', 'v1'],
] as const)('behind HAProxy with %s', (_name, version) => {
  let gw: RunningGateway;
  let haproxy: Haproxy;
  beforeAll(async () => {
    gw = await startGateway({
      env: {
        PROXY_PROTOCOL: 'on',
        PROXY_TRUSTED_CIDRS: '127.0.0.1/32, ::1/128',
        MAX_CONNECTIONS_PER_IP: '2',
        SMTPS_PORT: String(await freePort()), // 0 would disable the implicit-TLS listener
      },
    });
    haproxy = await startHaproxy([
      { target: gw.ports.smtp, proxy: version },
      { target: gw.ports.smtps as number, proxy: version },
    ]);
  });
  afterAll(async () => {
    await haproxy?.stop();
    await gw?.close();
  });

  const metric = async (line: string): Promise<number> => (await scrapeMetrics(gw.ports.ops)).get(line) ?? 0;

  it('two clients each get their own per-IP limit; the logs name them', async () => {
    const via = { ...gw.client, port: haproxy.ports[0] as number };
    const before = await metric('smtp_gateway_limit_rejections_total{reason="connections_per_ip"}');
    const a1 = await greeted({ ...via, localAddress: '127.0.0.2' });
    const a2 = await greeted({ ...via, localAddress: '127.0.0.2' });
    const a3 = await greeted({ ...via, localAddress: '127.0.0.2' });
    const b1 = await greeted({ ...via, localAddress: '127.0.0.3' });
    expect(a3.greeting?.raw).toBe('421 4.7.0 Too many connections from your address, try again later\r\n');
    expect([a1, a2, b1].map((c) => c.greeting?.code)).toEqual([220, 220, 220]);
    expect(await metric('smtp_gateway_limit_rejections_total{reason="connections_per_ip"}')).toBe(before + 1);
    const connections = gw.logs().filter((l) => l['msg'] === 'connection').map((l) => l['remoteAddress']);
    expect(connections.slice(-3)).toEqual(['127.0.0.2', '127.0.0.2', '127.0.0.3']);
    const refused = gw.logs().filter((l) => l['msg'] === 'too many connections from one address');
    expect(refused.at(-1)?.['remoteAddress']).toBe('127.0.0.2');
    for (const c of [a1, a2, b1]) c.close();
  });

  it('relays a message through HAProxy on 587 (STARTTLS) and on 465 (implicit TLS)', async () => {
    for (const [port, implicitTls] of [
      [haproxy.ports[0] as number, false],
      [haproxy.ports[1] as number, true],
    ] as const) {
      const options = { ...gw.client, port, localAddress: '127.0.0.3' };
      const login = { username: DEFAULT_USER.email, password: DEFAULT_USER.password };
      let client;
      if (implicitTls) {
        client = await greeted({ ...options, implicitTls });
        await client.ehlo();
        expect((await client.auth(login.username, login.password)).code).toBe(235);
      } else {
        client = await authenticated({ ...options, ...login });
      }
      const to = `via-${version}-${implicitTls ? 'implicit' : 'starttls'}@example.net`;
      const reply = await client.sendMail(DEFAULT_SENDER.email, [to], textMessage({ to }));
      expect(reply.code).toBe(250);
      client.close();
      const session = gw.logs().filter((l) => l['msg'] === 'connection').at(-1);
      expect(session).toMatchObject({ remoteAddress: '127.0.0.3', listener: implicitTls ? 'implicit' : 'starttls' });
    }
    expect(gw.fake.sent().map((s) => s.body.email)).toEqual(expect.arrayContaining([`via-${version}-starttls@example.net`, `via-${version}-implicit@example.net`]));
  });

  it('a trusted peer without a valid header is closed and counted in smtp_gateway_proxy_header_failures_total', async () => {
    const before = await metric('smtp_gateway_proxy_header_failures_total{reason="invalid"}');
    const socket = connect({ host: '127.0.0.1', port: gw.ports.smtp, localAddress: '127.0.0.1' });
    let data = '';
    socket.on('data', (chunk: Buffer) => (data += chunk.toString('latin1')));
    socket.once('connect', () => socket.write('EHLO direct.example\r\n'));
    await new Promise((resolve) => socket.once('close', resolve));
    expect(data).toBe('421 4.7.0 Invalid or missing PROXY protocol header, closing connection\r\n');
    expect(await metric('smtp_gateway_proxy_header_failures_total{reason="invalid"}')).toBe(before + 1);
  });
});

