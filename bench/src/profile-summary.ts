/**
 * node dist/profile-summary.js FILE.cpuprofile [TOP] [SKIP_MS]
 *
 * Summarises a V8 CPU profile (`node --cpu-prof`, as `pnpm bench --profile` makes for each
 * gateway): self time by package (node_modules package, workspace package, node internals) and
 * the top functions by self time, with their share of the non-idle samples; then the same
 * samples charged to the innermost package frame on their stack (a zlib call or a socket write
 * counts for the package that made it), by package and by function. SKIP_MS leaves out
 * the first milliseconds of the profile (the process's start-up: module loading and compiling).
 *
 * V8 sees only what runs with JavaScript on the stack: TLS handshakes and record encryption run
 * in C++ called from libuv and are counted as idle. `perf record -e cpu-clock -g` on the child
 * (with `--perf-basic-prof` for JS names) sees both.
 */
import { readFileSync } from 'node:fs';

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}
interface Profile {
  nodes: Node[];
  samples: number[];
  timeDeltas: number[];
}

const [file, topArg, skipArg] = process.argv.slice(2);
if (!file) {
  process.stderr.write('usage: profile-summary FILE.cpuprofile [TOP] [SKIP_MS]\n');
  process.exit(2);
}
const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const self = new Map<number, number>();
const skipMicros = Number(skipArg ?? 0) * 1000;
let at = 0;
profile.samples.forEach((id, i) => {
  const delta = profile.timeDeltas[i] ?? 0;
  at += delta;
  if (at >= skipMicros) self.set(id, (self.get(id) ?? 0) + delta);
});

function bucket(url: string, name: string): string {
  if (!url) return name.startsWith('(') ? name : '(native)';
  const pnpm = /node_modules\/\.pnpm\/[^/]+\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url);
  if (pnpm?.[1]) return pnpm[1];
  const mod = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url);
  if (mod?.[1]) return mod[1];
  const ws = /\/(packages|apps)\/([^/]+)\//.exec(url);
  if (ws?.[2]) return `@cakemail-smtp/${ws[2]}`;
  if (url.startsWith('node:')) return `node:${url.slice(5).split('/')[0] ?? ''}`;
  return url;
}

let total = 0;
let idle = 0;
const packages = new Map<string, number>();
const functions = new Map<string, number>();
for (const [id, us] of self) {
  const node = byId.get(id);
  if (!node) continue;
  const { functionName, url, lineNumber } = node.callFrame;
  if (functionName === '(idle)') {
    idle += us;
    continue;
  }
  total += us;
  const pkg = bucket(url, functionName);
  packages.set(pkg, (packages.get(pkg) ?? 0) + us);
  const short = url.replace(/^.*\/node_modules\/\.pnpm\/[^/]+\/node_modules\//, '').replace(/^.*\/(packages|apps)\//, '$1/').replace(/^file:\/\//, '');
  const key = `${functionName || '(anonymous)'}  ${short}${url ? `:${lineNumber + 1}` : ''}`;
  functions.set(key, (functions.get(key) ?? 0) + us);
}
// The same samples charged to the innermost package frame on their stack: Node's internals and
// native code (zlib, a socket write, a cipher) count for the package that called them.
const parent = new Map<number, number>();
for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
const charged = new Map<string, number>();
const chargedFunctions = new Map<string, number>();
for (const [id, us] of self) {
  if (byId.get(id)?.callFrame.functionName === '(idle)') continue;
  let at: number | undefined = id;
  let pkg: string | undefined;
  let fn = '';
  while (at !== undefined) {
    const frame = byId.get(at)?.callFrame;
    if (frame && /\/(node_modules|packages|apps)\//.test(frame.url)) {
      pkg = bucket(frame.url, frame.functionName);
      fn = `${pkg} ${frame.functionName || '(anonymous)'}:${frame.lineNumber + 1}`;
      break;
    }
    at = parent.get(at);
  }
  const key = pkg ?? '(no package on the stack)';
  charged.set(key, (charged.get(key) ?? 0) + us);
  if (pkg) chargedFunctions.set(fn, (chargedFunctions.get(fn) ?? 0) + us);
}

const pct = (us: number): string => `${((100 * us) / total).toFixed(1).padStart(5)}%`;
process.stdout.write(`${file}\nbusy ${(total / 1e6).toFixed(2)} s, idle ${(idle / 1e6).toFixed(2)} s\n\nself time by package\n`);
for (const [pkg, us] of [...packages].sort((a, b) => b[1] - a[1]).slice(0, 25)) process.stdout.write(`  ${pct(us)}  ${pkg}\n`);
process.stdout.write('\ntop functions by self time\n');
for (const [fn, us] of [...functions].sort((a, b) => b[1] - a[1]).slice(0, Number(topArg ?? 40))) process.stdout.write(`  ${pct(us)}  ${fn}\n`);
process.stdout.write('\ntime charged to the innermost package on the stack (its calls into Node and native code included)\n');
for (const [pkg, us] of [...charged].sort((a, b) => b[1] - a[1]).slice(0, 25)) process.stdout.write(`  ${pct(us)}  ${pkg}\n`);
process.stdout.write('\ntop functions, charged the same way\n');
for (const [fn, us] of [...chargedFunctions].sort((a, b) => b[1] - a[1]).slice(0, Number(topArg ?? 40))) process.stdout.write(`  ${pct(us)}  ${fn}\n`);
