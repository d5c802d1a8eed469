/**
 * The five scenarios, each run the same way against one server (the gateway or the baseline).
 * Loops are bounded by time and count; every connection is closed at the end.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { cpuMicros, memory, resetPeak, sampleRss } from './procstat.js';
import { SmtpConnection, now, type Login, type Target } from './smtp-conn.js';
import { SENDER, largeMessage, smallMessages } from './messages.js';
import { percentile } from './stats.js';

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
  readonly cpuMicrosPerMessage: number;
  /** Server CPU over the window, as a share of one core. */
  readonly serverCpuShare: number;
  /** This (load) process's CPU over the window, as a share of one core. */
  readonly loadCpuShare: number;
  readonly messages: number;
  readonly errors: Errors;
}

export async function s1Reused(server: Server, opts: { connections: number; warmupMs: number; measureMs: number; size: number; tag: string }): Promise<S1Result> {
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
  await Promise.all(conns.map((conn) => conn.quit()));
  return {
    messagesPerSecond: (done * 1000) / elapsed,
    cpuMicrosPerMessage: done ? (cpu1 - cpu0) / done : Number.NaN,
    serverCpuShare: (cpu1 - cpu0) / (elapsed * 1000),
    loadCpuShare: (self.user + self.system) / (elapsed * 1000),
    messages: done,
    errors,
  };
}

// ---- S2 ---------------------------------------------------------------------------------------

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
  const session = async (i: number): Promise<void> => {
    const started = now();
    const { conn, greetingMs } = await SmtpConnection.open(server.target, { localAddress: source(i) });
    try {
      await conn.ehlo();
      await conn.startTls();
      await conn.auth(LOGIN);
      const { to, data } = messages.next(seq++);
      const { reply, doneAt } = await conn.send(SENDER, to, data);
      if (reply.code !== 250) {
        countError(errors, { step: 'final', reply });
      } else if (counting) {
        done++;
        greeting.push(greetingMs);
        final.push(doneAt - started);
      }
      await conn.quit();
    } finally {
      conn.destroy();
    }
  };
  const loops = Array.from({ length: opts.clients }, async (_, client) => {
    let n = client;
    while (!stop) {
      try {
        await session(n);
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
    cpuMicrosPerSession: done ? (cpu1 - cpu0) / done : Number.NaN,
    serverCpuShare: (cpu1 - cpu0) / (elapsed * 1000),
    loadCpuShare: (self.user + self.system) / (elapsed * 1000),
    sessions: done,
    errors,
  };
}

// ---- S3 ---------------------------------------------------------------------------------------

export interface S3Result {
  readonly messageBytes: number;
  readonly idleRss: number;
  readonly peakRss: number;
  readonly growth: number;
  /** growth / messageBytes */
  readonly multiple: number;
  /** `hwm` when the kernel's peak could be reset, `sampled` otherwise. */
  readonly method: 'hwm' | 'sampled';
  readonly reply: string;
  readonly seconds: number;
}

export async function s3Large(server: Server, opts: { attachmentBytes: number; tag: string }): Promise<S3Result> {
  const conn = await SmtpConnection.ready(server.target, LOGIN);
  const warm = smallMessages(2048, opts.tag).next(0);
  const warmReply = await conn.send(SENDER, warm.to, warm.data);
  if (warmReply.reply.code !== 250) throw new Error(`S3 warm-up message refused: ${warmReply.reply.text}`);
  const to = `r${opts.tag}-large@example.net`;
  const message = largeMessage(opts.attachmentBytes, to);
  await sleep(500);
  const idleRss = memory(server.pid).rss;
  const method = resetPeak(server.pid) ? 'hwm' : 'sampled';
  const sampler = sampleRss(server.pid);
  const t0 = now();
  const { reply } = await conn.send(SENDER, to, message);
  const seconds = (now() - t0) / 1000;
  await sleep(200); // anything the server still does after its reply
  const sampled = sampler.stop();
  const peakRss = Math.max(sampled, method === 'hwm' ? memory(server.pid).hwm : 0);
  await conn.quit();
  const messageBytes = message.length - 3; // without the final dot
  const growth = peakRss - idleRss;
  return { messageBytes, idleRss, peakRss, growth, multiple: growth / messageBytes, method, reply: `${reply.code} ${reply.text}`.slice(0, 120), seconds };
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
  readonly addedP50: number;
  readonly addedP99: number;
  readonly messages: number;
  readonly late: number;
  readonly errors: Errors;
}

/**
 * Open loop: messages start at `rate` per second on a schedule, whatever the replies do, on a pool
 * of authenticated connections. Added latency = (final 250 − final dot written) − upstream delay.
 */
export async function s5Latency(server: Server, opts: { rate: number; upstreamMs: number; warmupMs: number; measureMs: number; size: number; tag: string }): Promise<S5Result> {
  const poolSize = Math.min(600, Math.ceil(opts.rate * ((opts.upstreamMs + 30) / 1000) * 2) + 10);
  const pool = await openMany(server, poolSize, LOGIN, 50);
  const free = [...pool];
  const messages = smallMessages(opts.size, opts.tag);
  const errors: Errors = {};
  const added: number[] = [];
  let seq = 0;
  let counting = false;
  let late = 0;
  const inflight = new Set<Promise<void>>();
  const start = (conn: SmtpConnection): void => {
    const { to, data } = messages.next(seq++);
    const measured = counting;
    const p = conn.send(SENDER, to, data).then(
      ({ dotAt, doneAt, reply }) => {
        if (reply.code !== 250) countError(errors, { step: 'final', reply });
        else if (measured) added.push(doneAt - dotAt - opts.upstreamMs);
        free.push(conn);
      },
      (err: unknown) => countError(errors, err),
    );
    inflight.add(p);
    void p.finally(() => inflight.delete(p));
  };
  const total = opts.warmupMs + opts.measureMs;
  const t0 = now();
  let issued = 0;
  let measuredFrom = Number.POSITIVE_INFINITY;
  let measuredIssued = 0;
  while (now() - t0 < total) {
    const elapsed = now() - t0;
    if (!counting && elapsed >= opts.warmupMs) {
      counting = true;
      measuredFrom = now();
    }
    const due = Math.floor((elapsed * opts.rate) / 1000);
    while (issued < due) {
      const conn = free.pop();
      if (!conn) {
        late += due - issued; // no free connection: skipped, and counted
        issued = due;
        break;
      }
      issued++;
      if (counting) measuredIssued++;
      start(conn);
    }
    await sleep(1);
  }
  counting = false;
  const window = (now() - measuredFrom) / 1000;
  await Promise.all(inflight);
  await Promise.all(pool.map((conn) => conn.quit()));
  return {
    rate: opts.rate,
    achievedRate: measuredIssued / window,
    addedP50: percentile(added, 50),
    addedP99: percentile(added, 99),
    messages: added.length,
    late,
    errors,
  };
}
