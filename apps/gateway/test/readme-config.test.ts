/**
 * The repository README's configuration table against the config module: the
 * same variables, and each default as the schema gives it; and the
 * development-mode defaults paragraph against dev.ts.
 */
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { configKeys, defaultOf, type Variable } from '../src/config/index.js';
import { DEV_UPSTREAM_PORT, devDefaults } from '../src/dev.js';

const readme = readFileSync(new URL('../../../README.md', import.meta.url), 'utf8');
const section = readme.slice(readme.indexOf('\n## Configuration\n'), readme.indexOf('\n## ', readme.indexOf('\n## Configuration\n') + 1));

/** The table's rows: variable → default cell. */
const rows = new Map(
  [...section.matchAll(/^\| `([A-Z0-9_]+)` \| ([^|]+) \|/gm)].map((m) => [m[1] as string, (m[2] as string).trim()]),
);

/** Defaults that are not a literal value: how the table words them. */
const computed: Partial<Record<Variable, { value: unknown; cell: string }>> = {
  SMTP_HOSTNAME: { value: hostname(), cell: 'the OS hostname' },
};

describe('the README configuration table', () => {
  it('has a row for every variable, and none for another', () => {
    expect(section).toContain('| variable | default | meaning |');
    expect([...rows.keys()].sort()).toEqual([...configKeys].sort());
  });

  it.each(configKeys.map((name) => [name]))('gives the default of %s', (name) => {
    const cell = rows.get(name);
    const value = defaultOf(name);
    const special = computed[name];
    if (special) {
      expect(value).toEqual(special.value);
      expect(cell).toBe(special.cell);
    } else if (value === undefined) {
      expect(cell).toMatch(/^none\b/);
    } else {
      expect(cell).toBe(`\`${String(value)}\``);
    }
  });

  it('gives the development-mode defaults', () => {
    const start = section.indexOf('In development mode');
    const paragraph = section.slice(start, section.indexOf('\n\n', start));
    const documented = Object.fromEntries([...paragraph.matchAll(/`([A-Z0-9_]+)=([^`]+)`/g)].map((m) => [m[1], m[2]]));
    const expected = Object.fromEntries(
      Object.entries(devDefaults).map(([name, value]) => [name, value === resolve(documented[name] ?? '') ? documented[name] : value]),
    );
    expect(documented).toEqual(expected);
    expect(paragraph).toContain(`\`DEV_UPSTREAM_PORT\` (default \`${DEV_UPSTREAM_PORT}\`)`);
  });
});
