/**
 * The queue-mode scenario's Redis: its own redis-server on a free port, with
 * the persistence README.md "Queue mode" asks for (`appendonly yes`,
 * `appendfsync everysec`, `maxmemory-policy noeviction`), in a temporary
 * directory removed by stop(). Never a shared REDIS_URL: the bench measures
 * the gateway on the settings it documents.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '@cakemail-smtp/testkit';

export interface AofRedis {
  readonly url: string;
  stop(): Promise<void>;
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

export async function startAofRedis(): Promise<AofRedis> {
  const dir = await mkdtemp(join(tmpdir(), 'bench-redis-'));
  for (let attempt = 1; attempt <= 3; attempt++) {
    const port = await freePort();
    const child: ChildProcess = spawn(
      process.env['REDIS_SERVER_BIN'] ?? '/usr/bin/redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'yes', '--appendfsync', 'everysec', '--maxmemory-policy', 'noeviction'],
      { stdio: 'ignore' },
    );
    const killOnExit = (): void => void child.kill('SIGKILL');
    process.once('exit', killOnExit);
    const deadline = Date.now() + 15_000;
    while (child.exitCode === null && Date.now() < deadline && !(await pings(port))) await new Promise((r) => setTimeout(r, 50));
    if (child.exitCode === null && (await pings(port))) {
      return {
        url: `redis://127.0.0.1:${port}`,
        async stop() {
          process.removeListener('exit', killOnExit);
          if (child.exitCode === null && child.signalCode === null) {
            const exited = once(child, 'exit');
            child.kill('SIGTERM');
            await exited;
          }
          await rm(dir, { recursive: true, force: true });
        },
      };
    }
    process.removeListener('exit', killOnExit);
    child.kill('SIGKILL');
  }
  await rm(dir, { recursive: true, force: true });
  throw new Error('redis-server did not start');
}
