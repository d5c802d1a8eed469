/**
 * pnpm bench [--quick] [--only S1,S2,…] [--profile] [--json FILE] [--log-level LEVEL]
 *
 * Starts the testkit's fake Cakemail (counts mode), then for each scenario a fresh gateway and a
 * fresh baseline (bare smtp-server sink, same TLS and certificate), each a child process pinned to
 * one core, and drives both with the same load generator (this process, pinned to the other core,
 * with the fake). Prints `name  gateway  baseline  ratio` rows and the targets as PASS/FAIL lines.
 *
 * Exit code: 0 whether targets pass or not (they are goals); 1 only when the harness breaks
 * (a child dies, a scenario throws or moves no mail, the run overruns its time budget).
 */
import { writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loopbackGatewayEnv, testCertificates } from '@cakemail-smtp/testkit';
import { killAll, liveChildren, onChildCrash, pinSelf, pinning, startChild, type Child } from './children.js';
import { cpuMicros, openFileLimit, systemBusyMicros } from './procstat.js';
import { s1Reused, s2PerConnection, s3Large, s4Idle, s5Latency, type Errors, type Server } from './scenarios.js';
import { combineRounds, fmt } from './stats.js';

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    only: { type: 'string' },
    profile: { type: 'boolean', default: false },
    'profile-dir': { type: 'string' },
    json: { type: 'string' },
    'log-level': { type: 'string', default: 'info' },
    's5-rate': { type: 'string' },
    help: { type: 'boolean', default: false },
  },
  allowPositionals: false,
});

if (args.help) {
  process.stdout.write(`usage: pnpm bench [--quick] [--only S1,S2,S3,S4,S5] [--profile] [--profile-dir DIR] [--json FILE] [--log-level info] [--s5-rate MSG_PER_S]\n`);
  process.exit(0);
}

const quick = args.quick ?? false;
const only = new Set((args.only ?? 'S1,S2,S3,S4,S5').toUpperCase().split(',').map((s) => s.trim()));
const plan = quick
  ? { rounds: 1, warmupMs: 1000, measureMs: 3000, s4Connections: 2000, s5MeasureMs: 3000, budgetMs: 115_000 }
  : { rounds: 3, warmupMs: 1500, measureMs: 6000, s4Connections: 2000, s5MeasureMs: 10_000, budgetMs: 570_000 };
const UPSTREAM_MS = 50;
const runStarted = Date.now();

