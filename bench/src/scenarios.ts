/**
 * The five scenarios, each run the same way against one server (the gateway or the baseline).
 * Loops are bounded by time and count; every connection is closed at the end.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { cpuMicros, memory, resetPeak, sampleRss } from './procstat.js';
import { SmtpConnection, now, type Login, type Target } from './smtp-conn.js';
import { SENDER, largeMessages, smallMessages, type LargeKind, type SmallMessages } from './messages.js';
import { openLoop } from './schedule.js';
import { percentile, perUnit } from './stats.js';

export interface Server {
  readonly target: Target;
  readonly pid: number;
}

export const LOGIN: Login = { user: 'dev@example.com', password: 'dev-password' };

/** Source addresses for the load, spread so no client address runs out of ports. */
const SOURCES = ['127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5', '127.0.0.6', '127.0.0.7', '127.0.0.8', '127.0.0.9'];
const source = (i: number): string => SOURCES[i % SOURCES.length] ?? '127.0.0.1';

/** Failures by step and reply, e.g. `DATA 451` → 3. */
export type Errors = Record<string, number>;

function countError(errors: Errors, err: unknown): void {
  const e = err as { step?: string; reply?: { code: number } };
  const key = e.step ? `${e.step} ${e.reply?.code ?? 'closed'}` : String(err instanceof Error ? err.message : err).slice(0, 80);
  errors[key] = (errors[key] ?? 0) + 1;
}

async function openMany(server: Server, count: number, login: Login | undefined, concurrency: number): Promise<SmtpConnection[]> {
  const conns: SmtpConnection[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, count) }, async () => {
      while (next < count) {
        const i = next++;
        conns.push(await SmtpConnection.ready(server.target, login, { localAddress: source(i) }));
      }
    }),
  );
  return conns;
}

// ---- S1 ---------------------------------------------------------------------------------------

export interface S1Result {
  readonly messagesPerSecond: number;
  /** Sends Cakemail answered per second over the window (with `opts.sends`), e.g. a queue's workers delivering meanwhile. */
  readonly sendsPerSecond?: number;
  readonly cpuMicrosPerMessage: number;
  /** Server CPU over the window, as a share of one core. */
  readonly serverCpuShare: number;
  /** This (load) process's CPU over the window, as a share of one core. */
  readonly loadCpuShare: number;
  readonly messages: number;
  readonly errors: Errors;
}

export async function s1Reused(
  server: Server,
  opts: { connections: number; warmupMs: number; measureMs: number; size: number; tag: string; sends?: () => Promise<number> },
): Promise<S1Result> {
  const conns = await openMany(server, opts.connections, LOGIN, opts.connections);
  const messages = smallMessages(opts.size, opts.tag);
  const errors: Errors = {};
  let seq = 0;
  let counting = false;
  let done = 0;
  let stop = false;
  const loops = conns.map(async (conn) => {
    while (!stop && !conn.closed) {
      const { to, data } = messages.next(seq++);
      try {
        const { reply } = await conn.send(SENDER, to, data);
        if (reply.code === 250) {
          if (counting) done++;
        } else countError(errors, { step: 'final', reply });
      } catch (err) {
        countError(errors, err);
        return;
      }
    }
  });
  await sleep(opts.warmupMs);
  const sends0 = await opts.sends?.();
  const cpu0 = cpuMicros(server.pid);
  const self0 = process.cpuUsage();
  const t0 = now();
  counting = true;
  await sleep(opts.measureMs);
  counting = false;
  const elapsed = now() - t0;
  const cpu1 = cpuMicros(server.pid);
  const self = process.cpuUsage(self0);
  const sends1 = await opts.sends?.();
  stop = true;
  await Promise.all(loops);
  await Promise.all(conns.map((conn) => conn.quit()));
  return {
    messagesPerSecond: (done * 1000) / elapsed,
    ...(sends0 === undefined || sends1 === undefined ? {} : { sendsPerSecond: ((sends1 - sends0) * 1000) / elapsed }),
    cpuMicrosPerMessage: perUnit(cpu1 - cpu0, done),
    serverCpuShare: (cpu1 - cpu0) / (elapsed * 1000),
    loadCpuShare: (self.user + self.system) / (elapsed * 1000),
    messages: done,
    errors,
  };
}

