/**
 * The built command line, as an operator runs it: a bad variable exits
 * non-zero naming it; `start` serves and exits cleanly on SIGTERM.
 */
import { spawn } from 'node:child_process';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { greeted } from '@cakemail-smtp/testkit';

const main = fileURLToPath(new URL('../dist/main.js', import.meta.url));

function runCli(args: string[], env: Record<string, string>) {
  const child = spawn(process.execPath, [main, ...args], { env: { PATH: process.env['PATH'] ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, exited, output: () => out };
}

async function waitFor(check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const start = Date.now();
  while (!check()) {
    if (Date.now() - start > timeoutMs) throw new Error('timed out');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('smtp-gateway command line', () => {
  it('exits 1 and names the variable when the configuration is invalid', async () => {
    const run = runCli(['start'], { SMTP_PORT: 'not-a-port' });
    expect(await run.exited).toBe(1);
    expect(run.output()).toMatch(/SMTP_PORT: .*"not-a-port"/);
  });

  it('exits 1 naming both variables when SHUTDOWN_TIMEOUT_MS cannot wait for a relay (UPSTREAM_DEADLINE_MS)', async () => {
    const run = runCli(['start'], { SHUTDOWN_TIMEOUT_MS: '30000', UPSTREAM_DEADLINE_MS: '60000' });
    expect(await run.exited).toBe(1);
    expect(run.output()).toContain('SHUTDOWN_TIMEOUT_MS: must be at least UPSTREAM_DEADLINE_MS (30000 < 60000)');
  });

  it('exits 1 naming both variables when REDIS_URL is set without AUTH_LOCKOUT_KEY, and shows neither secret', async () => {
    const run = runCli(['start'], { REDIS_URL: 'redis://:hunter2-redis-password@127.0.0.1:1' });
    expect(await run.exited).toBe(1);
    expect(run.output()).toContain('AUTH_LOCKOUT_KEY: required when REDIS_URL is set');
    expect(run.output()).not.toContain('hunter2');
    const short = runCli(['start'], { AUTH_LOCKOUT_KEY: 'short-secret-key' });
    expect(await short.exited).toBe(1);
    expect(short.output()).toContain('AUTH_LOCKOUT_KEY: must be at least 32 bytes');
    expect(short.output()).not.toContain('short-secret-key');
  });

  it('exits 1 naming QUEUE_MODE and what it needs when queue mode has no REDIS_URL or QUEUE_ENCRYPTION_KEY, and shows no key', async () => {
    const key = Buffer.alloc(32, 3).toString('base64');
    const run = runCli(['start'], { QUEUE_MODE: 'fallback' });
    expect(await run.exited).toBe(1);
    expect(run.output()).toContain('REDIS_URL: required when QUEUE_MODE=fallback');
    expect(run.output()).toContain('QUEUE_ENCRYPTION_KEY: required when QUEUE_MODE=fallback');
    const keyed = runCli(['start'], { QUEUE_MODE: 'always', QUEUE_ENCRYPTION_KEY: key });
    expect(await keyed.exited).toBe(1);
    expect(keyed.output()).toContain('REDIS_URL: required when QUEUE_MODE=always');
    expect(keyed.output()).not.toContain('QUEUE_ENCRYPTION_KEY');
    expect(keyed.output()).not.toContain(key);
    const bad = runCli(['start'], { QUEUE_ENCRYPTION_KEY: `a:${key},b:${key.slice(0, 20)}` });
    expect(await bad.exited).toBe(1);
    expect(bad.output()).toContain('QUEUE_ENCRYPTION_KEY: must be a key ring');
    expect(bad.output()).toContain('key 2');
    expect(bad.output()).not.toContain(key.slice(0, 20));
  });

  it('exits 1 naming the path when the key does not match the certificate', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'gw-cli-'));
    const { generateSelfSigned } = await import('@cakemail-smtp/tls');
    const { writeFile } = await import('node:fs/promises');
    const a = await generateSelfSigned({ hostname: 'a.test' });
    const b = await generateSelfSigned({ hostname: 'b.test' });
    await writeFile(join(dir, 'tls.crt'), a.cert);
    await writeFile(join(dir, 'tls.key'), b.key);
    const run = runCli(['start'], {
      TLS_CERT_PATH: join(dir, 'tls.crt'),
      TLS_KEY_PATH: join(dir, 'tls.key'),
      SMTP_PORT: '0',
      SMTPS_PORT: '0',
      OPS_PORT: '0',
      SMTP_HOST: '127.0.0.1',
    });
    expect(await run.exited).toBe(1);
    expect(run.output()).toContain(`TLS key at ${join(dir, 'tls.key')} does not match the certificate`);
  });

  it('starts, generates a development certificate with a warning, serves, and exits 0 on SIGTERM', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'gw-cli-'));
    const run = runCli(['start'], {
      TLS_CERT_PATH: join(dir, 'tls', 'tls.crt'),
      TLS_KEY_PATH: join(dir, 'tls', 'tls.key'),
      SMTP_HOST: '127.0.0.1',
      OPS_HOST: '127.0.0.1',
      SMTP_PORT: '0',
      SMTPS_PORT: '0',
      OPS_PORT: '0',
      SMTP_HOSTNAME: 'gw.test',
    });
    await waitFor(() => run.output().includes('"gateway ready"'));
    const ready = JSON.parse(run.output().split('\n').find((l) => l.includes('"gateway ready"')) ?? '{}') as { smtpPort: number };
    expect(run.output()).toMatch(/"level":"warn".*self-signed one, for development only/);
    const client = await greeted({ port: ready.smtpPort });
    expect(client.greeting?.text).toBe('gw.test ESMTP Cakemail SMTP gateway');
    client.close();
    run.child.kill('SIGTERM');
    expect(await run.exited).toBe(0);
    expect(run.output()).toContain('"stopped"');
    // every line is JSON
    for (const line of run.output().trim().split('\n')) expect(() => JSON.parse(line)).not.toThrow();
  });
});
