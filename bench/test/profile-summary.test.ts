/**
 * `node bench/dist/profile-summary.js FILE` (BENCHMARKS.md's profiles): self time by package, and
 * the same samples charged to the innermost package on their stack.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';

const root = fileURLToPath(new URL('../..', import.meta.url));
const frame = (functionName: string, url: string) => ({ functionName, url, lineNumber: 9, columnNumber: 0, scriptId: '0' });

it('charges native and Node-internal time to the package that called it', () => {
  // (root) → sealSecret (packages/queue) → deflateRawSync (node:zlib) → (native): 30 ms
  //        → sendCommand (ioredis) → writeUtf8String (native): 10 ms;  (idle): 50 ms
  const profile = {
    nodes: [
      { id: 1, callFrame: frame('(root)', ''), children: [2, 5, 7] },
      { id: 2, callFrame: frame('sealSecret', 'file:///repo/packages/queue/dist/secret.js'), children: [3] },
      { id: 3, callFrame: frame('deflateRawSync', 'node:zlib'), children: [4] },
      { id: 4, callFrame: frame('processChunkSync', '') },
      { id: 5, callFrame: frame('sendCommand', 'file:///repo/node_modules/.pnpm/ioredis@5.11.1/node_modules/ioredis/built/Redis.js'), children: [6] },
      { id: 6, callFrame: frame('writeUtf8String', '') },
      { id: 7, callFrame: frame('(idle)', '') },
    ],
    samples: [4, 4, 4, 6, 7, 7, 7, 7, 7],
    timeDeltas: [10_000, 10_000, 10_000, 10_000, 10_000, 10_000, 10_000, 10_000, 10_000],
  };
  const file = join(mkdtempSync(join(tmpdir(), 'profile-summary-')), 'p.cpuprofile');
  writeFileSync(file, JSON.stringify(profile));
  const out = execFileSync(process.execPath, ['bench/dist/profile-summary.js', file], { cwd: root, encoding: 'utf8' });
  expect(out).toMatch(/busy 0\.04 s, idle 0\.05 s/);
  const [selfPart, chargedPart] = out.split('time charged to the innermost package');
  // self time: all of it native
  expect(selfPart).toMatch(/100\.0%\s+\(native\)/);
  expect(chargedPart).toMatch(/75\.0%\s+@cakemail-smtp\/queue\n/);
  expect(chargedPart).toMatch(/25\.0%\s+ioredis\n/);
  expect(chargedPart).toMatch(/75\.0%\s+@cakemail-smtp\/queue sealSecret:10/);
});