// ---- Queue mode: delivery alone -----------------------------------------------------------------

export interface DrainResult {
  /** Sends Cakemail answered per second while the workers drained the backlog. */
  readonly deliveredPerSecond: number;
  readonly cpuMicrosPerDelivery: number;
  readonly serverCpuShare: number;
  readonly delivered: number;
  /** The send rate of the window's last fifth over its whole: well below 1 when the backlog ran out. */
  readonly tailRate: number;
}

/**
 * A gateway whose queue holds a backlog and takes no mail: its workers' sends and its CPU over a
 * window, after `warmupMs` (the workers start). `sends` answers the fake's send count so far.
 */
export async function drainQueue(server: Server, opts: { warmupMs: number; measureMs: number; sends: () => Promise<number> }): Promise<DrainResult> {
  await sleep(opts.warmupMs);
  const sends0 = await opts.sends();
  const cpu0 = cpuMicros(server.pid);
  const t0 = now();
  await sleep(opts.measureMs * 0.8);
  const sendsTail = await opts.sends();
  const tTail = now();
  await sleep(opts.measureMs * 0.2);
  const sends1 = await opts.sends();
  const cpu1 = cpuMicros(server.pid);
  const t1 = now();
  const elapsed = t1 - t0;
  const delivered = sends1 - sends0;
  return {
    deliveredPerSecond: (delivered * 1000) / elapsed,
    cpuMicrosPerDelivery: perUnit(cpu1 - cpu0, delivered),
    serverCpuShare: (cpu1 - cpu0) / (elapsed * 1000),
    delivered,
    tailRate: delivered > 0 ? (sends1 - sendsTail) / (t1 - tTail) / (delivered / elapsed) : 0,
  };
}

// ---- S2 ---------------------------------------------------------------------------------------

/**
 * One session as a new client runs it: connect, greeting, EHLO, STARTTLS, EHLO, AUTH, one
 * message, QUIT. Times in ms from the connect call.
 */
async function oneSession(server: Server, i: number, messages: SmallMessages, seq: number): Promise<{ greetingMs: number; finalMs: number; reply: { code: number; text: string } }> {
  const started = now();
  const { conn, greetingMs } = await SmtpConnection.open(server.target, { localAddress: source(i) });
  try {
    await conn.ehlo();
    await conn.startTls();
    await conn.auth(LOGIN);
    const { to, data } = messages.next(seq);
    const { reply, doneAt } = await conn.send(SENDER, to, data);
    await conn.quit();
    return { greetingMs, finalMs: doneAt - started, reply };
  } finally {
    conn.destroy();
  }
}

export interface S2Result {
  /** Time to greeting of 10 connections, one at a time, before the load: the server's own latency. */
  readonly unloadedGreetingP50: number;
  readonly sessionsPerSecond: number;
  readonly greetingP50: number;
  readonly greetingP99: number;
  readonly finalP50: number;
  readonly finalP99: number;
  readonly cpuMicrosPerSession: number;
  readonly serverCpuShare: number;
  readonly loadCpuShare: number;
  readonly sessions: number;
  readonly errors: Errors;
}

