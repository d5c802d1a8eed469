/**
 * The results table: one row per measure, a column per server (gateway, floor, sink) and the
 * gateway's ratio to each baseline. The sink is measured in S1 only; its cells elsewhere are "—".
 */
import { fmt, ratio } from './stats.js';

export interface Row {
  readonly name: string;
  readonly gateway: number;
  readonly floor: number;
  /** Measured in S1 only. */
  readonly sink?: number;
  readonly unit: string;
  /** Decimals shown (0 by default). */
  readonly digits?: number;
  /** false: no ratio columns (shares of a core, counts). */
  readonly ratios?: boolean;
}

const HEAD = ['gateway', 'floor', 'sink', 'g/floor', 'g/sink'] as const;
const WIDTHS = [12, 12, 12, 9, 9] as const;

export function renderTable(rows: readonly Row[]): string[] {
  const nameWidth = Math.max(44, ...rows.map((r) => r.name.length + 2));
  const cells = (values: readonly string[]): string => values.map((v, i) => v.padStart(WIDTHS[i] ?? 12)).join('');
  const lines = [`${'measure'.padEnd(nameWidth)}${cells(HEAD)}  unit`];
  for (const row of rows) {
    const digits = row.digits ?? 0;
    const withRatios = row.ratios ?? true;
    const sink = row.sink === undefined ? '—' : fmt(row.sink, digits);
    const gFloor = withRatios ? fmt(ratio(row.gateway, row.floor), 2) : '';
    const gSink = withRatios && row.sink !== undefined ? fmt(ratio(row.gateway, row.sink), 2) : '';
    lines.push(`${row.name.padEnd(nameWidth)}${cells([fmt(row.gateway, digits), fmt(row.floor, digits), sink, gFloor, gSink])}  ${row.unit}`);
  }
  return lines;
}

/** The same table in Markdown, for BENCHMARKS.md. */
export function renderMarkdown(rows: readonly Row[]): string[] {
  const lines = ['| measure | gateway | floor | sink | gateway / floor | gateway / sink | unit |', '|---|---:|---:|---:|---:|---:|---|'];
  for (const row of rows) {
    const digits = row.digits ?? 0;
    const withRatios = row.ratios ?? true;
    const sink = row.sink === undefined ? '—' : fmt(row.sink, digits);
    const gFloor = withRatios ? fmt(ratio(row.gateway, row.floor), 2) : '';
    const gSink = withRatios && row.sink !== undefined ? fmt(ratio(row.gateway, row.sink), 2) : '';
    lines.push(`| ${row.name} | ${fmt(row.gateway, digits)} | ${fmt(row.floor, digits)} | ${sink} | ${gFloor} | ${gSink} | ${row.unit} |`);
  }
  return lines;
}
