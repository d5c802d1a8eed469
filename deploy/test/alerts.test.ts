/**
 * The alert rules: each PrometheusRule is the one source of its rules. Its spec
 * is what Prometheus loads, so it is written out as a rule file and checked by
 * promtool (Debian's `prometheus` package): `check rules`, and `test rules` with
 * its unit tests.
 *
 * - deploy/kubernetes/base/prometheusrule.yaml, in every overlay: the gateway's
 *   alerts, tested by deploy/prometheus/alerts.test.yaml;
 * - deploy/kubernetes/components/queue-alerts/prometheusrule.yaml, a Component
 *   the base includes: the queue's alerts (QUEUE_MODE), tested by
 *   deploy/prometheus/queue-alerts.test.yaml.
 */
import { execFile } from 'node:child_process';
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { root } from './helpers.js';

const exec = promisify(execFile);

interface RuleGroups {
  groups: Array<{ name: string; rules: Array<{ alert?: string; expr: string }> }>;
}

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gw-alerts-'));
});

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function promtool(...args: string[]): Promise<{ code: number; output: string }> {
  try {
    const { stdout, stderr } = await exec('promtool', args, { cwd: dir });
    return { code: 0, output: stdout + stderr };
  } catch (err) {
    const e = err as { code?: number | string; stdout?: string; stderr?: string };
    if (e.code === 'ENOENT') throw new Error('promtool is missing: install the Debian package prometheus (scripts/test.sh does)', { cause: err });
    return { code: typeof e.code === 'number' ? e.code : -1, output: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

interface Source {
  readonly resource: string;
  /** The rule file name its unit tests load (their rule_files). */
  readonly rulesFile: string;
  readonly tests: string;
  /** An alert whose quiet cases are part of its firing ones. */
  readonly alwaysFiringSomewhere: readonly string[];
  /** A threshold to break, and the alert that must then fail its test. */
  readonly breakIt: { readonly from: string; readonly to: string; readonly alert: string };
}

const sources: Source[] = [
  {
    resource: 'deploy/kubernetes/base/prometheusrule.yaml',
    rulesFile: 'rules.yaml',
    tests: 'deploy/prometheus/alerts.test.yaml',
    // its cases keep a fresh certificate quiet beside the expiring ones
    alwaysFiringSomewhere: ['SmtpGatewayCertificateExpiringSoon'],
    breakIt: { from: '> 0.1\n', to: '> 0.5\n', alert: 'SmtpGatewayUpstreamFailures' },
  },
  {
    resource: 'deploy/kubernetes/components/queue-alerts/prometheusrule.yaml',
    rulesFile: 'queue-rules.yaml',
    tests: 'deploy/prometheus/queue-alerts.test.yaml',
    alwaysFiringSomewhere: [],
    breakIt: { from: '> 6 * 3600', to: '> 8 * 3600', alert: 'SmtpGatewayQueueOldestMessage' },
  },
];

// promtool evaluates each test's whole series (hours at one-minute steps): seconds of CPU, more on a loaded machine.
describe.each(sources)('$resource', { timeout: 180_000 }, (source) => {
  let rules: RuleGroups;
  const testsFile = (): string => basename(source.tests);

  beforeAll(async () => {
    const resource = parse(await readFile(join(root, source.resource), 'utf8')) as { kind: string; spec: RuleGroups };
    expect(resource.kind).toBe('PrometheusRule');
    rules = resource.spec;
    await writeFile(join(dir, source.rulesFile), stringify(rules));
    await copyFile(join(root, source.tests), join(dir, testsFile()));
    const tests = parse(await readFile(join(dir, testsFile()), 'utf8')) as { rule_files: string[] };
    expect(tests.rule_files).toEqual([source.rulesFile]);
  });

  it('passes promtool check rules', async () => {
    const result = await promtool('check', 'rules', source.rulesFile);
    expect(result.output).toMatch(/SUCCESS: \d+ rules found/);
    expect(result.code, result.output).toBe(0);
  });

  it('passes its promtool unit tests, which cover every alert', async () => {
    const result = await promtool('test', 'rules', testsFile());
    expect(result.code, result.output).toBe(0);
    expect(result.output).toContain('SUCCESS');
    const tests = parse(await readFile(join(dir, testsFile()), 'utf8')) as { tests: Array<{ alert_rule_test: Array<{ alertname: string; exp_alerts: unknown[] }> }> };
    const alerts = new Set(rules.groups.flatMap((g) => g.rules.flatMap((r) => (r.alert ? [r.alert] : []))));
    const firing = new Set(tests.tests.flatMap((t) => t.alert_rule_test.filter((c) => c.exp_alerts.length > 0).map((c) => c.alertname)));
    const quiet = new Set(tests.tests.flatMap((t) => t.alert_rule_test.filter((c) => c.exp_alerts.length === 0).map((c) => c.alertname)));
    expect(firing).toEqual(alerts);
    // and each alert has a case where it stays quiet
    expect(new Set([...quiet, ...source.alwaysFiringSomewhere])).toEqual(alerts);
  });

  it('fails promtool test rules when an alert does not behave as its test says', async () => {
    const broken = stringify(rules).replace(source.breakIt.from, source.breakIt.to);
    expect(broken).not.toBe(stringify(rules));
    await writeFile(join(dir, source.rulesFile), broken);
    try {
      const result = await promtool('test', 'rules', testsFile());
      expect(result.code).not.toBe(0);
      expect(result.output).toContain(source.breakIt.alert);
    } finally {
      await writeFile(join(dir, source.rulesFile), stringify(rules));
    }
  });
});

it('keeps the gateway and the queue alerts apart', async () => {
  const exprs = async (file: string): Promise<string[]> =>
    ((parse(await readFile(join(root, file), 'utf8')) as { spec: RuleGroups }).spec.groups ?? []).flatMap((g) => g.rules.map((r) => r.expr));
  // a gateway with QUEUE_MODE=off exports no queue series: no rule it must satisfy reads one
  for (const expr of await exprs('deploy/kubernetes/base/prometheusrule.yaml')) expect(expr).not.toContain('smtp_gateway_queue_');
  for (const expr of await exprs('deploy/kubernetes/components/queue-alerts/prometheusrule.yaml')) expect(expr).toContain('smtp_gateway_queue_');
});
