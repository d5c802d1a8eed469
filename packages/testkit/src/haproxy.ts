/**
 * A real HAProxy (Debian's `haproxy`) in TCP mode in front of a server, for
 * PROXY protocol tests: one frontend per route on a free loopback port, each
 * forwarding to `target` with `send-proxy` (v1), `send-proxy-v2` or nothing.
 * HAProxy connects to the target from 127.0.0.1. stop() ends it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './ports.js';

export interface HaproxyRoute {
  /** Port on 127.0.0.1 to forward to. */
  readonly target: number;
  /** `v1`: send-proxy; `v2`: send-proxy-v2; `none`: plain forwarding. */
  readonly proxy: 'v1' | 'v2' | 'none';
}

export interface Haproxy {
  /** The frontend port of each route, in order. */
  readonly ports: readonly number[];
  /** The generated configuration, for failure messages. */
  readonly config: string;
  stop(): Promise<void>;
}

const binary = process.env['HAPROXY_BIN'] ?? '/usr/sbin/haproxy';


function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

function render(routes: readonly HaproxyRoute[], ports: readonly number[], readyPort: number): string {
  const lines = [
    'global',
    '  maxconn 4096',
    '  nbthread 1',
    'defaults',
    '  mode tcp',
    '  timeout connect 5s',
    '  timeout client 120s',
    '  timeout server 120s',
    // Answers the readiness probe without forwarding it anywhere.
    'frontend ready',
    `  bind 127.0.0.1:${readyPort}`,
    '  tcp-request connection reject',
  ];
  routes.forEach((route, i) => {
    const send = route.proxy === 'v1' ? ' send-proxy' : route.proxy === 'v2' ? ' send-proxy-v2' : '';
    lines.push(`frontend f${i}`, `  bind 127.0.0.1:${ports[i]}`, `  default_backend b${i}`);
    lines.push(`backend b${i}`, `  server s${i} 127.0.0.1:${route.target}${send}`);
  });
  return `${lines.join('\n')}\n`;
}

async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
  await exited;
  clearTimeout(timer);
}

/** Starts HAProxy and resolves once it listens. */
export async function startHaproxy(routes: readonly HaproxyRoute[]): Promise<Haproxy> {
  const dir = await mkdtemp(join(tmpdir(), 'haproxy-'));
  for (let attempt = 1; ; attempt++) {
    const ports = await Promise.all(routes.map(() => freePort()));
    const readyPort = await freePort();
    const config = render(routes, ports, readyPort);
    const file = join(dir, 'haproxy.cfg');
    await writeFile(file, config);
    const child = spawn(binary, ['-db', '-f', file], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const killOnExit = () => child.kill('SIGKILL');
    process.once('exit', killOnExit);
    const stop = async () => {
      process.removeListener('exit', killOnExit);
      await stopProcess(child);
      await rm(dir, { recursive: true, force: true });
    };
    let failure: Error | undefined;
    child.once('error', (err) => (failure = err));
    const deadline = Date.now() + 10_000;
    while (!failure && child.exitCode === null && Date.now() < deadline) {
      if (await accepts(readyPort)) return { ports, config, stop };
      await new Promise((r) => setTimeout(r, 50));
    }
    await stopProcess(child);
    // A port may have been taken between freePort() and the bind: try others.
    if (attempt >= 3 || failure) {
      await rm(dir, { recursive: true, force: true });
      throw failure ?? new Error(`haproxy did not start: ${stderr.trim()}\n${config}`);
    }
  }
}
