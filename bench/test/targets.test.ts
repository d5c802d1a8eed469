import { describe, expect, it } from 'vitest';
import { renderMarkdown, renderTable } from '../src/report.js';
import { allOf, atLeastTimes, atMost, below, notMeasured, renderTarget } from '../src/targets.js';

describe('targets', () => {
  it('S1: gateway ≥ 0.8 × floor', () => {
    expect(atLeastTimes('S1', 'gateway msg/s', 2778, 0.8, 6564)).toEqual({ id: 'S1', verdict: 'FAIL', text: 'gateway msg/s ≥ 0.8 × floor (0.42)' });
    expect(atLeastTimes('S1', 'gateway msg/s', 5300, 0.8, 6564).verdict).toBe('PASS');
    expect(atLeastTimes('S1', 'gateway msg/s', 4000, 0.8, 5000).verdict).toBe('PASS'); // exactly 0.8
    expect(atLeastTimes('S1', 'gateway msg/s', 3999.9, 0.8, 5000).verdict).toBe('FAIL');
  });

  it('never passes on missing data', () => {
    expect(atLeastTimes('S1', 'x', 100, 0.8, 0).verdict).toBe('FAIL');
    expect(atLeastTimes('S1', 'x', Number.NaN, 0.8, 100).verdict).toBe('FAIL');
    expect(below('S5', 'x', Number.NaN, 5, 'ms').verdict).toBe('FAIL');
    expect(atMost('S3', 'x', Number.NaN, 2, '×').verdict).toBe('FAIL');
  });

  it('S2 greeting: p50 < 5 ms and p99 < 50 ms, both required', () => {
    const pass = allOf('S2 greeting', [below('S2 greeting', 'p50', 0.9, 5, 'ms'), below('S2 greeting', 'p99', 12, 50, 'ms')]);
    expect(pass.verdict).toBe('PASS');
    expect(pass.text).toBe('p50 < 5 ms (0.90 ms); p99 < 50 ms (12.00 ms)');
    expect(allOf('S2 greeting', [below('a', 'p50', 0.9, 5, 'ms'), below('a', 'p99', 50, 50, 'ms')]).verdict).toBe('FAIL');
    expect(allOf('S2 greeting', [below('a', 'p50', 5, 5, 'ms'), below('a', 'p99', 1, 50, 'ms')]).verdict).toBe('FAIL');
  });

  it('S5: the difference of the p99s is what is compared', () => {
    expect(below('S5', 'gateway p99 − floor p99', 54.9 - 51.2, 5, 'ms').verdict).toBe('PASS');
    expect(below('S5', 'gateway p99 − floor p99', 108 - 52, 5, 'ms').verdict).toBe('FAIL');
  });

  it('S3: at most 2 × the bytes in flight, 2 included', () => {
    expect(atMost('S3 text', 'growth per byte', 2, 2, '×').verdict).toBe('PASS');
    expect(atMost('S3 text', 'growth per byte', 2.01, 2, '×').verdict).toBe('FAIL');
  });

  it('renders a verdict line, and n/a for what was not measured', () => {
    expect(renderTarget(notMeasured('queue', 'S1 with QUEUE_MODE=always ≥ 0.6 × floor', 'n/a (no queue mode yet)'))).toBe(
      'n/a   queue: S1 with QUEUE_MODE=always ≥ 0.6 × floor — n/a (no queue mode yet)',
    );
    expect(allOf('x', [notMeasured('x', 'a', 'b')]).verdict).toBe('n/a');
    expect(renderTarget(atLeastTimes('S1', 'gateway msg/s', 2778, 0.8, 6564))).toBe('FAIL  S1: gateway msg/s ≥ 0.8 × floor (0.42)');
  });
});

describe('table', () => {
  const rows = [
    { name: 'S1 messages/s', gateway: 2778, floor: 6564, sink: 13101, unit: 'msg/s' },
    { name: 'S1 CPU busy', gateway: 99, floor: 98, sink: 97, unit: '% of a core', ratios: false },
    { name: 'S5 p99', gateway: 55.5, floor: 51.25, unit: 'ms', digits: 2 },
  ];

  it('shows gateway, floor and sink with the ratios to each; "—" where the sink was not measured', () => {
    const [head, s1, busy, s5] = renderTable(rows);
    expect(head?.split(/\s+/)).toEqual(['measure', 'gateway', 'floor', 'sink', 'g/floor', 'g/sink', 'unit']);
    expect(s1?.split(/\s{2,}/)).toEqual(['S1 messages/s', '2,778', '6,564', '13,101', '0.42', '0.21', 'msg/s']);
    expect(busy?.split(/\s{2,}/)).toEqual(['S1 CPU busy', '99', '98', '97', '% of a core']);
    expect(s5?.split(/\s{2,}/)).toEqual(['S5 p99', '55.50', '51.25', '—', '1.08', 'ms']);
  });

  it('renders the same rows as Markdown', () => {
    const md = renderMarkdown(rows);
    expect(md[2]).toBe('| S1 messages/s | 2,778 | 6,564 | 13,101 | 0.42 | 0.21 | msg/s |');
    expect(md[4]).toBe('| S5 p99 | 55.50 | 51.25 | — | 1.08 |  | ms |');
  });
});
