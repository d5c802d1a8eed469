/**
 * `pnpm run doctor`, run from the repository's root as the README writes it (with the pinned pnpm
 * that scripts/pnpm-env.sh puts on PATH): its arguments and environment reach the doctor, which
 * checks the login against the CAKEMAIL_API_URL given (a fake on a random port), and `--json`
 * output is JSON alone on stdout.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createFakeCakemail, DEFAULT_SENDER, DEFAULT_USER, type FakeCakemail } from '@cakemail-smtp/testkit';

const root = fileURLToPath(new URL('../../../', import.meta.url));

function pnpmRunDoctor(args: string, env: Record<string, string>): Promise<{ code: number | null; stdout: string; all: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-c', `. scripts/pnpm-env.sh && exec pnpm run doctor ${args}`], {
      cwd: root,
      env: { PATH: process.env['PATH'] ?? '', HOME: process.env['HOME'] ?? '/root', NO_COLOR: '1', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let all = '';
    child.stdout.on('data', (d: Buffer) => ((stdout += d.toString()), (all += d.toString())));
    child.stderr.on('data', (d: Buffer) => (all += d.toString()));
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code, stdout, all }));
  });
}

interface Check {
  readonly ok: boolean;
  readonly name?: string;
  readonly check?: string;
}

describe('pnpm run doctor, as the README writes it', () => {
  let fake: FakeCakemail;
  let url: string;
  beforeAll(async () => {
    fake = createFakeCakemail();
    url = await fake.listen(0, '127.0.0.1');
  });
  afterAll(() => fake.close());

  it('checks the login from --user and CAKEMAIL_PASSWORD against CAKEMAIL_API_URL, JSON on stdout, exit 0', async () => {
    const run = await pnpmRunDoctor(`--user ${DEFAULT_USER.email} --from ${DEFAULT_SENDER.email} --json`, {
      CAKEMAIL_API_URL: url,
      CAKEMAIL_PASSWORD: DEFAULT_USER.password,
    });
    expect(run.code, run.all).toBe(0);
    const report = JSON.parse(run.stdout) as { ok: boolean; checks: Check[] };
    expect(report.ok).toBe(true);
    expect(report.checks.length).toBeGreaterThan(3);
    expect(report.checks.every((c) => c.ok)).toBe(true);
    expect(fake.counts().token).toBeGreaterThan(0); // the given API, not the default one
    expect(run.all).not.toContain(DEFAULT_USER.password);
  });

  it('exits 1 on a wrong password, and says so', async () => {
    const run = await pnpmRunDoctor('--json', {
      CAKEMAIL_API_URL: url,
      CAKEMAIL_USERNAME: DEFAULT_USER.email,
      CAKEMAIL_PASSWORD: 'not-the-password',
    });
    expect(run.code, run.all).toBe(1);
    const report = JSON.parse(run.stdout) as { ok: boolean; checks: Check[] };
    expect(report.ok).toBe(false);
    expect(report.checks[0]?.ok).toBe(false);
    expect(JSON.stringify(report.checks[0])).toMatch(/password/i);
    expect(run.all).not.toContain('not-the-password');
  });
});