/** S2 capacity: `clients` closed loops, each a new connection per message. */
export async function s2PerConnection(server: Server, opts: { clients: number; warmupMs: number; measureMs: number; size: number; tag: string }): Promise<S2Result> {
  const messages = smallMessages(opts.size, opts.tag);
  const errors: Errors = {};
  const greeting: number[] = [];
  const final: number[] = [];
  let seq = 0;
  let counting = false;
  let stop = false;
  let done = 0;
  const unloaded: number[] = [];
  for (let i = 0; i < 10; i++) {
    const { conn, greetingMs } = await SmtpConnection.open(server.target);
    unloaded.push(greetingMs);
    conn.destroy();
  }
  const loops = Array.from({ length: opts.clients }, async (_, client) => {
    let n = client;
    while (!stop) {
      try {
        const { greetingMs, finalMs, reply } = await oneSession(server, n, messages, seq++);
        if (reply.code !== 250) countError(errors, { step: 'final', reply });
        else if (counting) {
          done++;
          greeting.push(greetingMs);
          final.push(finalMs);
        }
      } catch (err) {
        countError(errors, err);
        await sleep(10); // a refused connection does not spin
      }
      n += opts.clients;
    }
  });
  await sleep(opts.warmupMs);
  const cpu0 = cpuMicros(server.pid);
  const self0 = process.cpuUsage();
  const t0 = now();
  counting = true;
  await sleep(opts.measureMs);
  counting = false;
  const elapsed = now() - t0;
  const cpu1 = cpuMicros(server.pid);
  const self = process.cpuUsage(self0);
  stop = true;
  await Promise.all(loops);
  return {
    unloadedGreetingP50: percentile(unloaded, 50),
    sessionsPerSecond: (done * 1000) / elapsed,
    greetingP50: percentile(greeting, 50),
    greetingP99: percentile(greeting, 99),
    finalP50: percentile(final, 50),
    finalP99: percentile(final, 99),
    cpuMicrosPerSession: perUnit(cpu1 - cpu0, done),
    serverCpuShare: (cpu1 - cpu0) / (elapsed * 1000),
    loadCpuShare: (self.user + self.system) / (elapsed * 1000),
    sessions: done,
    errors,
  };
}

export interface S2OpenResult {
  /** Sessions started per second (the schedule). */
  readonly rate: number;
  /** Sessions completed with a 250 per second of the measured window. */
  readonly completedPerSecond: number;
  readonly greetingP50: number;
  readonly greetingP99: number;
  readonly finalP50: number;
  readonly finalP99: number;
  /** How late the load generator started sessions (its own delay, p99): noise, not the server. */
  readonly lagP99: number;
  readonly cpuMicrosPerSession: number;
  readonly serverCpuShare: number;
  readonly sessions: number;
  /** Arrivals not started: `maxOpen` sessions were already open. */
  readonly skipped: number;
  readonly errors: Errors;
}

/**
 * S2 latency, open loop: new sessions start at `rate` per second on a schedule, whatever the
 * earlier ones are doing, up to `maxOpen` at once. Arrivals due in the warm-up are not measured.
 */
export async function s2OpenLoop(server: Server, opts: { rate: number; warmupMs: number; measureMs: number; size: number; tag: string; maxOpen: number }): Promise<S2OpenResult> {
  const messages = smallMessages(opts.size, opts.tag);
  const errors: Errors = {};
  const greeting: number[] = [];
  const final: number[] = [];
  const lags: number[] = [];
  const open = new Set<Promise<void>>();
  let done = 0;
  let skipped = 0;
  let cpu0 = 0;
  let cpuStart = 0;
  await openLoop({
    rate: opts.rate,
    durationMs: opts.warmupMs + opts.measureMs,
    start: ({ index, scheduledMs, lagMs }) => {
      const measured = scheduledMs >= opts.warmupMs;
      if (measured && cpuStart === 0) {
        cpu0 = cpuMicros(server.pid);
        cpuStart = now();
      }
      if (open.size >= opts.maxOpen) {
        if (measured) skipped++;
        return false;
      }
      if (measured) lags.push(lagMs);
      const p = oneSession(server, index, messages, index).then(
        ({ greetingMs, finalMs, reply }) => {
          if (reply.code !== 250) countError(errors, { step: 'final', reply });
          else if (measured) {
            done++;
            greeting.push(greetingMs);
            final.push(finalMs);
          }
        },
        (err: unknown) => countError(errors, err),
      );
      open.add(p);
      void p.finally(() => open.delete(p));
      return true;
    },
  });
  await Promise.all(open);
  const cpu = cpuMicros(server.pid) - cpu0;
  const elapsed = cpuStart ? now() - cpuStart : Number.NaN;
  return {
    rate: opts.rate,
    completedPerSecond: (done * 1000) / opts.measureMs,
    greetingP50: percentile(greeting, 50),
    greetingP99: percentile(greeting, 99),
    finalP50: percentile(final, 50),
    finalP99: percentile(final, 99),
    lagP99: percentile(lags, 99),
    cpuMicrosPerSession: perUnit(cpu, done),
    serverCpuShare: cpu / (elapsed * 1000),
    sessions: done,
    skipped,
    errors,
  };
}

