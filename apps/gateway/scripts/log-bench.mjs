// Micro-benchmark of the gateway's log lines: pino with the wildcard `redact`
// (the logger as it was), the gateway's logger (createLogger), and pino with no
// censoring at all (the cost of the line itself). Lines go to /dev/null through
// a synchronous pino.destination, as the bench's gateway child writes them.
// Rounds alternate the three in one process; CPU time from process.cpuUsage().
//
//   pnpm --filter @cakemail-smtp/gateway run build
//   taskset -c 1 node apps/gateway/scripts/log-bench.mjs [lines per round] [rounds]
import { pino } from 'pino';
import { CENSOR, createLogger, redactPaths } from '../dist/logger.js';

const N = Number(process.argv[2] ?? 100_000);
const ROUNDS = Number(process.argv[3] ?? 5);

const options = {
  level: 'info',
  base: { service: 'smtp-gateway' },
  timestamp: pino.stdTimeFunctions.isoTime,
  formatters: { level: (label) => ({ level: label }) },
};
const devNull = () => pino.destination({ dest: '/dev/null', sync: true });
const loggers = {
  redact: pino({ ...options, redact: { paths: redactPaths, censor: CENSOR } }, devNull()),
  gateway: createLogger({ level: 'info', format: 'json', destination: devNull() }),
  none: pino(options, devNull()),
};

// The lines of S1 (a session, messages back to back): `relayed` per message
// from the relay's child of the session's child, and a session's own lines.
const shapes = {
  relayed: (log, i) =>
    log.info(
      { event: 'relayed', accountId: 42, fingerprint: '0123456789abcdef', bytes: 2048, recipients: 1, accepted: 1, alreadyAccepted: 0, refused: 0, temporaryFailures: 0, ids: [`id-${i}`], durationMs: 3 },
      'relayed to Cakemail',
    ),
  connection: (log) => log.info({ remoteAddress: '192.0.2.1', listener: 'smtp' }, 'connection'),
  authenticated: (log) => log.info({ mechanism: 'PLAIN' }, 'authenticated'),
  warnErr: (log) => log.warn({ err: { type: 'CakemailError', kind: 'upstream', status: 503, message: 'unavailable' }, during: 'send' }, 'Cakemail temporarily unavailable'),
};

const results = {};
for (let round = 0; round < ROUNDS + 1; round++) {
  for (const [shape, write] of Object.entries(shapes)) {
    for (const [name, root] of Object.entries(loggers)) {
      const log = root.child({ sessionId: 'a1b2c3d4e5f6' }).child({ sessionId: 'a1b2c3d4e5f6' });
      const start = process.cpuUsage();
      for (let i = 0; i < N; i++) write(log, i);
      const used = process.cpuUsage(start);
      if (round === 0) continue; // warm-up
      ((results[shape] ??= {})[name] ??= []).push(((used.user + used.system) / N));
    }
  }
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
console.log(`node ${process.version}, ${N} lines per round, ${ROUNDS} rounds (after a warm-up), median CPU µs per line`);
console.log('shape          redact  gateway     none   (redact rounds | gateway rounds)');
for (const [shape, byName] of Object.entries(results)) {
  const r = (name) => median(byName[name]).toFixed(2).padStart(8);
  const all = (name) => byName[name].map((x) => x.toFixed(1)).join(' ');
  console.log(`${shape.padEnd(13)}${r('redact')}${r('gateway')}${r('none')}   (${all('redact')} | ${all('gateway')})`);
}
