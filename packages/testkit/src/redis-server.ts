/**
 * Throwaway redis-servers for tests, each its own process on a free port:
 * startRedisServer() without persistence; startPersistentRedisServer() with AOF
 * on in a temporary directory (the queue's setting). With REDIS_URL set,
 * testRedis() uses that server instead and stop() leaves it alone (tests then
 * keep to their own key prefixes).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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

/** A redis-server that keeps what it acknowledged: AOF on, in its own temporary directory. */
export interface PersistentRedis extends TestRedis {
  /** The server's directory: its AOF files are under it. */
  readonly dir: string;
  /** Every byte of the files in that directory (the AOF, an RDB if any). */
  files(): Promise<Buffer>;
  /** SIGKILL the server, then start it again on the same port from the same files. */
  crashAndRestart(): Promise<void>;
}

export interface PersistentRedisOptions {
  /** `always` (the default): on disk before each reply; `everysec`: Redis's default. */
  readonly appendfsync?: 'always' | 'everysec';
  /** `maxmemory-policy`; the server's default (`noeviction`) when absent. */
  readonly maxmemoryPolicy?: string;
}

/**
 * Starts redis-server with `appendonly yes` (the queue's production setting) in a temporary
 * directory, removed by stop(); resolves once it answers PING (not while it loads its AOF).
 */
export async function startPersistentRedisServer(options: PersistentRedisOptions = {}): Promise<PersistentRedis> {
  const dir = await mkdtemp(join(tmpdir(), 'test-redis-'));
  const args = (port: number) => [
    '--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '',
    '--appendonly', 'yes', '--appendfsync', options.appendfsync ?? 'always',
    ...(options.maxmemoryPolicy === undefined ? [] : ['--maxmemory-policy', options.maxmemoryPolicy]),
  ];
  const spawnOn = async (port: number): Promise<ChildProcess | undefined> => {
    const child = spawn(binary, args(port), { stdio: 'ignore' });
    child.once('error', () => undefined);
    const deadline = Date.now() + 15_000;
    while (child.exitCode === null && Date.now() < deadline) {
      if (await pings(port)) return child;
      await new Promise((r) => setTimeout(r, 50));
    }
    await stopProcess(child);
    return undefined;
  };
  for (let attempt = 1; attempt <= 3; attempt++) {
    const port = await freePort();
    let child = await spawnOn(port);
    if (!child) continue; // the port may have been taken between freePort() and the bind
    // If the test process exits without afterAll (a crash), take the server with it.
    const killOnExit = () => child?.kill('SIGKILL');
    process.on('exit', killOnExit);
    return {
      url: `redis://127.0.0.1:${port}`,
      dir,
      files: () => readAll(dir),
      async crashAndRestart() {
        if (child && child.exitCode === null && child.signalCode === null) {
          const exited = once(child, 'exit');
          child.kill('SIGKILL');
          await exited;
        }
        child = await spawnOn(port);
        if (!child) throw new Error(`redis-server did not restart on port ${port}`);
      },
      async stop() {
        process.removeListener('exit', killOnExit);
        if (child) await stopProcess(child);
        await rm(dir, { recursive: true, force: true });
      },
    };
  }
  await rm(dir, { recursive: true, force: true });
  throw new Error('redis-server did not start');
}

async function readAll(dir: string): Promise<Buffer> {
  const parts: Buffer[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) parts.push(await readFile(join(entry.parentPath, entry.name)));
  }
  return Buffer.concat(parts);
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