// ---- S3 ---------------------------------------------------------------------------------------

export interface S3Result {
  readonly kind: LargeKind;
  /** Messages sent at once, each on its own session. */
  readonly concurrent: number;
  /** Bytes of one message on the wire (final dot excluded). */
  readonly messageBytes: number;
  /** concurrent × messageBytes: what the server held in flight at the peak, at most. */
  readonly inflightBytes: number;
  readonly idleRss: number;
  readonly peakRss: number;
  /** peakRss − idleRss */
  readonly growth: number;
  /** growth / inflightBytes: memory per in-flight byte. */
  readonly perInflightByte: number;
  /** `hwm` when the kernel's peak could be reset, `sampled` otherwise. */
  readonly method: 'hwm' | 'sampled';
  /** The distinct final replies, e.g. `250 ×3; 451 4.3.1 … ×1`. */
  readonly replies: string;
  readonly accepted: number;
  /** From the first byte sent to the last reply. */
  readonly seconds: number;
}

/**
 * `concurrent` sessions, each warmed with a small message, then each sends one `kind` message of
 * about `bytes` bytes, all at once. Peak RSS growth over the idle RSS measured just before.
 */
export async function s3Memory(server: Server, opts: { kind: LargeKind; bytes: number; concurrent: number; tag: string }): Promise<S3Result> {
  const conns = await openMany(server, opts.concurrent, LOGIN, opts.concurrent);
  const warm = smallMessages(2048, `${opts.tag}w`);
  await Promise.all(
    conns.map(async (conn, i) => {
      const { to, data } = warm.next(i);
      const { reply } = await conn.send(SENDER, to, data);
      if (reply.code !== 250) throw new Error(`S3 warm-up message refused: ${reply.code} ${reply.text}`);
    }),
  );
  const factory = largeMessages(opts.kind, opts.bytes);
  const messages = conns.map((_, i) => {
    const to = `r${opts.tag}-${opts.kind}-${i}@example.net`;
    return { to, data: factory.message(to, i) };
  });
  await sleep(500);
  const idleRss = memory(server.pid).rss;
  const method = resetPeak(server.pid) ? 'hwm' : 'sampled';
  const sampler = sampleRss(server.pid);
  const t0 = now();
  const replies = await Promise.all(conns.map((conn, i) => conn.send(SENDER, messages[i]?.to ?? '', messages[i]?.data ?? Buffer.alloc(0)).then(({ reply }) => reply)));
  const seconds = (now() - t0) / 1000;
  await sleep(200); // anything the server still does after its replies
  const sampled = sampler.stop();
  const peakRss = Math.max(sampled, method === 'hwm' ? memory(server.pid).hwm : 0);
  await Promise.all(conns.map((conn) => conn.quit()));
  const messageBytes = (messages[0]?.data.length ?? 3) - 3; // without the final dot
  const inflightBytes = messageBytes * conns.length;
  const growth = peakRss - idleRss;
  const byReply = new Map<string, number>();
  for (const r of replies) {
    // A 250 carries ids, unique per message: grouped by its code alone.
    const key = r.code === 250 ? '250' : `${r.code} ${r.text.slice(4, 80)}`;
    byReply.set(key, (byReply.get(key) ?? 0) + 1);
  }
  return {
    kind: opts.kind,
    concurrent: conns.length,
    messageBytes,
    inflightBytes,
    idleRss,
    peakRss,
    growth,
    perInflightByte: perUnit(growth, inflightBytes),
    method,
    replies: [...byReply].map(([k, n]) => `${k} ×${n}`).join('; '),
    accepted: replies.filter((r) => r.code === 250).length,
    seconds,
  };
}

