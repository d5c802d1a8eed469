/** One doctor check and how the checks are printed (text with ✓/✗, or JSON for scripts). */

export interface Check {
  /** Stable id for scripts, e.g. `login`, `senders:1001`, `smtp:tls`. */
  readonly id: string;
  /** `true` passed, `false` failed, `null` skipped (an earlier check failed, or nothing to check). */
  readonly ok: boolean | null;
  /** One line saying what was found. */
  readonly summary: string;
  /** Further lines (e.g. the unconfirmed senders and how to confirm them). */
  readonly notes?: readonly string[];
  /** What to do, for a failed check. */
  readonly fix?: string;
}

export const passed = (id: string, summary: string, notes?: readonly string[]): Check => ({ id, ok: true, summary, ...(notes?.length ? { notes } : {}) });
export const failed = (id: string, summary: string, fix: string, notes?: readonly string[]): Check => ({ id, ok: false, summary, fix, ...(notes?.length ? { notes } : {}) });
export const skipped = (id: string, summary: string): Check => ({ id, ok: null, summary });

/** No check failed (a check is skipped only after a failure, or when there is nothing to check). */
export function allPassed(checks: readonly Check[]): boolean {
  return checks.every((c) => c.ok !== false);
}

export function formatText(checks: readonly Check[]): string {
  const lines: string[] = [];
  for (const c of checks) {
    lines.push(`${c.ok === true ? '✓' : c.ok === false ? '✗' : '-'} ${c.summary}`);
    for (const note of c.notes ?? []) lines.push(`    ${note}`);
    if (c.ok === false && c.fix) lines.push(`    → ${c.fix}`);
  }
  const failures = checks.filter((c) => c.ok === false).length;
  lines.push('', failures === 0 ? 'All checks passed.' : `${failures} check${failures === 1 ? '' : 's'} failed.`);
  return `${lines.join('\n')}\n`;
}

export function formatJson(checks: readonly Check[]): string {
  return `${JSON.stringify({ ok: allPassed(checks), checks }, null, 2)}\n`;
}
