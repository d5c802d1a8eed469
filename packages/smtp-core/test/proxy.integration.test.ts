/**
 * PROXY protocol behind a real HAProxy (send-proxy and send-proxy-v2), and
 * the trust rules with raw sockets: only trusted peers may name the client,
 * and from them a valid header is required before anything else.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { connect, type Socket } from 'node:net';
import { greeted, startHaproxy, startTls, type Haproxy, SmtpTestClient } from '@cakemail-smtp/testkit';
import { createMemoryAuthLimiter } from '../src/auth-limiter/index.js';
import { PASSWORD, USER, eventually, startServer, testAuthLimits, type TestServer } from './helpers.js';

/** HAProxy and direct test sockets on 127.0.0.1 are the trusted balancer; clients use other loopback addresses. */
const TRUSTED = ['127.0.0.1/32', 'fd00::/8'];

let t: TestServer | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

const connectionLogs = (server: TestServer) =>
  server.rec.logs.filter((l) => l.msg === 'connection').map((l) => (l.obj as { remoteAddress?: string }).remoteAddress);

describe.each([
  ['send-proxy-v2', 'v2'],
  ['send-proxy', 'v1'],
] as const)('behind HAProxy with %s', (_name, version) => {
  let haproxy: Haproxy;
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer({ limits: { maxConnectionsPerIp: 2 }, proxyTrustedCidrs: TRUSTED });
    haproxy = await startHaproxy([
      { target: server.port, proxy: version },
      { target: server.securePort, proxy: version },
    ]);
  });
  afterAll(async () => {
    await haproxy?.stop();
    await server?.close();
  });

  it('each client has its own per-IP limit, and the logs name the clients', async () => {
    const via = { ...server.client, port: haproxy.ports[0] as number };
    const a1 = await greeted({ ...via, localAddress: '127.0.0.2' });
    const a2 = await greeted({ ...via, localAddress: '127.0.0.2' });
    const a3 = await greeted({ ...via, localAddress: '127.0.0.2' });
    const b1 = await greeted({ ...via, localAddress: '127.0.0.3' });
    expect([a1, a2, b1].map((c) => c.greeting?.code)).toEqual([220, 220, 220]);
    expect(a3.greeting?.raw).toBe('421 4.7.0 Too many connections from your address, try again later\r\n');
    // The session is the client's: a PROXY line from it is just a bad command.
    expect((await a1.command('PROXY TCP4 192.0.2.9 127.0.0.1 1111 587')).raw).toBe('500 5.5.2 Error: command not recognized\r\n');
    expect((await a1.ehlo()).lines[0]).toBe('gateway.test Nice to meet you, [127.0.0.2]');
    expect(connectionLogs(server)).toEqual(['127.0.0.2', '127.0.0.2', '127.0.0.3']);
    expect(server.rec.logs.some((l) => l.msg === 'too many connections from one address' && (l.obj as { remoteAddress?: string }).remoteAddress === '127.0.0.2')).toBe(true);
    expect(server.rec.sessions.map((s) => s.remoteAddress)).toEqual(['127.0.0.2', '127.0.0.2', '127.0.0.3']);
    for (const c of [a1, a2, b1]) c.close();
    await eventually(() => server.server.connections === 0);
  });

  it('465: the header comes before TLS, and the TLS session is the client\'s', async () => {
    server.rec.sessions.length = 0;
    const client = await greeted({ ...server.implicit, port: haproxy.ports[1] as number, localAddress: '127.0.0.3' });
    expect(client.greeting?.code).toBe(220);
    expect(server.rec.sessions.map((s) => [s.remoteAddress, s.listener])).toEqual([['127.0.0.3', 'implicit']]);
    client.close();
    await eventually(() => server.server.connections === 0);
  });
});

/** A raw connection from `localAddress` (127.0.0.1: the trusted balancer). */
function raw(port: number, localAddress = '127.0.0.1'): Promise<{ socket: Socket; text: () => string; closed: Promise<void> }> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, localAddress });
    let data = '';
    socket.on('data', (chunk: Buffer) => (data += chunk.toString('latin1')));
    const closed = new Promise<void>((done) => socket.once('close', () => done()));
    socket.once('error', reject);
    socket.once('connect', () => resolve({ socket, text: () => data, closed }));
  });
}

