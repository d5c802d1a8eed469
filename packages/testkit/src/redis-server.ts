/**
 * A throwaway redis-server for tests: its own process on a free port, no
 * persistence, stopped by stop(). With REDIS_URL set, that server is used
 * instead and stop() leaves it alone (tests then keep to their own key prefixes).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { freePort } from './ports.js';

export interface TestRedis {
  readonly url: string;
  stop(): Promise<void>;
}

const binary = process.env['REDIS_SERVER_BIN'] ?? '/usr/bin/redis-server';


/** True when something on host:port answers PING with +PONG. */
function pings(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket: Socket = connect(port, '127.0.0.1');
    let data = '';
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(500, () => done(false));
    socket.once('error', () => done(false));
    socket.on('data', (chunk: Buffer) => {
      data += chunk.toString('latin1');
      if (data.includes('\r\n')) done(data.startsWith('+PONG'));
    });
    socket.once('connect', () => socket.write('PING\r\n'));
  });
}

async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
  await exited;
  clearTimeout(timer);
}

/** Starts redis-server and resolves once it answers PING. */
export async function startRedisServer(): Promise<TestRedis> {
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const child = spawn(binary, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
      stdio: 'ignore',
    });
    // If the test process exits without afterAll (a crash), take the server with it.
    const killOnExit = () => child.kill('SIGKILL');
    process.once('exit', killOnExit);
    const stop = async () => {
      process.removeListener('exit', killOnExit);
      await stopProcess(child);
    };
    let failure: Error | undefined;
    child.once('error', (err) => (failure = err));
    const deadline = Date.now() + 10_000;
    while (!failure && child.exitCode === null && Date.now() < deadline) {
      if (await pings(port)) return { url: `redis://127.0.0.1:${port}`, stop };
      await new Promise((r) => setTimeout(r, 50));
    }
    await stop();
    // The port may have been taken between freePort() and the bind: try another.
    if (attempt >= 3 || failure) throw failure ?? new Error(`redis-server did not answer PING on port ${port}`);
  }
}

/** REDIS_URL when set, else a fresh redis-server. */
export async function testRedis(): Promise<TestRedis> {
  const url = process.env['REDIS_URL'];
  if (url) return { url, stop: async () => {} };
  return startRedisServer();
}

/**
 * A TCP proxy in front of Redis, to take Redis away without touching it:
 * cut() drops every connection and refuses new ones, hang() keeps connections
 * open but stops forwarding (a Redis that no longer answers), restore() undoes both.
 */
export interface RedisProxy {
  readonly url: string;
  cut(): Promise<void>;
  hang(): void;
  restore(): Promise<void>;
  close(): Promise<void>;
}

export async function startRedisProxy(targetUrl: string): Promise<RedisProxy> {
  const target = new URL(targetUrl);
  const targetPort = Number(target.port || 6379);
  const sockets = new Set<Socket>();
  let hanging = false;
  const server = createServer((client) => {
    const upstream = connect(targetPort, target.hostname);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => {});
    }
    client.on('data', (chunk: Buffer) => void (hanging || upstream.write(chunk)));
    upstream.on('data', (chunk: Buffer) => void (hanging || client.write(chunk)));
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  const url = new URL(targetUrl);
  url.hostname = '127.0.0.1';
  url.port = String(port);

  const stopListening = async () => {
    for (const s of sockets) s.destroy();
    if (server.listening) await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return {
    url: url.toString(),
    cut: stopListening,
    hang: () => {
      hanging = true;
    },
    restore: async () => {
      hanging = false;
      if (!server.listening) {
        server.listen(port, '127.0.0.1');
        await once(server, 'listening');
      }
    },
    close: stopListening,
  };
}
