/**
 * `pnpm start` and `pnpm dev`, run from the repository's root exactly as the
 * README writes them (with the pinned pnpm that scripts/pnpm-env.sh puts on
 * PATH), honour the environment: non-default ports, TLS paths and upstream are
 * the ones used. `pnpm start` prints JSON lines only.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, connect as connectTcp } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as connectTls } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createFakeCakemail, createMailer, DEFAULT_SENDER, DEFAULT_USER, type FakeCakemail } from '@cakemail-smtp/testkit';

const root = fileURLToPath(new URL('../../../', import.meta.url));

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** A README command, run from the root in its own process group (pnpm, turbo and node stop together). */
function readmeCommand(command: string, env: Record<string, string>) {
  const child = spawn('bash', ['-c', `. scripts/pnpm-env.sh && exec ${command}`], {
    cwd: root,
    env: { PATH: process.env['PATH'] ?? '', HOME: process.env['HOME'] ?? '/root', NO_COLOR: '1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let stdout = '';
  let all = '';
  child.stdout.on('data', (d: Buffer) => ((stdout += d.toString()), (all += d.toString())));
  child.stderr.on('data', (d: Buffer) => (all += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const signal = (sig: NodeJS.Signals): void => {
    try {
      process.kill(-(child.pid as number), sig);
    } catch {
      // gone already
    }
  };
  return {
    stdout: () => stdout,
    async waitFor(check: (stdout: string) => boolean, timeoutMs = 180_000): Promise<void> {
      const start = Date.now();
      while (!check(stdout)) {
        if (child.exitCode !== null) throw new Error(`${command} exited ${child.exitCode}:\n${all}`);
        if (Date.now() - start > timeoutMs) throw new Error(`${command} timed out:\n${all}`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    },
    async stop(): Promise<number | null> {
      signal('SIGTERM');
      const timer = setTimeout(() => signal('SIGKILL'), 60_000);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}

/** The first reply on a connection to the implicit-TLS port. */
async function implicitTlsGreeting(port: number, ca: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connectTls({ host: '127.0.0.1', port, ca, servername: 'localhost' });
    let data = '';
    socket.on('data', (d: Buffer) => {
      data += d.toString();
      if (data.includes('\r\n')) {
        socket.destroy();
        resolve(data.trim());
      }
    });
    socket.on('error', reject);
  });
}

async function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connectTcp({ host: '127.0.0.1', port });
    socket.on('connect', () => (socket.destroy(), resolve(false)));
    socket.on('error', () => resolve(true));
  });
}

interface Setup {
  readonly env: Record<string, string>;
  readonly ports: { smtp: number; smtps: number; ops: number };
  readonly cert: string;
  readonly key: string;
}

let fake: FakeCakemail;
let dir: string;

beforeAll(async () => {
  fake = createFakeCakemail();
  await fake.listen(0, '127.0.0.1');
  dir = await mkdtemp(join(tmpdir(), 'gw-readme-'));
});

afterAll(async () => {
  await fake?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function setup(name: string): Promise<Setup> {
  const ports = { smtp: await freePort(), smtps: await freePort(), ops: await freePort() };
  const cert = join(dir, name, 'tls', 'tls.crt');
  const key = join(dir, name, 'tls', 'tls.key');
  return {
    ports,
    cert,
    key,
    env: {
      SMTP_HOST: '127.0.0.1',
      OPS_HOST: '127.0.0.1',
      SMTP_PORT: String(ports.smtp),
      SMTPS_PORT: String(ports.smtps),
      OPS_PORT: String(ports.ops),
      SMTP_HOSTNAME: 'localhost',
      TLS_CERT_PATH: cert,
      TLS_KEY_PATH: key,
      CAKEMAIL_API_URL: fake.url,
    },
  };
}

/** The ports answer, the certificate is where it was asked for, and a message reaches the fake. */
async function checkServes(s: Setup, subject: string): Promise<void> {
  expect(existsSync(s.cert) && existsSync(s.key)).toBe(true);
  const ca = await readFile(s.cert, 'utf8');
  expect((await fetch(`http://127.0.0.1:${s.ports.ops}/health/ready`)).status).toBe(200);
  expect(await implicitTlsGreeting(s.ports.smtps, ca)).toMatch(/^220 localhost ESMTP/);
  const mailer = createMailer({ port: s.ports.smtp, host: '127.0.0.1', ca, auth: { user: DEFAULT_USER.email, pass: DEFAULT_USER.password } });
  try {
    const info = await mailer.sendMail({ from: DEFAULT_SENDER.email, to: 'someone@example.net', subject, text: 'Hello.' });
    expect(info.response).toMatch(/^250 2\.0\.0 /);
  } finally {
    mailer.close();
  }
  expect(fake.sent().map((m) => m.body.content.subject)).toContain(subject);
}

describe('the README commands', () => {
  it('`pnpm start` uses the ports, TLS paths and upstream it is given, and prints JSON lines only', async () => {
    const s = await setup('start');
    const gateway = readmeCommand('pnpm start', s.env);
    try {
      await gateway.waitFor((out) => out.includes('"gateway ready"'));
      await checkServes(s, 'via pnpm start');
      const ready = JSON.parse(gateway.stdout().split('\n').find((l) => l.includes('"gateway ready"')) ?? '{}') as Record<string, unknown>;
      expect(ready).toMatchObject({ smtpPort: s.ports.smtp, smtpsPort: s.ports.smtps, opsPort: s.ports.ops, upstream: fake.url });
    } finally {
      await gateway.stop();
    }
    const lines = gateway.stdout().split('\n').filter((l) => l !== '');
    expect(lines.length).toBeGreaterThan(2);
    for (const line of lines) expect(() => JSON.parse(line), line).not.toThrow();
    expect(lines.map((l) => (JSON.parse(l) as { msg: string }).msg)).toContain('stopped');
  }, 240_000);

  it('`pnpm dev` with CAKEMAIL_API_URL uses that API, and the given ports and TLS paths, and starts no embedded fake', async () => {
    const s = await setup('dev');
    const devUpstreamPort = await freePort();
    const dev = readmeCommand('pnpm dev', { ...s.env, DEV_UPSTREAM_PORT: String(devUpstreamPort) });
    try {
      await dev.waitFor((out) => /upstream {10}\S+/.test(out));
      expect(dev.stdout()).toContain(`upstream          ${fake.url}`);
      expect(dev.stdout()).not.toContain('embedded fake Cakemail API');
      expect(dev.stdout()).toContain(`SMTP (STARTTLS)   127.0.0.1:${s.ports.smtp}`);
      expect(await refused(devUpstreamPort)).toBe(true);
      await checkServes(s, 'via pnpm dev');
    } finally {
      await dev.stop();
    }
  }, 240_000);
});
