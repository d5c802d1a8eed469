import { afterEach, describe, expect, it } from 'vitest';
import { killAll, liveChildren, onChildCrash, startChild, type Child } from '../src/children.js';

const FIXTURE = '../test/fixtures/child.mjs'; // relative to src/children.ts

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

async function until(check: () => boolean, ms = 10_000): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (check()) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return check();
}

const start = (env: Record<string, string> = {}, readyTimeoutMs?: number): Promise<Child> =>
  startChild({ name: 'test child', script: FIXTURE, env: { PATH: process.env['PATH'] ?? '', ...env }, core: undefined, ...(readyTimeoutMs ? { readyTimeoutMs } : {}) });

afterEach(() => {
  killAll();
  onChildCrash(() => {});
});

describe('bench child processes', () => {
  it('starts a child, talks to it over IPC and stops it', async () => {
    const child = await start();
    expect(child.port).toBe(4321);
    expect(await child.request({ type: 'delay', id: 0, ms: 50 })).toEqual({ delayed: 50 });
    expect(liveChildren()).toBe(1);
    await child.stop();
    expect(alive(child.pid)).toBe(false);
    expect(liveChildren()).toBe(0);
  });

  it('kills a child that ignores SIGTERM once the grace period is over', async () => {
    const child = await start({ IGNORE_TERM: '1' });
    await child.stop(300);
    expect(alive(child.pid)).toBe(false);
  });

  it('reports a child that dies after it was ready as a broken run', async () => {
    const crashes: Error[] = [];
    onChildCrash((error) => crashes.push(error));
    await start({ CRASH_AFTER_MS: '100' });
    expect(await until(() => crashes.length > 0)).toBe(true);
    expect(crashes[0]?.message).toMatch(/test child exited unexpectedly \(code 3/);
  });

  it('a child that dies before it is ready fails its start, not the run', async () => {
    const crashes: Error[] = [];
    onChildCrash((error) => crashes.push(error));
    await expect(start({ EXIT_BEFORE_READY: '1' })).rejects.toThrow(/exited unexpectedly \(code 2/);
    expect(crashes).toEqual([]);
  });

  it('kills a child that is not ready in time', async () => {
    await expect(start({ NEVER_READY: '1' }, 500)).rejects.toThrow(/not ready after 500 ms/);
    expect(await until(() => liveChildren() === 0)).toBe(true);
  });

  it('killAll stops every child still running', async () => {
    const children = await Promise.all([start(), start({ IGNORE_TERM: '1' }), start()]);
    expect(liveChildren()).toBe(3);
    killAll();
    expect(await until(() => children.every((c) => !alive(c.pid)))).toBe(true);
    expect(await until(() => liveChildren() === 0)).toBe(true);
  });
});
