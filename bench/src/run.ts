/**
 * pnpm bench [--quick] [--only S1,S2,S3,S4,S5,Q] [--profile] [--json FILE] [--markdown] [--log-level LEVEL] [--s5-rate N]
 *            [--ab DIR] [--rounds N]
 *
 * Starts the testkit's fake Cakemail (counts mode), then for each scenario a fresh gateway and
 * fresh baselines, each a child process pinned to one core: the floor of a relay (floor-child.ts)
 * and, in S1, the bare sink (sink-child.ts). The same load generator (this process, pinned to the
 * other core, with the fake) drives each in turn. Prints a table (gateway, floor, sink and the
 * gateway's ratios) and the targets of issue 13 as PASS/FAIL lines.
 *
 * Exit code: 0 whether targets pass or not (they are goals); 1 only when the harness breaks
 * (a child dies, a scenario throws or moves no mail, the run overruns its time budget).
 */
import { randomBytes } from 'node:crypto';
import { existsSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, release, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { configKeys, loadConfig } from '@cakemail-smtp/gateway';
import { loopbackGatewayEnv, testCertificates, startPersistentRedisServer } from '@cakemail-smtp/testkit';
import { killAll, liveChildren, onChildCrash, pinSelf, pinning, startChild, type Child } from './children.js';
import { LARGE_KINDS } from './messages.js';
import { cpuMicros, openFileLimit, systemBusyMicros } from './procstat.js';
import { renderMarkdown, renderTable, type Row } from './report.js';
import { drainQueue, s1Reused, s2OpenLoop, s2PerConnection, s3Memory, s4Idle, s5Latency, type Errors, type S1Result, type Server } from './scenarios.js';
import { combineRounds, fmt, ratio, underCap } from './stats.js';
import { allOf, atLeastTimes, atMost, below, notMeasured, renderTarget, type TargetLine } from './targets.js';

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    only: { type: 'string' },
    profile: { type: 'boolean', default: false },
    'profile-dir': { type: 'string' },
    json: { type: 'string' },
    markdown: { type: 'boolean', default: false },
    'log-level': { type: 'string', default: 'info' },
    's5-rate': { type: 'string' },
    /** Another checkout of this repository, built: its gateway runs beside this one in S1 (before/after). */
    ab: { type: 'string' },
    rounds: { type: 'string' },
    /** Extra node flags for this checkout's gateway (not the `--ab` one), e.g. `--perf-basic-prof`. */
    'gateway-node-args': { type: 'string' },
    help: { type: 'boolean', default: false },
  },
  allowPositionals: false,
});

if (args.help) {
  process.stdout.write(
    'usage: pnpm bench [--quick] [--only S1,S2,S3,S4,S5,Q] [--profile] [--profile-dir DIR] [--json FILE] [--markdown] [--log-level info] [--s5-rate MSG_PER_S] [--ab DIR] [--rounds N] [--gateway-node-args FLAGS]\n',
  );
  process.exit(0);
}

const quick = args.quick ?? false;
const only = new Set((args.only ?? 'S1,Q,S2,S3,S4,S5').toUpperCase().split(',').map((s) => s.trim()));
const MiB = 1024 * 1024;
const plan = quick
  ? { rounds: 1, warmupMs: 1000, measureMs: 3000, openMeasureMs: 2000, s3Bytes: 4 * MiB, s3Concurrent: 2, s4Connections: 1000, s5MeasureMs: 2000, budgetMs: 300_000 }
  : { rounds: 3, warmupMs: 1500, measureMs: 6000, openMeasureMs: 10_000, s3Bytes: 10 * MiB, s3Concurrent: 4, s4Connections: 2000, s5MeasureMs: 10_000, budgetMs: 1_200_000 };
/** Rounds per throughput scenario (`--rounds`; more for a before/after). */
const rounds = args.rounds === undefined ? plan.rounds : Math.max(1, Math.floor(Number(args.rounds)) || plan.rounds);
/**
 * `--ab DIR`: the gateway of another checkout (built), measured beside this one in S1. A
 * relative DIR is from the repository's root (`pnpm bench` runs this in bench/, through turbo).
 */
