import { X509Certificate } from 'node:crypto';
import { connect as netConnect } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions, type TLSSocket } from 'node:tls';
import { afterEach, describe, expect, it } from 'vitest';
import { createCertificateReloader } from '@cakemail-smtp/tls';
import { createMailer, ehlo, freshCertificates, greeted, SmtpTestClient, startTls } from '@cakemail-smtp/testkit';
import { PASSWORD, USER, eventually, staticTls, startServer, type TestServer } from './helpers.js';

let t: TestServer | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

/** Implicit TLS handshake with the given client options; resolves with the socket or the error. */
function handshake465(port: number, options: ConnectionOptions): Promise<TLSSocket | Error> {
  return new Promise((resolve) => {
    const socket = tlsConnect({ host: '127.0.0.1', port, rejectUnauthorized: false, ...options });
    socket.once('secureConnect', () => resolve(socket));
    socket.once('error', (err) => resolve(err));
  });
}

/** STARTTLS then a handshake with the given client options. */
async function handshake587(port: number, options: ConnectionOptions): Promise<TLSSocket | Error> {
  const client = await ehlo({ port });
  try {
    await client.startTls({ rejectUnauthorized: false, ...options });
    return client.socket as TLSSocket;
  } catch (err) {
    client.close();
    return err as Error;
  }
}

const handshakes = [
  ['587 (STARTTLS)', (s: TestServer) => s.port, handshake587],
  ['465 (implicit)', (s: TestServer) => s.securePort, async (port: number, o: ConnectionOptions) => handshake465(port, o)],
] as const;

describe.each(handshakes)('TLS on %s', (_name, portOf, shake) => {
  it.each(['TLSv1.2', 'TLSv1.3'] as const)('negotiates %s', async (version) => {
    t = await startServer();
    const socket = await shake(portOf(t), { minVersion: version, maxVersion: version });
    expect(socket).not.toBeInstanceOf(Error);
    expect((socket as TLSSocket).getProtocol()).toBe(version);
    expect((socket as TLSSocket).getCipher().name).toMatch(/GCM|CHACHA20/);
    (socket as TLSSocket).destroy();
  });

  it.each(['TLSv1', 'TLSv1.1'] as const)('refuses %s, counts it and keeps serving', async (version) => {
    t = await startServer();
    const server = t;
    const result = await shake(portOf(server), { minVersion: version, maxVersion: version, ciphers: 'DEFAULT@SECLEVEL=0' });
    expect(result).toBeInstanceOf(Error);
    await eventually(() => (server.rec.counts.get('tls_handshake_failure:protocol') ?? 0) === 1);
    const ok = await shake(portOf(server), {});
    expect(ok).not.toBeInstanceOf(Error);
    (ok as TLSSocket).destroy();
  });

  it.each(['AES128-GCM-SHA256', 'AES256-SHA', 'ECDHE-RSA-AES128-SHA', 'ECDHE-RSA-AES256-SHA384'])(
    'refuses the non-forward-secret or CBC suite %s on TLS 1.2',
    async (cipher) => {
      t = await startServer();
      const server = t;
      const result = await shake(portOf(server), { maxVersion: 'TLSv1.2', ciphers: `${cipher}@SECLEVEL=0` });
      expect(result).toBeInstanceOf(Error);
      await eventually(() => [...server.rec.counts.keys()].some((k) => k.startsWith('tls_handshake_failure:')));
    },
  );
});

describe('failed handshakes', () => {
  it('survives garbage and an HTTP request on the implicit-TLS port', async () => {
    t = await startServer({ limits: { handshakeTimeoutMs: 3000 } });
    const server = t;
    for (const payload of ['GET / HTTP/1.1\r\nHost: x\r\n\r\n', '\x16\x03\x01\x00\x05\x01\x00\x00\x01\x00', 'EHLO plain.test\r\n']) {
      const socket = netConnect(server.securePort, '127.0.0.1');
      socket.on('error', () => {});
      socket.resume(); // read, so the server's close is seen
      socket.write(payload);
      await new Promise((resolve) => socket.on('close', resolve));
    }
    await eventually(() => [...server.rec.counts].filter(([k]) => k.startsWith('tls_handshake_failure:')).reduce((n, [, v]) => n + v, 0) === 3);
    expect(server.rec.counts.get('tls_handshake_failure:timeout')).toBeUndefined();
    const client = await greeted(server.implicit);
    expect(client.greeting?.code).toBe(220);
    client.close();
  });

  it('closes a silent socket on 465 after the handshake timeout', async () => {
    t = await startServer({ limits: { handshakeTimeoutMs: 200, idleTimeoutMs: 60_000 } });
    const server = t;
    const socket = netConnect(server.securePort, '127.0.0.1');
    socket.resume();
    const started = Date.now();
    await new Promise((resolve) => socket.on('close', resolve));
    expect(Date.now() - started).toBeLessThan(5000); // far below the 60 s idle timeout
    await eventually(() => server.rec.counts.get('tls_handshake_failure:timeout') === 1);
  });

  it('closes a client that goes silent after STARTTLS', async () => {
    t = await startServer({ limits: { handshakeTimeoutMs: 200, idleTimeoutMs: 60_000 } });
    const server = t;
    const client = await ehlo(server.client);
    expect((await client.command('STARTTLS')).code).toBe(220);
    await client.closed(5000); // no ClientHello sent: dropped by the handshake timeout, not the 60 s idle one
    await eventually(() => server.rec.counts.get('tls_handshake_failure:timeout') === 1);
  });

  it('keeps the idle timeout after a completed STARTTLS handshake', async () => {
    t = await startServer({ limits: { handshakeTimeoutMs: 200, idleTimeoutMs: 60_000 } });
    const client = await startTls(t.client);
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect((await client.command('NOOP')).code).toBe(250);
    client.close();
  });
});