// ---- S4 ---------------------------------------------------------------------------------------

export interface S4Result {
  readonly connections: number;
  readonly idleRss: number;
  readonly loadedRss: number;
  readonly perConnection: number;
  readonly openSeconds: number;
}

export async function s4Idle(server: Server, opts: { connections: number }): Promise<S4Result> {
  // Warm the TLS and EHLO paths, then measure from a settled state.
  const warm = await openMany(server, 20, undefined, 20);
  await Promise.all(warm.map((conn) => conn.quit()));
  await sleep(1000);
  const idleRss = memory(server.pid).rss;
  const t0 = now();
  const conns = await openMany(server, opts.connections, undefined, 100);
  const openSeconds = (now() - t0) / 1000;
  await sleep(1500);
  const loadedRss = memory(server.pid).rss;
  for (const conn of conns) conn.destroy();
  return { connections: conns.length, idleRss, loadedRss, perConnection: (loadedRss - idleRss) / conns.length, openSeconds };
}

// ---- S5 ---------------------------------------------------------------------------------------

export interface S5Result {
  readonly rate: number;
  readonly achievedRate: number;
  /** Final dot written → final reply, upstream delay included. */
  readonly latencyP50: number;
  readonly latencyP99: number;
  readonly cpuMicrosPerMessage: number;
  readonly messages: number;
  /** Arrivals not started for want of a free connection. */
  readonly skipped: number;
  /** The load generator's own delay in starting messages, p99. */
  readonly lagP99: number;
  readonly errors: Errors;
}

/**
 * Open loop: messages start at `rate` per second on a schedule, whatever the replies do, on a pool
 * of authenticated connections (an arrival with no free connection is skipped and counted).
 * Latency = final 250 − final dot written; the upstream delay is in it for both servers alike.
 */
export async function s5Latency(server: Server, opts: { rate: number; upstreamMs: number; warmupMs: number; measureMs: number; size: number; tag: string }): Promise<S5Result> {
  const poolSize = Math.min(600, Math.ceil(opts.rate * ((opts.upstreamMs + 30) / 1000) * 2) + 10);
  const pool = await openMany(server, poolSize, LOGIN, 50);
  const free = [...pool];
  const messages = smallMessages(opts.size, opts.tag);
  const errors: Errors = {};
  const latency: number[] = [];
  const lags: number[] = [];
  const inflight = new Set<Promise<void>>();
  let skipped = 0;
  let measuredStarted = 0;
  let cpu0 = 0;
  const result = await openLoop({
    rate: opts.rate,
    durationMs: opts.warmupMs + opts.measureMs,
    start: ({ index, scheduledMs, lagMs }) => {
      const measured = scheduledMs >= opts.warmupMs;
      if (measured && measuredStarted === 0 && cpu0 === 0) cpu0 = cpuMicros(server.pid);
      const conn = free.pop();
      if (!conn) {
        if (measured) skipped++;
        return false;
      }
      if (measured) {
        measuredStarted++;
        lags.push(lagMs);
      }
      const { to, data } = messages.next(index);
      const p = conn.send(SENDER, to, data).then(
        ({ dotAt, doneAt, reply }) => {
          if (reply.code !== 250) countError(errors, { step: 'final', reply });
          else if (measured) latency.push(doneAt - dotAt);
          free.push(conn);
        },
        (err: unknown) => countError(errors, err),
      );
      inflight.add(p);
      void p.finally(() => inflight.delete(p));
      return true;
    },
  });
  await Promise.all(inflight);
  const cpu = cpuMicros(server.pid) - cpu0;
  await Promise.all(pool.map((conn) => conn.quit()));
  const window = (result.elapsedMs - opts.warmupMs) / 1000;
  return {
    rate: opts.rate,
    achievedRate: measuredStarted / window,
    latencyP50: percentile(latency, 50),
    latencyP99: percentile(latency, 99),
    cpuMicrosPerMessage: perUnit(cpu, latency.length),
    messages: latency.length,
    skipped,
    lagP99: percentile(lags, 99),
    errors,
  };
}