const V2_SIGNATURE = Buffer.from('0d0a0d0a000d0a515549540a', 'hex');

describe('PROXY trust rules', () => {
  it('an untrusted peer is served as itself; its PROXY line is a bad command', async () => {
    t = await startServer({ proxyTrustedCidrs: TRUSTED });
    const client = await greeted({ ...t.client, localAddress: '127.0.0.5' });
    expect(client.greeting?.code).toBe(220);
    expect((await client.command('PROXY TCP4 192.0.2.9 127.0.0.1 1111 587')).raw).toBe('500 5.5.2 Error: command not recognized\r\n');
    expect((await client.ehlo()).lines[0]).toBe('gateway.test Nice to meet you, [127.0.0.5]');
    expect(t.rec.sessions.map((s) => s.remoteAddress)).toEqual(['127.0.0.5']);
    client.close();
  });

  it('a trusted peer that sends something else is closed with 421 4.7.0 and counted', async () => {
    t = await startServer({ proxyTrustedCidrs: TRUSTED });
    const conn = await raw(t.port);
    conn.socket.write('EHLO client.example\r\n');
    await conn.closed;
    expect(conn.text()).toBe('421 4.7.0 Invalid or missing PROXY protocol header, closing connection\r\n');
    expect(t.rec.counts.get('proxy_header_failure:invalid')).toBe(1);
    expect(t.rec.sessions).toHaveLength(0);
  });

  it.each([
    ['a v1 line with a bad address', 'PROXY TCP4 999.1.1.1 127.0.0.1 1111 587\r\n'],
    ['a v1 line with mixed families', 'PROXY TCP4 ::1 127.0.0.1 1111 587\r\n'],
    ['a v1 line without addresses', 'PROXY TCP4\r\n'],
    ['a v1 line over 107 octets', `PROXY TCP4 ${'1'.repeat(120)}`],
    ['a v2 header with a bad version', Buffer.concat([V2_SIGNATURE, Buffer.from([0x31, 0x11, 0x00, 0x0c]), Buffer.alloc(12)])],
    ['a v2 header with an address shorter than its family', Buffer.concat([V2_SIGNATURE, Buffer.from([0x21, 0x11, 0x00, 0x04]), Buffer.alloc(4)])],
  ])('a trusted peer sending %s is closed and counted', async (_name, header) => {
    t = await startServer({ proxyTrustedCidrs: TRUSTED });
    const conn = await raw(t.port);
    conn.socket.write(header);
    await conn.closed;
    expect(conn.text()).toMatch(/^421 4\.7\.0 /);
    expect(t.rec.counts.get('proxy_header_failure:invalid')).toBe(1);
    expect(t.rec.sessions).toHaveLength(0);
  });

  it('a trusted peer that sends no header in time is closed and counted', async () => {
    t = await startServer({ proxyTrustedCidrs: TRUSTED, limits: { handshakeTimeoutMs: 300 } });
    const conn = await raw(t.port);
    await conn.closed;
    expect(conn.text()).toBe('421 4.7.0 Invalid or missing PROXY protocol header, closing connection\r\n');
    expect(t.rec.counts.get('proxy_header_failure:missing')).toBe(1);
  });

  it('a trusted peer that connects and leaves (a TCP health check) is not an error', async () => {
    t = await startServer({ proxyTrustedCidrs: TRUSTED });
    const server = t;
    const conn = await raw(server.port);
    conn.socket.end();
    await conn.closed;
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect([...server.rec.counts.keys()].filter((k) => k.startsWith('proxy_header_failure'))).toEqual([]);
    // Its slot is free again: a client through the balancer is served.
    const client = await viaHeader(server.port, 'PROXY TCP4 127.0.0.9 127.0.0.1 1111 587\r\n');
    expect(client.greeting?.code).toBe(220);
    client.close();
  });

  it.each([
    ['v2 LOCAL (a health check)', Buffer.concat([V2_SIGNATURE, Buffer.from([0x20, 0x00, 0x00, 0x00])])],
    ['v1 UNKNOWN', 'PROXY UNKNOWN\r\n'],
    ['v1 UNKNOWN with addresses', 'PROXY UNKNOWN ffff::1 ffff::2 65535 65535\r\n'],
  ])('%s: the connection is the balancer\'s own', async (_name, header) => {
    t = await startServer({ proxyTrustedCidrs: TRUSTED });
    const client = await viaHeader(t.port, header);
    expect(client.greeting?.code).toBe(220);
    expect(t.rec.sessions.map((s) => s.remoteAddress)).toEqual(['127.0.0.1']);
    client.close();
  });

  it('a v2 header with an IPv6 client: counted per /64', async () => {
    t = await startServer({ proxyTrustedCidrs: TRUSTED, limits: { maxConnectionsPerIp: 1 } });
    const v6 = (last: number) =>
      Buffer.concat([
        V2_SIGNATURE,
        Buffer.from([0x21, 0x21, 0x00, 0x24]),
        Buffer.from(`20010db8000000010000000000000${last.toString(16).padStart(3, '0')}`, 'hex'),
        Buffer.alloc(16),
        Buffer.from([0x04, 0x57, 0x02, 0x4b]),
      ]);
    const first = await viaHeader(t.port, v6(1));
    expect(first.greeting?.code).toBe(220);
    expect(t.rec.sessions.map((s) => s.remoteAddress)).toEqual(['2001:db8:0:1::1']);
    const sameSubnet = await viaHeader(t.port, v6(2));
    expect(sameSubnet.greeting?.raw).toBe('421 4.7.0 Too many connections from your address, try again later\r\n');
    first.close();
  });

  it('lockouts key on the client named by the header, not on the balancer', async () => {
    t = await startServer({ proxyTrustedCidrs: TRUSTED, authLimiter: createMemoryAuthLimiter({ ...testAuthLimits, ipLimit: 2 }) });
    const from = (ip: string) => startTls({ ...t!.client, localAddress: '127.0.0.1', prefix: `PROXY TCP4 ${ip} 127.0.0.1 1111 587\r\n` });
    const attacker = await from('192.0.2.66');
    expect((await attacker.auth(USER, 'wrong')).code).toBe(535);
    expect((await attacker.auth(USER, 'wrong')).code).toBe(535);
    expect((await attacker.auth(USER, PASSWORD)).raw).toBe('421 4.7.0 Too many failed authentication attempts, closing connection\r\n');
    const customer = await from('192.0.2.77');
    expect((await customer.auth(USER, PASSWORD)).code).toBe(235);
    customer.close();
    const again = await from('192.0.2.66');
    expect((await again.auth(USER, PASSWORD)).raw).toBe('454 4.7.0 Too many failed authentication attempts, try again later\r\n');
    again.close();
  });

  it('465: a PROXY header before TLS', async () => {
    t = await startServer({ proxyTrustedCidrs: TRUSTED });
    const client = await greeted({ ...t.implicit, localAddress: '127.0.0.1', prefix: 'PROXY TCP4 127.0.0.7 127.0.0.1 2222 465\r\n' });
    expect(client.greeting?.code).toBe(220);
    expect(t.rec.sessions.map((s) => [s.remoteAddress, s.remotePort, s.listener])).toEqual([['127.0.0.7', 2222, 'implicit']]);
    client.close();
  });

  it('is off without trusted CIDRs: a PROXY header from 127.0.0.1 is a bad command', async () => {
    t = await startServer();
    const client = await greeted(t.client);
    expect((await client.command('PROXY TCP4 192.0.2.9 127.0.0.1 1111 587')).code).toBe(500);
    expect(t.rec.sessions.map((s) => s.remoteAddress)).toEqual(['127.0.0.1']);
    client.close();
  });
});

/** A test client whose connection starts with `header`, from the trusted 127.0.0.1. */
function viaHeader(port: number, header: string | Buffer): Promise<SmtpTestClient> {
  return greeted({ port, localAddress: '127.0.0.1', prefix: header });
}