describe('certificate verification', () => {
  it('verifies for localhost with a TLS context that trusts the self-signed certificate', async () => {
    t = await startServer();
    const trusting = createMailer({ port: t.port, ca: t.ca, auth: { user: USER, pass: PASSWORD } });
    await expect(trusting.verify()).resolves.toBe(true);
    const socket = await handshake465(t.securePort, { ca: t.ca, servername: 'localhost', rejectUnauthorized: true });
    expect((socket as TLSSocket).authorized).toBe(true);
    (socket as TLSSocket).destroy();
  });

  it('is refused by a client that does not trust it', async () => {
    t = await startServer();
    const distrusting = createMailer({ port: t.port, ca: (await freshCertificates()).cert, auth: { user: USER, pass: PASSWORD } });
    await expect(distrusting.verify()).rejects.toThrow(/self[- ]signed|unable to verify|certificate/i);
  });
});

describe('rotation', () => {
  it('gives new connections the new certificate and leaves open sessions alone', async () => {
    const first = await freshCertificates('localhost');
    const second = await freshCertificates('localhost');
    const { copyFile } = await import('node:fs/promises');
    const reloader = await createCertificateReloader({ certPath: first.certPath, keyPath: first.keyPath, pollIntervalMs: 0 });
    t = await startServer({ tls: reloader });
    const fingerprint = (s: TLSSocket) => new X509Certificate(s.getPeerCertificate(true).raw).fingerprint256;

    const open = await startTls({ ...t.client, tls: { ca: [first.ca, second.ca], servername: 'localhost' } });
    const before = fingerprint(open.socket as TLSSocket);
    expect(before).toBe(new X509Certificate(first.cert).fingerprint256);

    await copyFile(second.keyPath, first.keyPath);
    await copyFile(second.certPath, first.certPath);
    expect(await reloader.check()).toBe(true);

    const fresh465 = (await handshake465(t.securePort, {})) as TLSSocket;
    expect(fingerprint(fresh465)).toBe(new X509Certificate(second.cert).fingerprint256);
    fresh465.destroy();
    const fresh587 = (await handshake587(t.port, {})) as TLSSocket;
    expect(fingerprint(fresh587)).toBe(new X509Certificate(second.cert).fingerprint256);
    fresh587.destroy();

    // the session opened before the rotation still works, on its old certificate
    expect((await open.auth(USER, PASSWORD)).code).toBe(235);
    expect(fingerprint(open.socket as TLSSocket)).toBe(before);
    open.close();
    reloader.close();
  });

  it('keeps serving when a provider announces a change', async () => {
    const certs = await freshCertificates();
    const tls = staticTls(certs.cert, certs.key);
    t = await startServer({ tls });
    const other = await freshCertificates();
    tls.set(other.cert, other.key);
    const socket = (await handshake465(t.securePort, {})) as TLSSocket;
    expect(new X509Certificate(socket.getPeerCertificate(true).raw).fingerprint256).toBe(new X509Certificate(other.cert).fingerprint256);
    socket.destroy();
  });
});

describe('many connections', () => {
  it('runs many sequential and concurrent TLS sessions without leaking sessions or sockets', async () => {
    t = await startServer({ limits: { maxConnectionsPerIp: 100 } });
    const server = t;
    const send = (port: number, secure: boolean) =>
      createMailer({ port, secure, ca: server.ca, auth: { user: USER, pass: PASSWORD } }).sendMail({
        from: 'a@example.test',
        to: 'b@example.test',
        subject: 'load',
        text: 'x',
      });
    for (let i = 0; i < 20; i++) await send(i % 2 ? server.port : server.securePort, i % 2 === 0);
    await Promise.all(Array.from({ length: 40 }, (_, i) => send(i % 2 ? server.port : server.securePort, i % 2 === 0)));
    const pooled = createMailer({ port: server.port, ca: server.ca, auth: { user: USER, pass: PASSWORD }, pool: { maxConnections: 5 } });
    await Promise.all(Array.from({ length: 40 }, () => pooled.sendMail({ from: 'a@example.test', to: 'b@example.test', text: 'x' })));
    pooled.close();
    expect(server.rec.delivered).toHaveLength(100);
    await eventually(() => server.server.connections === 0 && server.rec.open === 0);
    // raw sessions opened and dropped in the middle of the protocol are released too
    const dropped = await Promise.all(Array.from({ length: 20 }, () => SmtpTestClient.connect(server.client)));
    for (const client of dropped) client.close();
    await eventually(() => server.server.connections === 0 && server.rec.open === 0);
  });
});
