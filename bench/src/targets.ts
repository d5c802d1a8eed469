/**
 * The targets of issue 13, each a PASS/FAIL line (or n/a when it was not measured). A value that
 * is not a finite number (nothing measured) fails: a target never passes on missing data.
 */
import { fmt, ratio } from './stats.js';

export type Verdict = 'PASS' | 'FAIL' | 'n/a';

export interface TargetLine {
  readonly id: string;
  readonly verdict: Verdict;
  readonly text: string;
}

const finite = (...values: number[]): boolean => values.every((v) => Number.isFinite(v));

/** `value ≥ factor × reference`, e.g. S1: gateway msg/s ≥ 0.8 × floor msg/s. */
export function atLeastTimes(id: string, what: string, value: number, factor: number, reference: number, refName = 'floor'): TargetLine {
  const r = ratio(value, reference);
  const ok = finite(value, reference, r) && value >= factor * reference;
  return { id, verdict: ok ? 'PASS' : 'FAIL', text: `${what} ≥ ${factor} × ${refName} (${fmt(r, 2)})` };
}

/** `value < limit`, e.g. S2: greeting p99 < 50 ms. */
export function below(id: string, what: string, value: number, limit: number, unit: string, digits = 2): TargetLine {
  const ok = finite(value) && value < limit;
  return { id, verdict: ok ? 'PASS' : 'FAIL', text: `${what} < ${fmt(limit)} ${unit} (${fmt(value, digits)} ${unit})` };
}

/** `value ≤ limit`, e.g. S3: memory per in-flight byte ≤ 2. */
export function atMost(id: string, what: string, value: number, limit: number, unit: string, digits = 2): TargetLine {
  const ok = finite(value) && value <= limit;
  return { id, verdict: ok ? 'PASS' : 'FAIL', text: `${what} ≤ ${fmt(limit)} ${unit} (${fmt(value, digits)} ${unit})` };
}

/** Every part must pass for the target to pass; the text names each part. */
export function allOf(id: string, parts: readonly TargetLine[]): TargetLine {
  const verdict: Verdict = parts.every((p) => p.verdict === 'PASS') ? 'PASS' : parts.some((p) => p.verdict === 'FAIL') ? 'FAIL' : 'n/a';
  return { id, verdict, text: parts.map((p) => p.text).join('; ') };
}

export function notMeasured(id: string, text: string, why: string): TargetLine {
  return { id, verdict: 'n/a', text: `${text} — ${why}` };
}

export function renderTarget(line: TargetLine): string {
  return `${line.verdict.padEnd(4)}  ${line.id}: ${line.text}`;
}
