/**
 * The accept path under a connection flood (issue 8, defect 1): connections
 * count per client from the moment of accept, on both listeners, so one
 * address cannot hold the slots that everyone else needs.
 */
import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { serverTlsSettings, silentLogger } from '@cakemail-smtp/tls';
import { greeted, testCertificates } from '@cakemail-smtp/testkit';
import { ConnectionSlots } from '../src/connection-slots.js';
import { AcceptingServer } from '../src/library/accepting-server.js';
import { eventually, startServer, type TestServer } from './helpers.js';

let t: TestServer | undefined;
let flood: Socket[] = [];
afterEach(async () => {
  for (const socket of flood) socket.destroy();
  flood = [];
  await t?.close();
  t = undefined;
});

/** A TLS record header announcing 512 bytes, then nothing: a handshake that never ends. */
const STALLED_HANDSHAKE = Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00]);

/**
 * Opens `n` connections from `localAddress`, each sending the stalled
 * handshake; resolves once every one is connected (or already refused).
 */
async function openFlood(port: number, localAddress: string, n: number): Promise<Socket[]> {
  const sockets = await Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<Socket>((resolve) => {
          const socket = connect({ host: '127.0.0.1', port, localAddress });
          socket.on('error', () => {});
          socket.on('data', (chunk: Buffer) => received.set(socket, (received.get(socket) ?? '') + chunk.toString('latin1')));
          socket.once('connect', () => {
            socket.write(STALLED_HANDSHAKE);
            resolve(socket);
          });
          socket.once('close', () => resolve(socket));
        }),
    ),
  );
  flood.push(...sockets);
  return sockets;
}

const refusedPerIp = (server: TestServer) => server.rec.counts.get('limit:connections_per_ip') ?? 0;

describe('connection flood from one address', () => {
  it('465: pending handshakes count per IP from accept; a client from another address completes TLS and gets 220', async () => {
    t = await startServer({ limits: { maxConnections: 50, maxConnectionsPerIp: 5 } });
    const server = t;
    await openFlood(server.securePort, '127.0.0.2', 100);
    const victim = await greeted({ ...server.implicit, localAddress: '127.0.0.3' });
    expect(victim.greeting?.code).toBe(220);
    // Every flood connection over the per-IP limit was closed at accept and counted.
    await eventually(() => refusedPerIp(server) === 95);
    victim.close();
  });

  it('465: the slots come back when the flood goes away, or its handshakes time out', async () => {
    t = await startServer({ limits: { maxConnections: 50, maxConnectionsPerIp: 5, handshakeTimeoutMs: 1500 } });
    const server = t;
    const first = await openFlood(server.securePort, '127.0.0.2', 20);
    await eventually(() => refusedPerIp(server) === 15);
    for (const socket of first) socket.destroy();
    // The same address is served again: closing released its slots.
    const back = await retryGreeted({ ...server.implicit, localAddress: '127.0.0.2' });
    expect(back.greeting?.code).toBe(220);
    back.close();
    // Handshakes left open by the client: the handshake timeout closes them and frees their slots.
    await openFlood(server.securePort, '127.0.0.4', 5);
    await eventually(() => (server.rec.counts.get('tls_handshake_failure:timeout') ?? 0) >= 5, 15_000);
    const after = await retryGreeted({ ...server.implicit, localAddress: '127.0.0.4' });
    expect(after.greeting?.code).toBe(220);
    after.close();
  });

  it('587: connections count per IP from accept; the flood gets 421 4.7.0, another address gets 220', async () => {
    t = await startServer({ limits: { maxConnections: 50, maxConnectionsPerIp: 5 } });
    const server = t;
    const sockets = await openFlood(server.port, '127.0.0.2', 100);
    const victim = await greeted({ ...server.client, localAddress: '127.0.0.3' });
    expect(victim.greeting?.code).toBe(220);
    await eventually(() => refusedPerIp(server) === 95);
    // The refused ones were told why, as their greeting; the others were greeted.
    const told = (line: string) => sockets.filter((socket) => received.get(socket)?.startsWith(line)).length;
    await eventually(() => told('421 4.7.0 Too many connections from your address, try again later\r\n') === 95);
    await eventually(() => told('220 ') === 5);
    victim.close();
  });

  it('MAX_CONNECTIONS counts both listeners together', async () => {
    t = await startServer({ limits: { maxConnections: 3, maxConnectionsPerIp: 2 } });
    const server = t;
    await openFlood(server.securePort, '127.0.0.2', 2);
    const a = await greeted({ ...server.client, localAddress: '127.0.0.3' });
    const b = await greeted({ ...server.client, localAddress: '127.0.0.4' });
    expect(a.greeting?.code).toBe(220);
    expect(b.greeting?.raw).toBe('421 4.7.0 Too many connections, try again later\r\n');
    expect(server.rec.counts.get('limit:connections')).toBe(1);
    a.close();
  });

  it('refuses a per-IP limit that would let one address take every connection', async () => {
    await expect(startServer({ limits: { maxConnections: 10, maxConnectionsPerIp: 10 } })).rejects.toThrow(/maxConnectionsPerIp/);
  });
});

describe('greeting at accept', () => {
  it('writes the greeting while the accept is handled, not on a later turn of the event loop', async () => {
    const certs = await testCertificates();
    const server = new AcceptingServer(
      {
        ...serverTlsSettings,
        key: certs.key,
        cert: certs.cert,
        name: 'gateway.test',
        logger: false,
        disableReverseLookup: true,
        closeTimeout: 500,
        handshakeTimeout: 10_000,
        maxJunkCommands: 10,
        sessionMaxMs: 0,
        maxReplyWaitMs: 0,
        hooks: { handshakeTimeout: () => {}, reset: () => {}, limit: () => {} },
        onConnect: (_session, callback) => callback(),
      },
      {
        listener: 'starttls',
        slots: new ConnectionSlots({ maxConnections: 0, maxConnectionsPerIp: 0 }),
        trustedProxies: undefined,
        proxyTimeoutMs: 10_000,
        logger: silentLogger,
        count: () => {},
      },
    );
    // Runs right after the server's own 'connection' listener, in the same turn of the event loop.
    const writtenAtAccept: number[] = [];
    server.server.on('connection', (socket: Socket) => writtenAtAccept.push(socket.bytesWritten));
    server.server.listen(0, '127.0.0.1');
    await once(server.server, 'listening');
    const client = await greeted({ port: (server.server.address() as AddressInfo).port });
    expect(client.greeting?.raw).toMatch(/^220 gateway\.test ESMTP/);
    expect(writtenAtAccept).toEqual([client.greeting?.raw.length]);
    client.close();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
});

/** greeted(), retried while the server may still be releasing slots. */
async function retryGreeted(options: Parameters<typeof greeted>[0]): Promise<Awaited<ReturnType<typeof greeted>>> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      const client = await greeted(options);
      if (client.greeting?.code === 220 || Date.now() > deadline) return client;
      client.close();
    } catch (err) {
      if (Date.now() > deadline) throw err;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** What each flood socket received. */
const received = new WeakMap<Socket, string>();
