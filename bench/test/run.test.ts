/**
 * The compiled bench (dist/, built once here): the floor child against the fake Cakemail, over
 * real TLS; and the bench as CI runs it, broken on purpose (a child dies in the middle of a run:
 * it must exit 1 naming the failure, and leave no child process behind).
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createFakeCakemail, testCertificates } from '@cakemail-smtp/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { killAll, startChild } from '../src/children.js';
import { SmtpConnection } from '../src/smtp-conn.js';

const root = fileURLToPath(new URL('..', import.meta.url));

/** The pids whose parent is `pid`, with their command lines. */
function childrenOf(pid: number): Array<{ pid: number; cmd: string }> {
  const out: Array<{ pid: number; cmd: string }> = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'latin1');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) out.push({ pid: Number(entry), cmd: readFileSync(`/proc/${entry}/cmdline`, 'latin1').replace(/\0/g, ' ') });
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return !readFileSync(`/proc/${pid}/stat`, 'latin1').includes(') Z ');
  } catch {
    return false;
  }
};

beforeAll(() => {
  execFileSync(process.execPath, [fileURLToPath(import.meta.resolve('typescript/bin/tsc')), '-p', 'tsconfig.build.json'], { cwd: root, stdio: 'inherit' });
}, 180_000);

describe('the floor of a relay (floor-child.ts)', () => {
  const fake = createFakeCakemail();
  afterAll(async () => {
    killAll();
    await fake.close();
  });

  it('relays each recipient with one POST /v2/emails carrying the message, and answers 250 with the ids', async () => {
    const url = await fake.listen(0, '127.0.0.1');
    const certs = await testCertificates();
    const floor = await startChild({
      name: 'floor',
      script: '../dist/floor-child.js', // relative to src/children.ts
      core: undefined,
      env: { PATH: process.env['PATH'] ?? '', TLS_CERT_PATH: certs.certPath, TLS_KEY_PATH: certs.keyPath, CAKEMAIL_API_URL: url, FLOOR_CONNECTIONS: '4' },
    });
    const target = { host: '127.0.0.1', port: floor.port };

    const { conn: bad } = await SmtpConnection.open(target);
    await bad.ehlo();
    await bad.startTls();
    await expect(bad.auth({ user: 'dev@example.com', password: 'wrong' })).rejects.toThrow(/AUTH: 535/);
    bad.destroy();

    const conn = await SmtpConnection.ready(target, { user: 'dev@example.com', password: 'dev-password' });
    const message = 'From: <sender@example.com>\r\nSubject: hello\r\n\r\nline one\r\n..dot-stuffed\r\n';
    await conn.command('MAIL FROM:<sender@example.com>', 250);
    await conn.command('RCPT TO:<a@example.net>', 250);
    await conn.command('RCPT TO:<b@example.net>', 250);
    await conn.command('DATA', 354);
    conn.write(`${message}.\r\n`);
    const reply = await conn.read();
    await conn.quit();
    await floor.stop();

    const sent = fake.sent();
    expect(sent.map((e) => e.body.email).sort()).toEqual(['a@example.net', 'b@example.net']);
    expect(reply.code).toBe(250);
    for (const email of sent) {
      expect(reply.text).toContain(email.id);
      expect(email.body.content.text).toBe(message.replace('..dot', '.dot'));
    }
    // The login's token, sender and list were looked up once, at AUTH.
    expect(fake.counts()).toMatchObject({ token: 2, senders: 1, lists: 1, createList: 1, send: 2 });
  });
});

