/**
 * `smtp-gateway dev` as a developer uses it: the printed swaks command,
 * pasted as it is (ports aside), delivers a message through the embedded fake
 * Cakemail API, and the Cakemail id shows in the reply and the log.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';

const main = fileURLToPath(new URL('../dist/main.js', import.meta.url));

it('prints a swaks command that delivers, and logs the Cakemail id', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'gw-dev-'));
  const child = spawn(process.execPath, [main, 'dev'], {
    cwd: dir,
    env: { PATH: process.env['PATH'] ?? '', SMTP_PORT: '0', SMTPS_PORT: '0', OPS_PORT: '0', DEV_UPSTREAM_PORT: '0', NO_COLOR: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
  try {
    const start = Date.now();
    while (!/^ {2}swaks .*$/m.test(out)) {
      if (Date.now() - start > 15_000) throw new Error(`no swaks line in:\n${out}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(out).toContain('self-signed one, for development only');
    expect(out).toMatch(/SMTP \(STARTTLS\) {3}127\.0\.0\.1:\d+/);
    const command = (/^ {2}(swaks .*)$/m.exec(out) as RegExpExecArray)[1] as string;
    // the printed command, split as a shell would (it quotes only the Subject header)
    const args = command.match(/'[^']*'|\S+/g)!.slice(1).map((a) => a.replace(/^'|'$/g, ''));
    const swaks = await new Promise<string>((resolve) =>
      execFile('swaks', args, { timeout: 20_000 }, (_err, stdout, stderr) => resolve(`${stdout}${stderr}`)),
    );
    const id = /<~ {2}250 2\.0\.0 Ok: queued as ([0-9a-f-]{36})/.exec(swaks)?.[1];
    expect(id, swaks).toBeDefined();
    const logStart = Date.now();
    while (!out.includes(id as string)) {
      if (Date.now() - logStart > 5000) throw new Error(`id ${id} not logged:\n${out}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const upstream = (/recorded calls +(\S+)/.exec(out) as RegExpExecArray)[1] as string;
    const calls = (await (await fetch(upstream)).json()) as Array<{ route: string; status: number; response: unknown }>;
    expect(calls.filter((c) => c.route === 'send').map((c) => c.status)).toEqual([201]);
    expect(JSON.stringify(calls)).toContain(id);
    expect(JSON.stringify(calls)).not.toContain('dev-password');
    // the printed inbox link shows the message with the reply swaks got (the relay observer is wired)
    const inbox = (/dev inbox +(\S+)/.exec(out) as RegExpExecArray)[1] as string;
    expect(inbox).toBe(`${upstream.replace(/\/_fake\/calls$/, '')}/`);
    const rows = await (await fetch(`${inbox}_inbox/rows`)).text();
    expect(rows).toContain(`250 2.0.0 Ok: queued as ${id}`);
  } finally {
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
  }
});
