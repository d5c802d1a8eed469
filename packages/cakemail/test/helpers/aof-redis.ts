// A redis-server with AOF on (appendfsync always) in its own temporary directory, as the queue
// needs it in production; stopped and removed by stop().
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { freePort } from '@cakemail-smtp/testkit';

export interface AofRedis {
  readonly url: string;
  /** The server's directory: its AOF files are under it. */
  readonly dir: string;
  stop(): Promise<void>;
}

export async function startAofRedis(): Promise<AofRedis> {
  const dir = await mkdtemp(join(tmpdir(), 'relay-queue-redis-'));
  for (let attempt = 1; attempt <= 3; attempt++) {
    const port = await freePort();
    const child: ChildProcess = spawn(
      process.env['REDIS_SERVER_BIN'] ?? '/usr/bin/redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'yes', '--appendfsync', 'always'],
      { stdio: 'ignore' },
    );
    const killOnExit = (): void => void child.kill('SIGKILL');
    process.once('exit', killOnExit);
    const stop = async (): Promise<void> => {
      process.removeListener('exit', killOnExit);
      if (child.exitCode === null && child.signalCode === null) {
        const exited = once(child, 'exit');
        child.kill('SIGTERM');
        await exited;
      }
      await rm(dir, { recursive: true, force: true });
    };
    if (await answers(port, child)) return { url: `redis://127.0.0.1:${port}`, dir, stop };
    process.removeListener('exit', killOnExit);
    child.kill('SIGKILL');
  }
  await rm(dir, { recursive: true, force: true });
  throw new Error('redis-server did not start');
}

async function answers(port: number, child: ChildProcess): Promise<boolean> {
  const probe = new Redis(`redis://127.0.0.1:${port}`, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  probe.on('error', () => undefined);
  const deadline = Date.now() + 10_000;
  try {
    while (child.exitCode === null && Date.now() < deadline) {
      try {
        await probe.connect();
        if ((await probe.ping()) === 'PONG') return true;
      } catch {
        probe.disconnect();
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    return false;
  } finally {
    probe.disconnect();
  }
}
