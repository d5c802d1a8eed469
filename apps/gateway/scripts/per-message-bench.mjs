/**
 * Micro-benchmarks of small per-message steps, CPU µs per call (process.cpuUsage), rounds
 * alternating the variants in one process (median and every round printed):
 *
 * - `mail()` of a RelaySession and `withToken()` on the hot path (a fresh token, the account's
 *   senders cached), for each build DIST of packages/cakemail (a directory under
 *   packages/cakemail holding a compiled build, as for relay-bench.mjs; default `dist`);
 * - the log line's timestamp: pino's `stdTimeFunctions.isoTime` against the gateway's `isoTime`;
 * - the command verb as smtp-core reads it: the whole line decoded and split, against the bytes
 *   up to the first space.
 *
 *   pnpm run build
 *   taskset -c 1 node apps/gateway/scripts/per-message-bench.mjs [CALLS] [ROUNDS] [DIST...]
 */
import { dirname, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { pino } from 'pino';
import { isoTime } from '../dist/logger.js';

const here = dirname(fileURLToPath(import.meta.url));
const [callsArg, roundsArg, ...dists] = process.argv.slice(2);
const N = Number(callsArg ?? 200_000);
const ROUNDS = Number(roundsArg ?? 5);
if (dists.length === 0) dists.push('dist');

const variants = [];
for (const dist of dists) {
  const imp = (f) => import(pathToFileURL(resolve(here, '../../../packages/cakemail', dist, f)).href);
  const { AuthSession } = await imp('auth.js');
  const { SenderDirectory } = await imp('senders.js');
  const { ListResolver } = await imp('lists.js');
  const { RelaySession } = await imp('relay/session.js');
  const { withToken } = await imp('relay/upstream.js');
  const auth = new AuthSession(
    { accessToken: 'a', refreshToken: 'r', expiresIn: 3600, accounts: [1] },
    { client: null, marginFor: () => 60_000, cacheTtlMs: 0, now: Date.now, onDead() {} },
  );
  const senders = new SenderDirectory({ client: { listSenders: async () => [{ id: 's1', name: 'Ops', email: 'ops@example.com', confirmed: true }] } });
  const log = { debug() {}, info() {}, warn() {}, error() {}, child: () => log };
  const ctx = { senders, lists: new ListResolver({ client: null }), cfg: { deadlineMs: 60_000 }, logger: log, auth: { authenticate: async () => ({ ok: true, session: auth }) } };
  const session = new RelaySession(ctx, { id: 'bench' });
  await session.auth({ mechanism: 'PLAIN', username: 'u', password: 'p' });
  await session.mail('ops@example.com'); // the senders cached
  const opts = { deadline: Date.now() + 60_000 };
  const fn = async (token) => token.length;
  variants.push({ name: `${dist}: mail(), senders cached`, call: () => session.mail('ops@example.com'), samples: [] });
  variants.push({ name: `${dist}: withToken(), fresh token`, call: () => withToken(auth, opts, fn), samples: [] });
}
variants.push({ name: 'timestamp: pino isoTime', call: pino.stdTimeFunctions.isoTime, samples: [] });
variants.push({ name: 'timestamp: gateway isoTime', call: isoTime, samples: [] });
const lines = ['MAIL FROM:<sender@example.com> SIZE=2048', 'RCPT TO:<r-000000000123@example.net>', 'DATA', 'QUIT'].map((l) => Buffer.from(l, 'latin1'));
let i = 0;
variants.push({ name: 'command verb: line decoded and split', call: () => (lines[i++ & 3].toString('latin1').split(' ')[0] ?? '').toUpperCase(), samples: [] });
variants.push({
  name: 'command verb: up to the first space',
  call: () => {
    const c = lines[i++ & 3];
    const space = c.indexOf(0x20);
    return (space === -1 ? c : c.subarray(0, space)).toString('latin1').toUpperCase();
  },
  samples: [],
});

const time = async (call) => {
  const t = process.cpuUsage();
  for (let k = 0; k < N; k++) {
    const r = call();
    if (r instanceof Promise) await r;
  }
  const u = process.cpuUsage(t);
  return (u.user + u.system) / N;
};
for (const v of variants) await time(v.call); // warm-up (JIT)
for (let r = 0; r < ROUNDS; r++) for (const v of variants) v.samples.push(await time(v.call));
for (const v of variants) {
  const s = [...v.samples].sort((a, b) => a - b);
  console.log(`${v.name}: median ${s[Math.floor(s.length / 2)].toFixed(3)} µs (rounds ${v.samples.map((x) => x.toFixed(3)).join(' ')})`);
}
