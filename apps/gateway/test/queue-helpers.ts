/**
 * Queue-mode test plumbing: a redis-server with AOF on (`appendonly yes`,
 * `appendfsync always`, the setting the README asks for) in its own temporary
 * directory, a queue key, and the environment of a gateway in queue mode.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '@cakemail-smtp/testkit';

export interface AofRedis {
  readonly url: string;
  readonly dir: string;
  /** Every byte of the AOF files (and an RDB, if any) in the server's directory. */
  files(): Promise<Buffer>;
  stop(): Promise<void>;
}

/** A queue key ring of one key, as `openssl rand -base64 32` gives it. */
export const QUEUE_KEY = Buffer.from('0123456789abcdef0123456789abcdef').toString('base64');

/** The environment of a gateway in queue mode on `redis` (the lockout key is required with REDIS_URL). */
export function queueEnv(redis: AofRedis, mode: 'fallback' | 'always'): Record<string, string> {
  return {
    REDIS_URL: redis.url,
    AUTH_LOCKOUT_KEY: 'queue-mode-test-lockout-key-0123456789',
    QUEUE_MODE: mode,
    QUEUE_ENCRYPTION_KEY: QUEUE_KEY,
    QUEUE_RETRY_BASE_MS: '200',
    QUEUE_RETRY_MAX_MS: '1000',
  };
}

function pings(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket: Socket = connect(port, '127.0.0.1');
    let data = '';
    const done = (ok: boolean): void => {
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

async function readAll(dir: string): Promise<Buffer> {
  const parts: Buffer[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) parts.push(await readFile(join(entry.parentPath, entry.name)));
  }
  return Buffer.concat(parts);
}

export async function startAofRedis(): Promise<AofRedis> {
  const dir = await mkdtemp(join(tmpdir(), 'gw-queue-redis-'));
  for (let attempt = 1; attempt <= 3; attempt++) {
    const port = await freePort();
    const child: ChildProcess = spawn(
      process.env['REDIS_SERVER_BIN'] ?? '/usr/bin/redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'yes', '--appendfsync', 'always'],
      { stdio: 'ignore' },
    );
    const killOnExit = (): void => void child.kill('SIGKILL');
    process.once('exit', killOnExit);
    const deadline = Date.now() + 15_000;
    while (child.exitCode === null && Date.now() < deadline && !(await pings(port))) await new Promise((r) => setTimeout(r, 50));
    if (child.exitCode !== null || !(await pings(port))) {
      process.removeListener('exit', killOnExit);
      child.kill('SIGKILL');
      continue;
    }
    return {
      url: `redis://127.0.0.1:${port}`,
      dir,
      files: () => readAll(dir),
      async stop() {
        process.removeListener('exit', killOnExit);
        if (child.exitCode === null && child.signalCode === null) {
          const exited = once(child, 'exit');
          child.kill('SIGKILL');
          await exited;
        }
        await rm(dir, { recursive: true, force: true });
      },
    };
  }
  throw new Error('redis-server did not start');
}

/** Polls `check` until it is true; generous by default, for a loaded machine. */
export async function eventually(check: () => boolean | Promise<boolean>, timeoutMs = 60_000, what = 'condition'): Promise<void> {
  const start = Date.now();
  while (!(await check())) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