describe('pnpm bench', () => {
  it('exits 1 and stops every child when one of them dies during the run', async () => {
    const run = spawn(process.execPath, ['dist/run.js', '--quick', '--only', 'S4', '--json', '/dev/null'], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    run.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const exited = new Promise<number | null>((resolve) => run.once('exit', (code) => resolve(code)));
    const pid = run.pid ?? 0;

    // Wait for the scenario's servers: the fake, the gateway and the floor.
    const seen = new Map<number, string>();
    let gateway: number | undefined;
    const deadline = Date.now() + 60_000;
    while (gateway === undefined && Date.now() < deadline && run.exitCode === null) {
      for (const child of childrenOf(pid)) seen.set(child.pid, child.cmd);
      gateway = [...seen].find(([p, cmd]) => cmd.includes('gateway-child.js') && alive(p))?.[0];
      if (gateway === undefined) await new Promise((r) => setTimeout(r, 50));
    }
    expect(gateway, `no gateway child appeared; stderr: ${stderr}`).toBeDefined();
    await new Promise((r) => setTimeout(r, 300));
    for (const child of childrenOf(pid)) seen.set(child.pid, child.cmd);
    expect([...seen.values()].some((cmd) => cmd.includes('fake-child.js'))).toBe(true);

    process.kill(gateway ?? 0, 'SIGKILL');
    expect(await exited).toBe(1);
    expect(stderr).toMatch(/bench: harness failure: Error: gateway \(S4\) exited unexpectedly \(code null, signal SIGKILL\)/);
    const left = [...seen.keys()].filter(alive);
    expect(left, `children still running: ${left.map((p) => seen.get(p)).join('; ')}`).toEqual([]);
  }, 120_000);
});

describe('burst-probe (the README\'s MAX_INFLIGHT_BYTES figures)', () => {
  it('prints idle and peak memory of a default gateway, the burst past the cap answered 451', () => {
    // Two 20 MB messages at once: the default cap (32 MiB) takes one, the other gets 451 4.3.1.
    // As the README writes it, from the repository root.
    const out = execFileSync(process.execPath, ['bench/dist/burst-probe.js', '2x20'], { cwd: join(root, '..'), encoding: 'utf8', timeout: 120_000 });
    const m = /2 x 20 MB at once: idle RSS (\d+) MiB, peak (\d+) MiB \((?:hwm|sampled)\); replies (.*)/.exec(out);
    expect(m, out).not.toBeNull();
    expect(Number(m?.[2])).toBeGreaterThan(Number(m?.[1]));
    // one accepted, one refused at the cap, nothing else (in the order the replies came)
    expect(m?.[3]?.split('; ').sort()).toEqual(['250 ×1', expect.stringMatching(/^451 4\.3\.1 .* ×1$/)]);
  }, 150_000);
});

describe('deflate-levels (the queue\'s deflate level, BENCHMARKS.md)', () => {
  it('prints both levels for each size and kind; the fastest level is never smaller than the default', () => {
    const out = execFileSync(process.execPath, ['bench/dist/deflate-levels.js', '2000', '6000'], { cwd: join(root, '..'), encoding: 'utf8', timeout: 60_000 });
    const rows = [...out.matchAll(/^(text|text\+html) (\d+): body (\d+) B; level 6 (\d+) B in [\d.]+ µs; level 1 (\d+) B in [\d.]+ µs/gm)];
    expect(rows.map((m) => `${m[1]} ${m[2]}`), out).toEqual(['text 2000', 'text+html 2000', 'text 6000', 'text+html 6000']);
    for (const m of rows) {
      expect(Number(m[4])).toBeLessThan(Number(m[3])); // prose compresses
      expect(Number(m[5])).toBeGreaterThanOrEqual(Number(m[4]));
    }
  }, 90_000);
});

describe('pnpm bench from the repository root (--ab, S5)', () => {
  const repo = fileURLToPath(new URL('../..', import.meta.url));
  /** `pnpm bench ARGS` from the repository's root, as the README writes it (the pinned pnpm). */
  const pnpmBench = (args: string): { code: number; out: string } => {
    try {
      const out = execFileSync('bash', ['-c', `. scripts/pnpm-env.sh && pnpm bench ${args} 2>&1`], { cwd: repo, encoding: 'utf8', timeout: 240_000 });
      return { code: 0, out };
    } catch (err) {
      const e = err as { status?: number; stdout?: string };
      return { code: e.status ?? -1, out: e.stdout ?? '' };
    }
  };

  it("measures another checkout's gateway in the same S1 rounds, named from the repository's root, each server warmed first", () => {
    const json = join(mkdtempSync(join(tmpdir(), 'bench-ab-')), 'results.json');
    // This checkout stands for the other one: `.` is the root, whatever directory turbo runs the bench in.
    const { code, out } = pnpmBench(`--only S1 --quick --rounds 1 --ab . --json ${json}`);
    expect(code, out).toBe(0);
    expect(out).toMatch(/S1 --ab build: server CPU per message\s+[\d,]+/);
    const results = JSON.parse(readFileSync(json, 'utf8')) as {
      results: { S1: Record<string, { messages: number }> & { warmupMessages: Record<string, number> } };
      rounds: { S1: Record<string, unknown[]> };
      notes: string[];
    };
    const { warmupMessages, ...servers } = results.results.S1;
    expect(Object.keys(servers).sort()).toEqual(['before', 'floor', 'gateway', 'sink']);
    expect(servers['before']?.messages).toBeGreaterThan(0);
    // the unmeasured warm-up round, each server's own, and the measured rounds kept one by one
    for (const kind of ['gateway', 'before', 'floor', 'sink']) {
      expect(warmupMessages[kind], kind).toBeGreaterThan(0);
      expect(results.rounds.S1[kind], kind).toHaveLength(1);
    }
    expect(results.notes.join('\n')).toMatch(/S1: servers warmed first by an unmeasured round of the same load \(gateway [\d,]+ messages, before [\d,]+ messages, floor [\d,]+ messages, sink [\d,]+ messages\)/);
  }, 300_000);

  it('S5 warms each fresh server with an unmeasured S1 round, then takes the medians of its rounds', () => {
    const json = join(mkdtempSync(join(tmpdir(), 'bench-s5-')), 'results.json');
    const { code, out } = pnpmBench(`--only S5 --quick --rounds 2 --s5-rate 100 --json ${json}`);
    expect(code, out).toBe(0);
    const results = JSON.parse(readFileSync(json, 'utf8')) as {
      results: { S5: { warmupMessages: Record<string, number>; gateway: { messages: number }; floor: { messages: number } } };
      notes: string[];
    };
    const s5 = results.results.S5;
    expect(s5.warmupMessages['gateway']).toBeGreaterThan(0);
    expect(s5.warmupMessages['floor']).toBeGreaterThan(0);
    expect(s5.gateway.messages).toBeGreaterThan(0);
    expect(results.notes.join('\n')).toMatch(/S5: servers warmed first by an unmeasured S1 round \(gateway [\d,]+ messages, floor [\d,]+\); p50\/p99 are the medians of 2 round\(s\)/);
  }, 300_000);

  it('queue mode: S1 with what was delivered meanwhile, delivery alone, the intake alone, and the rate both sustain', () => {
    const json = join(mkdtempSync(join(tmpdir(), 'bench-q-')), 'results.json');
    const { code, out } = pnpmBench(`--only Q --quick --rounds 1 --json ${json}`);
    expect(code, out).toBe(0);
    expect(out).toMatch(/S1 QUEUE_MODE=always: messages\/s\s+[\d,]+/);
    expect(out).toMatch(/S1 QUEUE_MODE=always: delivered meanwhile\s+[\d,]+/);
    expect(out).toMatch(/Queue delivery alone \(backlog drained\): messages\/s\s+[\d,]+/);
    expect(out).toMatch(/S1 QUEUE_MODE=always, intake only: messages\/s\s+[\d,]+/);
    expect(out).toMatch(/Queue mode sustained on one core \(intake \+ delivery\): messages\/s\s+[\d,]+/);
    const results = JSON.parse(readFileSync(json, 'utf8')) as {
      results: {
        'S1-queue': { gateway: { messagesPerSecond: number; sendsPerSecond: number } };
        'queue-drain': { gateway: { delivered: number; cpuMicrosPerDelivery: number } };
        'S1-queue-intake': { gateway: { messages: number }; deliveredMeanwhile: number };
      };
    };
    // The workers deliver during S1, fewer than are taken in; alone, they deliver the backlog.
    const q = results.results['S1-queue'].gateway;
    expect(q.sendsPerSecond).toBeGreaterThan(0);
    expect(q.sendsPerSecond).toBeLessThan(q.messagesPerSecond);
    const drain = results.results['queue-drain'].gateway;
    expect(drain.delivered).toBeGreaterThan(100);
    expect(drain.cpuMicrosPerDelivery).toBeGreaterThan(0);
    const intake = results.results['S1-queue-intake'];
    expect(intake.gateway.messages).toBeGreaterThan(100);
    // held back: one worker, each send answered after 2 s
    expect(intake.deliveredMeanwhile).toBeLessThan(intake.gateway.messages / 20);
  }, 300_000);

  it('refuses a directory without a built gateway, before starting anything', () => {
    const { code, out } = pnpmBench('--only S1 --quick --ab does-not-exist');
    expect(code).not.toBe(0);
    expect(out).toMatch(/--ab .*does-not-exist: no bench\/dist\/gateway-child\.js there/);
  }, 120_000);
});