const abDir = args.ab === undefined ? undefined : resolve(fileURLToPath(new URL('../..', import.meta.url)), args.ab);
if (abDir !== undefined && !existsSync(join(abDir, 'bench/dist/gateway-child.js'))) {
  process.stderr.write(`bench: --ab ${abDir}: no bench/dist/gateway-child.js there (run pnpm install && pnpm run build in it)\n`);
  process.exit(1);
}
const gatewayNodeArgs = (args['gateway-node-args'] ?? '').split(' ').filter(Boolean);
const UPSTREAM_MS = 50;
/** POST /v2/emails calls the fake has answered so far (its counts, as its ack carries them). */
function sendsOf(counts: unknown): number {
  const send = (counts as { send?: unknown } | undefined)?.send;
  return typeof send === 'number' ? send : 0;
}
/** The queue's intake-only run: Cakemail answers after this, and one worker waits on it. */
const QUEUE_HELD_MS = 2000;
/** S2's open loop runs at this share of the gateway's own S2 capacity (at 100 %, any server queues). */
const S2_OPEN_SHARE = 0.8;
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

/** `before`: the `--ab` checkout's gateway. */
type Kind = 'gateway' | 'floor' | 'sink' | 'before';

async function main(): Promise<void> {
  // Before this process pins itself (availableParallelism() follows the affinity mask).
  const machine = { nproc: availableParallelism(), cpu: cpus()[0]?.model ?? '?', node: process.version, kernel: release() };
  const cores = pinning();
  if (cores) pinSelf(cores.load);
  const certs = await testCertificates();
  const fdLimit = openFileLimit();
  const s4Connections = Math.min(plan.s4Connections, Math.max(100, Math.floor((fdLimit - 200) / 2)));
  if (s4Connections < plan.s4Connections) log(`note: open-file limit ${fdLimit}: S4 opens ${s4Connections} sessions, not ${plan.s4Connections}`);

  log(`bench: ${quick ? 'quick' : 'full'} run; nproc ${machine.nproc}, ${machine.cpu}, node ${machine.node}, Linux ${machine.kernel}`);
  log(
    cores
      ? `pinning: servers on core ${cores.server}; load generator and fake Cakemail on core ${cores.load} (taskset)`
      : 'pinning: none (taskset missing or one core): numbers are not comparable to a pinned run',
  );

  const baseEnv = { PATH: process.env['PATH'] ?? '/usr/bin:/bin', HOME: process.env['HOME'] ?? '/tmp' };
  const fake = await startChild({ name: 'fake-cakemail', script: 'fake-child.js', env: baseEnv, core: cores?.load });
  const profileDir = args['profile-dir'] ?? join(tmpdir(), `bench-profiles-${process.pid}`);
  const MAX_MESSAGE_SIZE = String(64 * MiB);

  const gatewayEnv: Record<string, string> = {
    ...baseEnv,
    ...loopbackGatewayEnv(certs),
    LOG_LEVEL: args['log-level'] ?? 'info',
    LOG_FORMAT: 'json',
    CAKEMAIL_API_URL: fake.url ?? '',
    MAX_MESSAGE_SIZE,
    MAX_CONNECTIONS: '10000',
    MAX_CONNECTIONS_PER_IP: '0',
    MAX_MESSAGES_PER_SESSION: '100000000',
    // the in-flight cap must be at least MAX_MESSAGE_SIZE; S3 keeps its load under it
    MAX_INFLIGHT_BYTES: MAX_MESSAGE_SIZE,
    // at least UPSTREAM_DEADLINE_MS (60 s by default), so a shutdown can wait for a relay;
    // the gateway exits as soon as no session is left
    SHUTDOWN_TIMEOUT_MS: '60000',
  };
  // What this gateway build supports and its defaults, read as it reads them.
  const config = loadConfig(gatewayEnv);
  const supports = (name: string): boolean => (configKeys as readonly string[]).includes(name);
  const upstreamConnections = config.relay.connections;
  const inflightCap: number | undefined = config.limits.maxInflightBytes;
  /** The gateway's own default cap, for the record (the bench raises it for S3, see gatewayEnv). */
  const { MAX_INFLIGHT_BYTES: _raised, ...withoutCap } = gatewayEnv;
  const defaultInflightCap: number | undefined = loadConfig({ ...withoutCap, MAX_MESSAGE_SIZE: String(MiB) }).limits.maxInflightBytes;

  const startServer = (kind: Kind, scenario: string, extraEnv: Record<string, string> = {}): Promise<Child> => {
    const label = `${kind} (${scenario})`;
    const profileArgs = (who: string): string[] =>
      args.profile ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`, `--cpu-prof-name=${who}-${scenario.replace(/\W+/g, '-')}.cpuprofile`] : [];
    switch (kind) {
      case 'before':
        return startChild({
          name: label,
          script: join(abDir ?? '.', 'bench/dist/gateway-child.js'),
          core: cores?.server,
          env: { ...gatewayEnv, ...extraEnv },
        });
      case 'gateway':
        return startChild({
          name: label,
          script: 'gateway-child.js',
          core: cores?.server,
          nodeArgs: [
            ...gatewayNodeArgs,
            ...profileArgs('gateway'),
          ],
          env: { ...gatewayEnv, ...extraEnv },
        });
      case 'floor':
        return startChild({
          name: label,
          script: 'floor-child.js',
          core: cores?.server,
          nodeArgs: profileArgs('floor'),
          env: {
            ...baseEnv,
            TLS_CERT_PATH: certs.certPath,
            TLS_KEY_PATH: certs.keyPath,
            MAX_MESSAGE_SIZE,
            CAKEMAIL_API_URL: fake.url ?? '',
            FLOOR_CONNECTIONS: String(upstreamConnections),
          },
        });
      case 'sink':
        return startChild({
          name: label,
          script: 'sink-child.js',
          core: cores?.server,
          env: { ...baseEnv, TLS_CERT_PATH: certs.certPath, TLS_KEY_PATH: certs.keyPath, MAX_MESSAGE_SIZE },
        });
    }
  };
  const server = (child: Child): Server => ({ target: { host: '127.0.0.1', port: child.port }, pid: child.pid });

  let foreignMax = 0;
  /** Every round's own result, by scenario and kind, for the JSON file (the table shows their medians). */
  const eachRound: Record<string, unknown> = {};
  /**
   * Fresh servers of the kinds given for one scenario, all on the server core, driven in turn
   * (gateway, floor, sink, gateway, …) for `rounds` rounds; each kind's rounds combined by median.
   * Also watches what other processes on the machine take meanwhile (a noise indicator).
   */
  async function compare<K extends Kind, T extends object>(
    scenario: string,
    kinds: readonly K[],
    rounds: number,
    fn: (server: Server, kind: K, round: number) => Promise<T>,
    extraEnv: Partial<Record<Kind, Record<string, string>>> = {},
  ): Promise<Record<K, T>> {
    const started = await Promise.allSettled(kinds.map((kind) => startServer(kind, scenario, extraEnv[kind])));
    const children = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
    const stopAll = (): Promise<unknown> => Promise.all(children.map((c) => c.stop(args.profile ? 15_000 : 5000)));
    const refused = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (refused) {
      await stopAll();
      throw refused.reason;
    }
    try {
      const results = new Map<K, T[]>(kinds.map((k) => [k, []]));
      const pids = [...children.map((c) => c.pid), fake.pid];
      const busy = (): number => pids.reduce((sum, pid) => sum + cpuMicros(pid), 0);
      for (let round = 0; round < rounds; round++) {
        for (const [i, kind] of kinds.entries()) {
          const child = children[i];
          if (!child) throw new Error(`${scenario}: no ${kind}`);
          const sys0 = systemBusyMicros();
          const ours0 = busy();
          const self0 = process.cpuUsage();
          const t0 = performance.now();
          results.get(kind)?.push(await fn(server(child), kind, round));
          const self = process.cpuUsage(self0);
          const ours = busy() - ours0 + self.user + self.system;
          foreignMax = Math.max(foreignMax, (systemBusyMicros() - sys0 - ours) / ((performance.now() - t0) * 1000));
        }
      }
      eachRound[scenario] = Object.fromEntries(results);
      return Object.fromEntries(kinds.map((k) => [k, combineRounds(results.get(k) ?? [])])) as Record<K, T>;
    } finally {
      await stopAll();
    }
  }

  const rows: Row[] = [];
  const targets: TargetLine[] = [];
  const results: Record<string, unknown> = {};
  const notes: string[] = [];
  const problems: string[] = [];
  const errorsOf = (who: string, scenario: string, errors: Errors): void => {
    const list = Object.entries(errors);
    if (list.length) notes.push(`${scenario} ${who} errors: ${list.map(([k, v]) => `${k} ×${v}`).join(', ')}`);
  };
  const opts = { warmupMs: plan.warmupMs, measureMs: plan.measureMs, size: 2048 };

  // ---- S1: reused connections, closed loop
  let floorS1Rate: number | undefined;
  if (only.has('S1') || only.has('Q')) {
    log(`[${elapsed()}] S1 reused connections (gateway, floor, sink${abDir === undefined ? '' : `, before: ${abDir}`})…`);
    const kinds: Kind[] = abDir === undefined ? ['gateway', 'floor', 'sink'] : ['gateway', 'before', 'floor', 'sink'];
    /** Messages each server relayed in its unmeasured warm-up. */
    const warmed: Record<string, number> = {};
    const r = await compare('S1', kinds, rounds, async (s, kind, round) => {
      // S1 measures a server's steady state. A fresh one compiles its code during its first
      // seconds under load (V8's JIT), the gateway, with more code, for longer: with only the
      // rounds' 1.5 s warm-ups its first round cost 17-18 % more CPU a message than its third,
      // the floor's 6-10 % (BENCHMARKS.md, "S1 measured on warm servers"). Each server first runs one
      // unmeasured round of the same load, as S2's open loop and S5 do.
      if (round === 0) warmed[kind] = (await s1Reused(s, { ...opts, connections: 20, tag: `${kind[0] ?? 'x'}1w` })).messages;
      return s1Reused(s, { ...opts, connections: 20, tag: `${kind[0] ?? 'x'}1r${round}` });
    });
    const { gateway: g, floor: f, sink: k, before: b } = r;
    if (!g || !f || !k) throw new Error('S1: a server was not measured');
    results['S1'] = { ...r, warmupMessages: warmed };
    notes.push(`S1: servers warmed first by an unmeasured round of the same load (${Object.entries(warmed).map(([k, n]) => `${k} ${fmt(n, 0)} messages`).join(', ')})`);
    floorS1Rate = f.messagesPerSecond;
    rows.push({ name: 'S1 reused (20 conns, 2 KiB): messages/s', gateway: g.messagesPerSecond, floor: f.messagesPerSecond, sink: k.messagesPerSecond, unit: 'msg/s' });
    rows.push({ name: 'S1 server CPU per message', gateway: g.cpuMicrosPerMessage, floor: f.cpuMicrosPerMessage, sink: k.cpuMicrosPerMessage, unit: 'µs' });
    rows.push({ name: 'S1 server CPU busy', gateway: g.serverCpuShare * 100, floor: f.serverCpuShare * 100, sink: k.serverCpuShare * 100, unit: '% of a core', ratios: false });
    rows.push({ name: 'S1 load generator CPU busy', gateway: g.loadCpuShare * 100, floor: f.loadCpuShare * 100, sink: k.loadCpuShare * 100, unit: '% of a core', ratios: false });
    if (b) {
      rows.push({ name: 'S1 --ab build: messages/s', gateway: b.messagesPerSecond, floor: f.messagesPerSecond, sink: k.messagesPerSecond, unit: 'msg/s' });
      rows.push({ name: 'S1 --ab build: server CPU per message', gateway: b.cpuMicrosPerMessage, floor: f.cpuMicrosPerMessage, sink: k.cpuMicrosPerMessage, unit: 'µs' });
    }
    for (const [who, res] of Object.entries(r)) errorsOf(who, 'S1', res.errors);
    if (!g.messages || !f.messages || !k.messages) problems.push('S1 moved no mail');
    targets.push(atLeastTimes('S1', 'gateway msg/s', g.messagesPerSecond, 0.8, f.messagesPerSecond));

    // ---- Queue mode: S1 again with QUEUE_MODE=always, against the floor just measured
    if (!only.has('Q')) {
      // not asked for
    } else if (!supports('QUEUE_MODE')) {
      targets.push(notMeasured('queue', 'S1 with QUEUE_MODE=always ≥ 0.6 × floor', 'n/a (no queue mode yet)'));
    } else {
      log(`[${elapsed()}] S1 with QUEUE_MODE=always…`);
      // a redis-server of its own with the persistence the queue's promise needs (AOF, noeviction)
      const redis = await startPersistentRedisServer({ appendfsync: 'everysec', maxmemoryPolicy: 'noeviction' });
      try {
        // Not with --ab: a gateway's workers go on delivering its backlog during the other's
        // rounds, on the same core, so the two would share their CPU.
        const queueEnv = {
          QUEUE_MODE: 'always',
          REDIS_URL: redis.url,
          // required with REDIS_URL
          AUTH_LOCKOUT_KEY: randomBytes(48).toString('base64'),
          QUEUE_ENCRYPTION_KEY: randomBytes(32).toString('base64'),
        };
        const sends = async (): Promise<number> => sendsOf(await fake.request({ type: 'delay', id: 0, ms: 0 }));
        const q = await compare('S1-queue', ['gateway'], rounds, (s, _kind, round) => s1Reused(s, { ...opts, connections: 20, tag: `q1r${round}`, sends }), {
          gateway: queueEnv,
        });
        results['S1-queue'] = q;
        rows.push({ name: 'S1 QUEUE_MODE=always: messages/s', gateway: q.gateway.messagesPerSecond, floor: f.messagesPerSecond, unit: 'msg/s' });
        rows.push({ name: 'S1 QUEUE_MODE=always: delivered meanwhile', gateway: q.gateway.sendsPerSecond ?? Number.NaN, floor: f.messagesPerSecond, unit: 'msg/s' });
        rows.push({ name: 'S1 QUEUE_MODE=always: server CPU per message', gateway: q.gateway.cpuMicrosPerMessage, floor: f.cpuMicrosPerMessage, unit: 'µs' });
        errorsOf('gateway (queue)', 'S1', q.gateway.errors);
        targets.push(atLeastTimes('queue', 'S1 gateway msg/s with QUEUE_MODE=always', q.gateway.messagesPerSecond, 0.6, f.messagesPerSecond));

        // Delivery alone: a gateway that takes no mail drains the backlog the run above left
        // (the 250 of queue mode comes before the send, and the intake outran the workers).
        const drain = await compare('queue-drain', ['gateway'], 1, (s) => drainQueue(s, { warmupMs: plan.warmupMs, measureMs: plan.measureMs, sends }), {
          gateway: queueEnv,
        });
        results['queue-drain'] = drain;
        const d = drain.gateway;
        rows.push({ name: 'Queue delivery alone (backlog drained): messages/s', gateway: d.deliveredPerSecond, floor: f.messagesPerSecond, unit: 'msg/s' });
        rows.push({ name: 'Queue delivery alone: CPU per message', gateway: d.cpuMicrosPerDelivery, floor: f.cpuMicrosPerMessage, unit: 'µs' });
        if (d.tailRate < 0.8) notes.push(`queue: the backlog ran out during the delivery-alone window (last fifth at ${fmt(d.tailRate, 2)} of the window's rate): its rate is a lower bound`);

        // The client's path alone: the same with delivery held back (one worker, Cakemail answering
        // after 2 s), so the core only takes messages in and stores them. Reported, not a target;
        // with delivery alone above, it gives the rate one core sustains doing both.
        const sendsBefore = sendsOf(await fake.request({ type: 'delay', id: 0, ms: QUEUE_HELD_MS }));
        let intake: Record<'gateway', S1Result> | undefined;
        try {
          intake = await compare(
            'S1-queue-intake',
            ['gateway'],
            rounds,
            (s, _kind, round) => s1Reused(s, { ...opts, connections: 20, tag: `qi1r${round}` }),
            { gateway: { ...queueEnv, QUEUE_CONCURRENCY: '1' } },
          );
        } finally {
          const delivered = sendsOf(await fake.request({ type: 'delay', id: 0, ms: 0 })) - sendsBefore;
          if (intake) {
            results['S1-queue-intake'] = { ...intake, deliveredMeanwhile: delivered };
            const g = intake.gateway;
            rows.push({ name: 'S1 QUEUE_MODE=always, intake only: messages/s', gateway: g.messagesPerSecond, floor: f.messagesPerSecond, unit: 'msg/s' });
            rows.push({ name: 'S1 QUEUE_MODE=always, intake only: CPU per message', gateway: g.cpuMicrosPerMessage, floor: f.cpuMicrosPerMessage, unit: 'µs' });
            // One core taking messages in and delivering each: what it costs to store one plus to deliver one.
            const sustained = g.cpuMicrosPerMessage + d.cpuMicrosPerDelivery;
            rows.push({ name: 'Queue mode sustained on one core (intake + delivery): messages/s', gateway: 1e6 / sustained, floor: f.messagesPerSecond, unit: 'msg/s' });
            rows.push({ name: 'Queue mode sustained: CPU per message', gateway: sustained, floor: f.cpuMicrosPerMessage, unit: 'µs' });
            errorsOf('gateway (queue intake)', 'S1', g.errors);
            notes.push(
              `queue: the target's rate counts 250 replies, which queue mode sends once a message is stored: in that run the workers delivered ` +
                `${fmt(q.gateway.sendsPerSecond ?? Number.NaN)} messages/s while ${fmt(q.gateway.messagesPerSecond)} were taken in, so the backlog grew. ` +
                `"Intake only" is S1 with one queue worker and Cakemail answering after ${QUEUE_HELD_MS / 1000} s (${fmt(delivered)} sends for ` +
                `${fmt(g.messages)} messages taken in): the client's path alone. "Sustained" is the rate at which one core stores and delivers ` +
                `every message, 1 s / (intake CPU + delivery CPU per message): ${fmt(ratio(1e6 / sustained, f.messagesPerSecond), 2)} of the floor`,
            );
          }
        }
      } catch (err) {
        const why = (err instanceof Error ? err.message : String(err)).split('\n').slice(0, 3).join(' ');
        targets.push(notMeasured('queue', 'S1 with QUEUE_MODE=always ≥ 0.6 × floor', `n/a (the gateway did not run with QUEUE_MODE=always: ${why})`));
      } finally {
        await redis.stop();
      }
    }
  }

  // ---- S2: one message per connection
  if (only.has('S2')) {
    log(`[${elapsed()}] S2 one message per connection, capacity (closed loop, 50 clients)…`);
    const c = await compare('S2', ['gateway', 'floor'], rounds, (s, kind, round) =>
      s2PerConnection(s, { ...opts, clients: 50, tag: `${kind[0] ?? 'x'}2r${round}` }),
    );
    const rate = Math.max(10, Math.round(S2_OPEN_SHARE * c.gateway.sessionsPerSecond));
    log(`[${elapsed()}] S2 open loop at ${rate} sessions/s (${S2_OPEN_SHARE * 100} % of the gateway's capacity)…`);
    const maxOpen = Math.max(100, Math.min(1000, Math.floor(fdLimit / 4)));
    const o = await compare('S2-open', ['gateway', 'floor'], 1, async (s, kind) => {
      // A fresh server spends its first thousand or so sessions compiling its code (V8's JIT),
      // while the capacity above is the median of rounds on a server already warm: the open loop
      // starts on a server warmed the same way (the closed loop, unmeasured).
      await s2PerConnection(s, { ...opts, clients: 50, tag: `${kind[0] ?? 'x'}2w` });
      return s2OpenLoop(s, { rate, warmupMs: plan.warmupMs, measureMs: plan.openMeasureMs, size: 2048, tag: `${kind[0] ?? 'x'}2o`, maxOpen });
    });
    results['S2'] = { capacity: c, openLoop: o };
    const g = c.gateway;
    const f = c.floor;
    rows.push({ name: 'S2 one message per connection: sessions/s', gateway: g.sessionsPerSecond, floor: f.sessionsPerSecond, unit: 'sessions/s' });
    rows.push({ name: 'S2 server CPU per session', gateway: g.cpuMicrosPerSession, floor: f.cpuMicrosPerSession, unit: 'µs' });
    rows.push({ name: 'S2 server CPU busy', gateway: g.serverCpuShare * 100, floor: f.serverCpuShare * 100, unit: '% of a core', ratios: false });
    rows.push({ name: 'S2 time to greeting, closed loop (saturated), p50', gateway: g.greetingP50, floor: f.greetingP50, unit: 'ms', digits: 1 });
    rows.push({ name: 'S2 time to greeting, unloaded server, p50', gateway: g.unloadedGreetingP50, floor: f.unloadedGreetingP50, unit: 'ms', digits: 2 });
    rows.push({ name: `S2 open loop at ${rate}/s: greeting p50`, gateway: o.gateway.greetingP50, floor: o.floor.greetingP50, unit: 'ms', digits: 2 });
    rows.push({ name: 'S2 open loop: greeting p99', gateway: o.gateway.greetingP99, floor: o.floor.greetingP99, unit: 'ms', digits: 2 });
    rows.push({ name: 'S2 open loop: time to final 250 p50', gateway: o.gateway.finalP50, floor: o.floor.finalP50, unit: 'ms', digits: 1 });
    rows.push({ name: 'S2 open loop: time to final 250 p99', gateway: o.gateway.finalP99, floor: o.floor.finalP99, unit: 'ms', digits: 1 });
    rows.push({ name: 'S2 open loop: sessions completed/s', gateway: o.gateway.completedPerSecond, floor: o.floor.completedPerSecond, unit: 'sessions/s' });
    rows.push({ name: 'S2 open loop: server CPU per session', gateway: o.gateway.cpuMicrosPerSession, floor: o.floor.cpuMicrosPerSession, unit: 'µs' });
    for (const [who, res] of Object.entries(c)) errorsOf(who, 'S2', res.errors);
    for (const [who, res] of Object.entries(o)) errorsOf(who, 'S2 open loop', res.errors);
    notes.push(
      `S2 open loop: load generator start lag p99 gateway ${fmt(o.gateway.lagP99, 1)} ms, floor ${fmt(o.floor.lagP99, 1)} ms; ` +
        `arrivals skipped (${maxOpen} sessions already open): gateway ${o.gateway.skipped}, floor ${o.floor.skipped}`,
    );
    if (!g.sessions || !f.sessions || !o.gateway.sessions) problems.push('S2 completed no session');
    targets.push(atLeastTimes('S2', 'gateway sessions/s', g.sessionsPerSecond, 0.8, f.sessionsPerSecond));
    targets.push(
      allOf('S2 greeting', [
        below('S2 greeting', `open-loop greeting p50 at ${rate}/s`, o.gateway.greetingP50, 5, 'ms'),
        below('S2 greeting', 'p99', o.gateway.greetingP99, 50, 'ms'),
      ]),
    );
  }

  // ---- S3: memory per in-flight byte, four kinds of large message
  if (only.has('S3')) {
    const capText =
      typeof inflightCap === 'number' ? `MAX_INFLIGHT_BYTES ${fmt(inflightCap / MiB, 1)} MiB (the bench's setting, its MAX_MESSAGE_SIZE; the gateway's default is ${fmt((defaultInflightCap ?? 0) / MiB, 1)} MiB)` : 'MAX_INFLIGHT_BYTES: not in this gateway build (no cap on bytes in flight)';
    // Under the cap: a message past it is refused (4.3.1), and this measures memory, not refusals.
    const concurrent = underCap(plan.s3Concurrent, plan.s3Bytes, inflightCap);
    log(`[${elapsed()}] S3 memory: ${concurrent} × ${fmt(plan.s3Bytes / MiB)} MiB messages at once, per kind; ${capText}…`);
    const s3: Record<string, unknown> = { inflightCap: inflightCap ?? null };
    for (const kind of LARGE_KINDS) {
      const r = await compare(`S3-${kind}`, ['gateway', 'floor'], 1, (s, who) =>
        s3Memory(s, { kind, bytes: plan.s3Bytes, concurrent, tag: `${who[0] ?? 'x'}3${kind[0] ?? ''}` }),
      );
      s3[kind] = r;
      const g = r.gateway;
      const f = r.floor;
      rows.push({ name: `S3 ${kind}: memory per in-flight byte`, gateway: g.perInflightByte, floor: f.perInflightByte, unit: '×', digits: 2 });
      rows.push({ name: `S3 ${kind}: peak RSS growth`, gateway: g.growth / MiB, floor: f.growth / MiB, unit: `MiB (${fmt(g.inflightBytes / MiB, 1)} MiB in flight)`, digits: 1 });
      rows.push({ name: `S3 ${kind}: time to the last reply`, gateway: g.seconds * 1000, floor: f.seconds * 1000, unit: 'ms' });
      notes.push(`S3 ${kind} replies: gateway ${g.replies}; floor ${f.replies} (peak by ${g.method})`);
      if (g.accepted === 0 && kind !== 'control') problems.push(`S3 ${kind}: the gateway accepted none (${g.replies})`);
      targets.push(atMost(`S3 ${kind}`, 'peak RSS growth per byte in flight', g.perInflightByte, 2, '×'));
    }
    results['S3'] = s3;
    notes.push(`S3: ${capText}`);
  }

  // ---- S4: idle sessions
  if (only.has('S4')) {
    log(`[${elapsed()}] S4 ${s4Connections} idle connections…`);
    const r = await compare('S4', ['gateway', 'floor'], 1, (s) => s4Idle(s, { connections: s4Connections }));
    results['S4'] = r;
    rows.push({ name: `S4 ${r.gateway.connections} idle TLS sessions: RSS per connection`, gateway: r.gateway.perConnection / 1024, floor: r.floor.perConnection / 1024, unit: 'KiB', digits: 1 });
    rows.push({ name: 'S4 time to open them all', gateway: r.gateway.openSeconds * 1000, floor: r.floor.openSeconds * 1000, unit: 'ms' });
    targets.push(atMost('S4', 'RSS per idle connection', r.gateway.perConnection / 1024, 64, 'KiB', 1));
  }

  // ---- S5: upstream latency, open loop at half the floor's S1 rate
  if (only.has('S5')) {
    const rate = args['s5-rate'] ? Number(args['s5-rate']) : Math.max(50, Math.round((floorS1Rate ?? 1000) / 2));
    if (floorS1Rate === undefined && !args['s5-rate']) notes.push('S5 rate: S1 did not run, 500 msg/s used');
    log(`[${elapsed()}] S5 upstream latency ${UPSTREAM_MS} ms, open loop at ${rate} msg/s…`);
    /** Messages each server relayed in its unmeasured warm-up. */
    const warmed: Record<string, number> = {};
    const r = await compare('S5', ['gateway', 'floor'], rounds, async (s, kind, round) => {
      // A fresh server compiles its code during its first seconds under load (V8's JIT), and an
      // open loop started on it measures that: the first third of a cold run held nearly all of
      // the tail (BENCHMARKS.md, "S5 measured on warm servers"). Each server is warmed first by
      // one unmeasured round of S1's closed loop, as S2's open loop is. A p99 over one 10 s
      // window moves with the machine's bursts, so the servers alternate for `rounds` rounds,
      // and each percentile is the median of the rounds'.
      if (round === 0) warmed[kind] = (await s1Reused(s, { ...opts, connections: 20, tag: `${kind[0] ?? 'x'}5w` })).messages;
      // The fake delays every POST /v2/emails: the gateway's and the floor's alike.
      await fake.request({ type: 'delay', id: 0, ms: UPSTREAM_MS });
      try {
        return await s5Latency(s, { ...opts, measureMs: plan.s5MeasureMs, rate, upstreamMs: UPSTREAM_MS, tag: `${kind[0] ?? 'x'}5r${round}` });
      } finally {
        await fake.request({ type: 'delay', id: 0, ms: 0 });
      }
    });
    results['S5'] = { ...r, warmupMessages: warmed };
    const g = r.gateway;
    const f = r.floor;
    rows.push({ name: `S5 upstream ${UPSTREAM_MS} ms at ${rate} msg/s: dot → 250 p50`, gateway: g.latencyP50, floor: f.latencyP50, unit: 'ms', digits: 2 });
    rows.push({ name: 'S5 dot → 250 p99', gateway: g.latencyP99, floor: f.latencyP99, unit: 'ms', digits: 2 });
    rows.push({ name: 'S5 achieved rate', gateway: g.achievedRate, floor: f.achievedRate, unit: 'msg/s' });
    rows.push({ name: 'S5 server CPU per message', gateway: g.cpuMicrosPerMessage, floor: f.cpuMicrosPerMessage, unit: 'µs' });
    errorsOf('gateway', 'S5', g.errors);
    errorsOf('floor', 'S5', f.errors);
    notes.push(
      `S5: load generator start lag p99 gateway ${fmt(g.lagP99, 1)} ms, floor ${fmt(f.lagP99, 1)} ms; starts skipped for want of a free connection: gateway ${g.skipped}, floor ${f.skipped}`,
      `S5: servers warmed first by an unmeasured S1 round (gateway ${fmt(warmed['gateway'] ?? 0, 0)} messages, floor ${fmt(warmed['floor'] ?? 0, 0)}); p50/p99 are the medians of ${rounds} round(s)`,
    );
    if (!g.messages || !f.messages) problems.push('S5 moved no mail');
    targets.push(below('S5', 'gateway p99 − floor p99', g.latencyP99 - f.latencyP99, 5, 'ms'));
  }

  const counts = await fake.request({ type: 'delay', id: 0, ms: 0 });
  await fake.stop();

  // ---- report
  log('');
  for (const line of renderTable(rows)) log(line);
  log('');
  for (const line of targets) log(renderTarget(line));
  if (notes.length) {
    log('');
    for (const note of notes) log(`note: ${note}`);
  }
  log(`note: other processes on this machine took up to ${fmt(Math.max(0, foreignMax) * 100)}% of a core during a measurement (noise)`);
  log(`note: fake Cakemail calls: ${JSON.stringify(counts)}`);
  if (args.markdown) {
    log('');
    for (const line of renderMarkdown(rows)) log(line);
    log('');
    log('```');
    for (const line of targets) log(renderTarget(line));
    log('```');
  }
  if (args.profile) log(`profiles: ${profileDir} (summarise: node bench/dist/profile-summary.js FILE [TOP] [SKIP_MS])`);
  const json = args.json ?? join(tmpdir(), 'cakemail-smtp-bench.json');
  writeFileSync(json, `${JSON.stringify({ quick, date: new Date().toISOString(), machine, rows, targets, results, notes, rounds: eachRound }, null, 2)}\n`);
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
