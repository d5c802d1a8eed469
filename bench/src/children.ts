/**
 * Child processes, each pinned to a core with `taskset` when it exists, each stopped at the end
 * or on failure: SIGTERM, then SIGKILL after a grace period.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import type { ChildMessage, ParentMessage } from './ipc.js';

const live = new Set<ChildProcess>();

let tasksetWorks: boolean | undefined;

/** The cores used: the servers on one, the load (and the fake upstream) on another. */
export function pinning(): { readonly server: number; readonly load: number } | undefined {
  if (availableParallelism() < 2) return undefined;
  tasksetWorks ??= spawnSync('taskset', ['-c', '0', 'true']).status === 0;
  return tasksetWorks ? { server: 1, load: 0 } : undefined;
}

/** Pins this process (every thread) to a core; false when it cannot. */
export function pinSelf(core: number): boolean {
  return spawnSync('taskset', ['-a', '-p', '-c', String(core), String(process.pid)], { stdio: 'ignore' }).status === 0;
}

export interface Child {
  readonly name: string;
  readonly pid: number;
  readonly port: number;
  readonly url: string | undefined;
  /** Sends a message and waits for its ack. */
  request(message: ParentMessage): Promise<unknown>;
  /** SIGTERM, then SIGKILL after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
}

export interface StartOptions {
  readonly name: string;
  /** The module in dist/, e.g. `gateway-child.js`. */
  readonly script: string;
  readonly env: NodeJS.ProcessEnv;
  readonly core: number | undefined;
  readonly nodeArgs?: readonly string[];
  readonly readyTimeoutMs?: number;
}

export function startChild(options: StartOptions): Promise<Child> {
  const script = fileURLToPath(new URL(options.script, import.meta.url));
  const nodeArgv = ['--enable-source-maps', ...(options.nodeArgs ?? []), script];
  const [command, args] =
    options.core === undefined ? [process.execPath, nodeArgv] : ['taskset', ['-c', String(options.core), process.execPath, ...nodeArgv]];
  const child = spawn(command, args, { env: options.env, stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
  live.add(child);
  let stderr = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (data: string) => {
    stderr = (stderr + data).slice(-4000);
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  void exited.then(() => live.delete(child));

  let nextId = 1;
  const waiting = new Map<number, (value: unknown) => void>();
  let stopping = false;

  let ready = false;
  return new Promise<Child>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${options.name}: not ready after ${options.readyTimeoutMs ?? 20_000} ms\n${stderr}`));
    }, options.readyTimeoutMs ?? 20_000);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`${options.name}: could not start: ${err.message}`));
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      if (stopping) return;
      const error = new Error(`${options.name} exited unexpectedly (code ${code}, signal ${signal})\n${stderr}`);
      // Before 'ready' the start fails (its caller decides); after it, the run is broken.
      if (ready) onUnexpectedExit?.(error);
      else reject(error);
    });
    child.on('message', (message: ChildMessage) => {
      if (message.type === 'ack') {
        waiting.get(message.id)?.(message.value);
        waiting.delete(message.id);
        return;
      }
      clearTimeout(timer);
      ready = true;
      resolve({
        name: options.name,
        pid: child.pid ?? 0,
        port: message.port,
        url: message.url,
        request(request) {
          const id = nextId++;
          return new Promise((done) => {
            waiting.set(id, done);
            child.send({ ...request, id });
          });
        },
        async stop(graceMs = 5000) {
          if (child.exitCode !== null || child.signalCode !== null) return;
          stopping = true;
          child.kill('SIGTERM');
          const killer = setTimeout(() => child.kill('SIGKILL'), graceMs);
          await exited;
          clearTimeout(killer);
        },
      });
    });
  });
}

let onUnexpectedExit: ((error: Error) => void) | undefined;

/** Called when a child dies while it should be running: the run is broken. */
export function onChildCrash(handler: (error: Error) => void): void {
  onUnexpectedExit = handler;
}

/** Kills every child still running (SIGKILL), synchronously: for exit paths. */
export function killAll(): void {
  for (const child of live) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
}

export function liveChildren(): number {
  return [...live].filter((child) => child.exitCode === null && child.signalCode === null).length;
}
