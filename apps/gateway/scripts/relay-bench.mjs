/**
 * CPU per message of the relay alone (parse, checks, fan-out, the POST, the `relayed` log line),
 * without SMTP and TLS: `RelaySession.data()` driven directly by 20 concurrent sessions with
 * S1's 2 KiB single-recipient messages, against the testkit's fake Cakemail in a child process.
 * Logs go through the gateway's logger (info, JSON) to stdout: send it to /dev/null.
 *
 *   pnpm --filter @cakemail-smtp/gateway run build
 *   node apps/gateway/scripts/relay-bench.mjs [MESSAGES_PER_ROUND] [ROUNDS] [DIST...] > /dev/null
 *
 * Each DIST is a build of packages/cakemail, a directory under packages/cakemail (so that its
 * imports resolve) holding the compiled `relay/backend.js`; default `dist`. With two or more, rounds
 * alternate between them in one process, so that A/B comparisons share the machine's load.
 * Prints the median and the spread of the CPU µs per message (process.cpuUsage) of each.
 * Pin it for steadier numbers: `taskset -c 1 node …` (the fake is moved to core 0).
 */
import { execFileSync, fork } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { dirname, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createLogger } from '@cakemail-smtp/gateway';
import { DEFAULT_SENDER, DEFAULT_USER } from '@cakemail-smtp/testkit';

const here = dirname(fileURLToPath(import.meta.url));
const [perRoundArg, roundsArg, ...dists] = process.argv.slice(2);
const perRound = Number(perRoundArg ?? 4000);
const rounds = Number(roundsArg ?? 5);
if (dists.length === 0) dists.push('dist');
const SESSIONS = 20;

if (process.argv[2] === '--fake') {
  const { createFakeCakemail } = await import('@cakemail-smtp/testkit');
  const fake = createFakeCakemail({ record: 'counts' });
  const url = await fake.listen(0, '127.0.0.1');
  process.send?.({ url });
  process.on('disconnect', () => void fake.close().finally(() => process.exit(0)));
} else {
  const child = fork(fileURLToPath(import.meta.url), ['--fake'], { stdio: 'inherit' });
  const url = await new Promise((ok) => child.once('message', (m) => ok(m.url)));
  // The fake on the other core (this process may be pinned to core 1, and the child inherits it).
  if (availableParallelism() > 1) {
    try {
      execFileSync('taskset', ['-pc', '0', String(child.pid)], { stdio: 'ignore' });
    } catch {
      // no taskset: the fake shares the core
    }
  }
  // Log lines go to stdout, as the gateway's do: run it with `> /dev/null` (results go to stderr).
  const logger = createLogger({ level: 'info', format: 'json' });

  const FILLER = 'The quick brown fox jumps over the lazy dog, then files its expense report. ';
  let body = '';
  while (body.length < 1700) body += `${FILLER.repeat(2).slice(0, 70)}\r\n`;
  let seq = 0;
  const message = () => {
    const n = String(++seq).padStart(12, '0');
    const to = `r-${n}@example.net`;
    const head =
      `From: Bench <${DEFAULT_SENDER.email}>\r\nTo: <${to}>\r\nSubject: bench ${n}\r\nMessage-ID: <${n}@bench.example>\r\n` +
      'Date: Mon, 1 Dec 2025 10:00:00 +0000\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n';
    return { to, data: Buffer.from(head + body, 'latin1') };
  };

  const builds = [];
  for (const dist of dists) {
    const mod = await import(pathToFileURL(resolve(here, '../../../packages/cakemail', dist, 'relay/backend.js')).href);
    const backend = mod.createRelayBackend(
      {
        apiUrl: url,
        timeoutMs: 30_000,
        deadlineMs: 60_000,
        emailType: 'transactional',
        connections: 256,
        authCacheTtlMs: 600_000,
        inflightWaitMs: 15_000,
        bounces: true,
        hostname: 'bench.example',
      },
      { logger },
    );
    const sessions = [];
    for (let i = 0; i < SESSIONS; i++) {
      const s = backend.newSession({ id: `s${i}`, remoteAddress: '127.0.0.1', remotePort: 1, localPort: 2, listener: 'starttls' });
      const d = await s.auth({ mechanism: 'PLAIN', username: DEFAULT_USER.email, password: DEFAULT_USER.password });
      if (!d.ok) throw new Error('auth failed');
      sessions.push(s);
    }
    builds.push({ dist, backend, sessions, samples: [] });
  }

  const round = async (build, count) => {
    let left = count;
    await Promise.all(
      build.sessions.map(async (s) => {
        while (left-- > 0) {
          const m = message();
          await s.mail(DEFAULT_SENDER.email);
          await s.data(Readable.from([m.data]), { from: DEFAULT_SENDER.email, to: [m.to] });
        }
      }),
    );
  };
  for (const b of builds) await round(b, 3000); // warm-up (JIT)
  for (let r = 0; r < rounds; r++) {
    for (const b of builds) {
      global.gc?.();
      const t = process.cpuUsage();
      await round(b, perRound);
      const u = process.cpuUsage(t);
      b.samples.push((u.user + u.system) / perRound);
    }
  }
  for (const b of builds) {
    const s = [...b.samples].sort((x, y) => x - y);
    const med = s[Math.floor(s.length / 2)];
    console.error(`${b.dist}: median ${med.toFixed(1)} µs CPU per message (min ${s[0].toFixed(1)}, max ${s[s.length - 1].toFixed(1)}; rounds ${b.samples.map((x) => x.toFixed(0)).join(' ')})`);
    await b.backend.close();
  }
  child.disconnect();
}
