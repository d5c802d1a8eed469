import { execFileSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

// The ablation patches (bench/ablations, BENCHMARKS.md "S1 ablation", "S5 on warm servers") must keep applying to the tree.
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const dir = join(root, 'bench', 'ablations');
const patches = readdirSync(dir)
  .filter((f) => f.endsWith('.patch'))
  .sort();

const check = (files: string[]): void => {
  execFileSync('git', ['apply', '--check', ...files.map((f) => join(dir, f))], { cwd: root, stdio: 'pipe' });
};

describe('bench/ablations', () => {
  it('has the patches BENCHMARKS.md names', () => {
    expect(patches).toEqual(['client.patch', 'floor-spin.patch', 'metrics.patch', 'mime.patch', 'sender.patch', 'smtp-core.patch', 'store.patch']);
  });

  it.each(patches)('%s applies to the tree', (file) => {
    expect(() => check([file])).not.toThrow();
  });

  it('all of them apply together', () => {
    expect(() => check(patches)).not.toThrow();
  });
});