let finished = false;
function fail(error: unknown): never {
  if (!finished) {
    finished = true;
    process.stderr.write(`\nbench: harness failure: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  }
  killAll();
  process.exit(1);
}
onChildCrash((error) => fail(error));
process.once('SIGINT', () => fail(new Error('interrupted')));
process.once('SIGTERM', () => fail(new Error('terminated')));
process.on('exit', () => killAll());
const watchdog = setTimeout(() => fail(new Error(`run over its ${plan.budgetMs / 1000} s budget`)), plan.budgetMs);
watchdog.unref();

const log = (line: string): void => {
  process.stdout.write(`${line}\n`);
};
const elapsed = (): string => `${((Date.now() - runStarted) / 1000).toFixed(1)}s`;

async function main(): Promise<void> {
  const cores = pinning();
  if (cores) pinSelf(cores.load);
  const certs = await testCertificates();
  const fdLimit = openFileLimit();
  const s4Connections = Math.min(plan.s4Connections, Math.max(100, Math.floor((fdLimit - 200) / 2)));
  if (s4Connections < plan.s4Connections) log(`note: open-file limit ${fdLimit}: S4 opens ${s4Connections} sessions, not ${plan.s4Connections}`);

  log(`bench: ${quick ? 'quick' : 'full'} run; ${cpus().length} cores (${cpus()[0]?.model ?? '?'}), node ${process.version}`);
  log(
    cores
      ? `pinning: servers on core ${cores.server}; load generator and fake Cakemail on core ${cores.load} (taskset)`
      : 'pinning: none (taskset missing or one core): numbers are not comparable to a pinned run',
  );

  const baseEnv = { PATH: process.env['PATH'] ?? '/usr/bin:/bin', HOME: process.env['HOME'] ?? '/tmp' };
  const fake = await startChild({ name: 'fake-cakemail', script: 'fake-child.js', env: baseEnv, core: cores?.load });
  const profileDir = args['profile-dir'] ?? join(tmpdir(), `bench-profiles-${process.pid}`);

  const startGateway = (scenario: string): Promise<Child> =>
    startChild({
      name: `gateway (${scenario})`,
      script: 'gateway-child.js',
      core: cores?.server,
      nodeArgs: args.profile ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`, `--cpu-prof-name=gateway-${scenario}.cpuprofile`] : [],
      env: {
        ...baseEnv,
        ...loopbackGatewayEnv(certs),
        LOG_LEVEL: args['log-level'] ?? 'info',
        LOG_FORMAT: 'json',
        CAKEMAIL_API_URL: fake.url ?? '',
        MAX_MESSAGE_SIZE: String(64 * 1024 * 1024),
        MAX_CONNECTIONS: '10000',
        MAX_CONNECTIONS_PER_IP: '0',
        MAX_MESSAGES_PER_SESSION: '100000000',
        // the bench measures memory without the in-flight cap (which must be at least MAX_MESSAGE_SIZE)
        MAX_INFLIGHT_BYTES: '0',
        // at least UPSTREAM_DEADLINE_MS (60 s by default), so a shutdown can wait for a relay;
        // the gateway exits as soon as no session is left
        SHUTDOWN_TIMEOUT_MS: '60000',
      },
    });
  const startBaseline = (scenario: string, delayMs = 0): Promise<Child> =>
    startChild({
      name: `baseline (${scenario})`,
      script: 'sink-child.js',
      core: cores?.server,
      env: {
        ...baseEnv,
        TLS_CERT_PATH: certs.certPath,
        TLS_KEY_PATH: certs.keyPath,
        MAX_MESSAGE_SIZE: String(64 * 1024 * 1024),
        SINK_DELAY_MS: String(delayMs),
      },
    });
  const server = (child: Child): Server => ({ target: { host: '127.0.0.1', port: child.port }, pid: child.pid });
  let foreignMax = 0;
  /**
   * A fresh gateway and a fresh baseline for one scenario, both on the server core, driven in
   * alternating rounds (gateway, baseline, gateway, …); each side's rounds combined by median.
   * Also watches what other processes on the machine take meanwhile (a noise indicator).
   */
  async function pair<T extends object>(
    scenario: string,
    rounds: number,
    fn: (server: Server, who: 'g' | 'b') => Promise<T>,
    baselineDelayMs = 0,
  ): Promise<{ g: T; b: T }> {
    const gateway = await startGateway(scenario);
    const baseline = await startBaseline(scenario, baselineDelayMs).catch(async (err: unknown) => {
      await gateway.stop();
      throw err;
    });
    try {
      const g: T[] = [];
      const b: T[] = [];
      for (let round = 0; round < rounds; round++) {
        for (const [who, child, into] of [['g', gateway, g], ['b', baseline, b]] as const) {
          const sys0 = systemBusyMicros();
          const ours0 = cpuMicros(gateway.pid) + cpuMicros(baseline.pid) + cpuMicros(fake.pid);
          const self0 = process.cpuUsage();
          const t0 = performance.now();
          into.push(await fn(server(child), who));
          const self = process.cpuUsage(self0);
          const ours = cpuMicros(gateway.pid) + cpuMicros(baseline.pid) + cpuMicros(fake.pid) - ours0 + self.user + self.system;
          foreignMax = Math.max(foreignMax, (systemBusyMicros() - sys0 - ours) / ((performance.now() - t0) * 1000));
        }
      }
      return { g: combineRounds(g), b: combineRounds(b) };
    } finally {
      await Promise.all([gateway.stop(args.profile ? 15_000 : 5000), baseline.stop()]);
    }
  }

  const rows: Array<[string, number, number, string, number?]> = [];
  const targets: string[] = [];
  const results: Record<string, unknown> = {};
  const notes: string[] = [];
  const problems: string[] = [];
  const errorsOf = (who: string, scenario: string, errors: Errors): void => {
    const list = Object.entries(errors);
    if (list.length) notes.push(`${scenario} ${who} errors: ${list.map(([k, v]) => `${k} ×${v}`).join(', ')}`);
  };
  const check = (ok: boolean, text: string): void => {
    targets.push(`${ok ? 'PASS' : 'FAIL'}  ${text}`);
  };
  const opts = { warmupMs: plan.warmupMs, measureMs: plan.measureMs, size: 2048 };

  let s1Rate: number | undefined;
  if (only.has('S1')) {
    log(`[${elapsed()}] S1 reused connections…`);
    let round = 0;
    const { g, b } = await pair('S1', plan.rounds, (s, who) => s1Reused(s, { ...opts, connections: 20, tag: `${who}1r${round++}` }));
    results['S1'] = { gateway: g, baseline: b };
    s1Rate = g.messagesPerSecond;
    rows.push(['S1 reused: messages/s', g.messagesPerSecond, b.messagesPerSecond, 'msg/s']);
    rows.push(['S1 reused: server CPU per message', g.cpuMicrosPerMessage, b.cpuMicrosPerMessage, 'µs']);
    rows.push(['S1 reused: server CPU busy', g.serverCpuShare * 100, b.serverCpuShare * 100, '% of a core']);
    rows.push(['S1 reused: load generator CPU busy', g.loadCpuShare * 100, b.loadCpuShare * 100, '% of a core']);
    errorsOf('gateway', 'S1', g.errors);
    errorsOf('baseline', 'S1', b.errors);
    if (!g.messages || !b.messages) problems.push('S1 moved no mail');
    check(g.messagesPerSecond >= 0.6 * b.messagesPerSecond, `S1 throughput ≥ 0.6 × baseline (${fmt(g.messagesPerSecond / b.messagesPerSecond, 2)})`);
  }

  if (only.has('S2')) {
    log(`[${elapsed()}] S2 one message per connection…`);
    const o = { ...opts, clients: 50 };
    let round = 0;
    const { g, b } = await pair('S2', plan.rounds, (s, who) => s2PerConnection(s, { ...o, tag: `${who}2r${round++}` }));
    results['S2'] = { gateway: g, baseline: b };
    rows.push(['S2 per connection: sessions/s', g.sessionsPerSecond, b.sessionsPerSecond, 'sessions/s']);
    rows.push(['S2 time to greeting p50', g.greetingP50, b.greetingP50, 'ms', 1]);
    rows.push(['S2 time to greeting, unloaded server, p50', g.unloadedGreetingP50, b.unloadedGreetingP50, 'ms', 2]);
    rows.push(['S2 time to greeting p99', g.greetingP99, b.greetingP99, 'ms', 1]);
    rows.push(['S2 time to final 250 p50', g.finalP50, b.finalP50, 'ms', 1]);
    rows.push(['S2 time to final 250 p99', g.finalP99, b.finalP99, 'ms', 1]);
    rows.push(['S2 server CPU per session', g.cpuMicrosPerSession, b.cpuMicrosPerSession, 'µs']);
    rows.push(['S2 server CPU busy', g.serverCpuShare * 100, b.serverCpuShare * 100, '% of a core']);
    rows.push(['S2 load generator CPU busy', g.loadCpuShare * 100, b.loadCpuShare * 100, '% of a core']);
    errorsOf('gateway', 'S2', g.errors);
    errorsOf('baseline', 'S2', b.errors);
    if (!g.sessions || !b.sessions) problems.push('S2 completed no session');
    check(
      g.sessionsPerSecond >= 0.8 * b.sessionsPerSecond && g.greetingP50 < 5,
      `S2 sessions/s ≥ 0.8 × baseline (${fmt(g.sessionsPerSecond / b.sessionsPerSecond, 2)}) and greeting p50 < 5 ms (${fmt(g.greetingP50, 2)} ms)`,
    );
    notes.push('S2 baseline: the bare library waits 100 ms before every greeting (smtp-server init()); the gateway does not.');
  }

  if (only.has('S3')) {
    log(`[${elapsed()}] S3 large message…`);
    const o = { attachmentBytes: 20 * 1024 * 1024 };
    const { g, b } = await pair('S3', 1, (s, who) => s3Large(s, { ...o, tag: `${who}3` }));
    results['S3'] = { gateway: g, baseline: b };
    rows.push(['S3 large: peak RSS growth', g.growth / 2 ** 20, b.growth / 2 ** 20, 'MiB', 1]);
    rows.push(['S3 large: growth / message size', g.multiple, b.multiple, '×', 2]);
    rows.push(['S3 large: time to final 250', g.seconds * 1000, b.seconds * 1000, 'ms']);
    notes.push(
      `S3 message: ${fmt(g.messageBytes / 2 ** 20, 1)} MiB on the wire (a 20 MiB PDF, base64); peak by ${g.method}; idle RSS gateway ${fmt(g.idleRss / 2 ** 20, 1)} MiB, baseline ${fmt(b.idleRss / 2 ** 20, 1)} MiB; replies: gateway "${g.reply}", baseline "${b.reply}"`,
    );
    if (!g.reply.startsWith('250')) problems.push(`S3 gateway refused the large message: ${g.reply}`);
    check(g.multiple <= 3, `S3 peak RSS growth ≤ 3 × message size (${fmt(g.multiple, 2)}×)`);
  }

  if (only.has('S4')) {
    log(`[${elapsed()}] S4 idle connections…`);
    const { g, b } = await pair('S4', 1, (s) => s4Idle(s, { connections: s4Connections }));
    results['S4'] = { gateway: g, baseline: b };
    rows.push([`S4 ${g.connections} idle TLS sessions: RSS per connection`, g.perConnection / 1024, b.perConnection / 1024, 'KiB', 1]);
    rows.push(['S4 time to open them all', g.openSeconds * 1000, b.openSeconds * 1000, 'ms']);
    check(g.perConnection <= 64 * 1024, `S4 RSS per idle connection ≤ 64 KiB (${fmt(g.perConnection / 1024, 1)} KiB)`);
  }

  if (only.has('S5')) {
    const rate = args['s5-rate'] ? Number(args['s5-rate']) : Math.max(50, Math.round((s1Rate ?? 1000) / 2));
    log(`[${elapsed()}] S5 upstream latency ${UPSTREAM_MS} ms at ${rate} msg/s (open loop)…`);
    const o = { ...opts, measureMs: plan.s5MeasureMs, rate, upstreamMs: UPSTREAM_MS };
    // The fake's delay applies to the gateway's POST /v2/emails only; the baseline sink waits itself.
    await fake.request({ type: 'delay', id: 0, ms: UPSTREAM_MS });
    const { g, b } = await pair('S5', 1, (s, who) => s5Latency(s, { ...o, tag: `${who}5` }), UPSTREAM_MS).finally(() =>
      fake.request({ type: 'delay', id: 0, ms: 0 }),
    );
    results['S5'] = { gateway: g, baseline: b };
    rows.push([`S5 added latency p50 (at ${rate} msg/s)`, g.addedP50, b.addedP50, 'ms', 2]);
    rows.push(['S5 added latency p99', g.addedP99, b.addedP99, 'ms', 2]);
    rows.push(['S5 achieved rate', g.achievedRate, b.achievedRate, 'msg/s']);
    errorsOf('gateway', 'S5', g.errors);
    errorsOf('baseline', 'S5', b.errors);
    if (g.late || b.late) notes.push(`S5 starts skipped for want of a free connection: gateway ${g.late}, baseline ${b.late}`);
    if (!g.messages || !b.messages) problems.push('S5 moved no mail');
    if (s1Rate === undefined && !args['s5-rate']) notes.push('S5 rate: S1 did not run, 500 msg/s used');
    check(g.addedP99 < 5, `S5 added p99 < 5 ms (${fmt(g.addedP99, 2)} ms)`);
  }

  const counts = await fake.request({ type: 'delay', id: 0, ms: 0 });
  await fake.stop();

  // ---- report
  const nameWidth = Math.max(40, ...rows.map((r) => r[0].length + 2));
  const col = (s: string, w = 12): string => s.padStart(w);
  log('');
  log(`${'scenario'.padEnd(nameWidth)}${col('gateway')}${col('baseline')}${col('ratio', 8)}  unit`);
  for (const [name, g, b, unit, digits] of rows) {
    log(`${name.padEnd(nameWidth)}${col(fmt(g, digits ?? 0))}${col(fmt(b, digits ?? 0))}${col(fmt(g / b, 2), 8)}  ${unit}`);
  }
  log('');
  for (const line of targets) log(line);
  if (notes.length) {
    log('');
    for (const note of notes) log(`note: ${note}`);
  }
  log(`note: other processes on this machine took up to ${fmt(Math.max(0, foreignMax) * 100)}% of a core during a measurement (noise)`);
  log(`note: fake Cakemail calls: ${JSON.stringify(counts)}`);
  if (args.profile) log(`profiles: ${profileDir} (summarise: node bench/dist/profile-summary.js FILE)`);
  const json = args.json ?? join(tmpdir(), 'cakemail-smtp-bench.json');
  writeFileSync(json, `${JSON.stringify({ quick, date: new Date().toISOString(), node: process.version, cpu: cpus()[0]?.model, results, targets, notes }, null, 2)}\n`);
  log(`results: ${json}`);
  log(`run time: ${elapsed()}`);
  if (liveChildren() > 0) problems.push(`${liveChildren()} child process(es) still running`);
  if (problems.length) throw new Error(problems.join('; '));
}

main().then(
  () => {
    finished = true;
    clearTimeout(watchdog);
    process.exit(0);
  },
  (err: unknown) => fail(err),
);
