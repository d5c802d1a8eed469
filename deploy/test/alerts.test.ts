/**
 * The alert rules: the PrometheusRule in deploy/kubernetes/base is their one
 * source. Its spec is what Prometheus loads, so it is written out as a rule file
 * and checked by promtool (Debian's `prometheus` package): `check rules`, and
 * `test rules` with the unit tests in deploy/prometheus/alerts.test.yaml.
 */
import { execFile } from 'node:child_process';
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { root } from './helpers.js';

const exec = promisify(execFile);

interface RuleGroups {
  groups: Array<{ name: string; rules: Array<{ alert?: string; expr: string }> }>;
}

let dir: string;
let rules: RuleGroups;

beforeAll(async () => {
  const resource = parse(await readFile(join(root, 'deploy/kubernetes/base/prometheusrule.yaml'), 'utf8')) as { kind: string; spec: RuleGroups };
  expect(resource.kind).toBe('PrometheusRule');
  rules = resource.spec;
  dir = await mkdtemp(join(tmpdir(), 'gw-alerts-'));
  await writeFile(join(dir, 'rules.yaml'), stringify(rules));
  await copyFile(join(root, 'deploy/prometheus/alerts.test.yaml'), join(dir, 'alerts.test.yaml'));
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

it('passes promtool check rules', async () => {
  const result = await promtool('check', 'rules', 'rules.yaml');
  expect(result.output).toMatch(/SUCCESS: \d+ rules found/);
  expect(result.code, result.output).toBe(0);
});

it('passes its promtool unit tests, which cover every alert', async () => {
  const result = await promtool('test', 'rules', 'alerts.test.yaml');
  expect(result.code, result.output).toBe(0);
  expect(result.output).toContain('SUCCESS');
  const tests = parse(await readFile(join(dir, 'alerts.test.yaml'), 'utf8')) as { tests: Array<{ alert_rule_test: Array<{ alertname: string; exp_alerts: unknown[] }> }> };
  const alerts = new Set(rules.groups.flatMap((g) => g.rules.flatMap((r) => (r.alert ? [r.alert] : []))));
  const firing = new Set(tests.tests.flatMap((t) => t.alert_rule_test.filter((c) => c.exp_alerts.length > 0).map((c) => c.alertname)));
  const quiet = new Set(tests.tests.flatMap((t) => t.alert_rule_test.filter((c) => c.exp_alerts.length === 0).map((c) => c.alertname)));
  expect(firing).toEqual(alerts);
  // and each alert has a case where it stays quiet, apart from certificate expiry, whose cases keep a fresh certificate quiet
  expect(new Set([...quiet, 'SmtpGatewayCertificateExpiringSoon'])).toEqual(alerts);
});

it('fails promtool test rules when an alert does not behave as its test says', async () => {
  const broken = stringify(rules).replace('> 0.1\n', '> 0.5\n');
  expect(broken).not.toBe(stringify(rules));
  await writeFile(join(dir, 'rules.yaml'), broken);
  try {
    const result = await promtool('test', 'rules', 'alerts.test.yaml');
    expect(result.code).not.toBe(0);
    expect(result.output).toContain('SmtpGatewayUpstreamFailures');
  } finally {
    await writeFile(join(dir, 'rules.yaml'), stringify(rules));
  }
});
