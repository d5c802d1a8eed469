/**
 * Every metric that the Grafana dashboard and the alert rules query is one a
 * running gateway exports (or one of the few named below that come from
 * Prometheus itself or kube-state-metrics): a renamed metric breaks this test,
 * not a dashboard in production.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { createFakeCakemail, type FakeCakemail } from '@cakemail-smtp/testkit';
import { readyLine, root, run, type Running } from './helpers.js';

/** Series the queries read that the gateway does not export, and who does. */
const fromElsewhere: Record<string, string> = {
  up: 'Prometheus, for every scrape target',
  kube_deployment_status_replicas_available: 'kube-state-metrics',
};

const keywords = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'and', 'or', 'unless', 'offset', 'bool', 'inf', 'nan']);

/** The metric names a PromQL expression reads. */
function metricNames(expr: string): string[] {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'/g, '""') // strings
    .replace(/\{[^}]*\}/g, '') // label matchers
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, '') // grouping labels
    .replace(/\[[^\]]*\]/g, '') // ranges
    .replace(/\boffset\s+\w+/g, '')
    .replace(/\$\w+/g, ''); // dashboard variables
  const names = new Set<string>();
  for (const m of bare.matchAll(/([A-Za-z_:][A-Za-z0-9_:]*)(\s*\()?/g)) {
    const [, name, call] = m as unknown as [string, string, string | undefined];
    if (call === undefined && !keywords.has(name.toLowerCase())) names.add(name);
  }
  return [...names];
}

async function queried(): Promise<Map<string, string[]>> {
  const where = new Map<string, string[]>();
  const add = (expr: string, source: string): void => {
    for (const name of metricNames(expr)) where.set(name, [...(where.get(name) ?? []), source]);
  };
  interface Panel {
    title: string;
    targets?: Array<{ expr: string }>;
    panels?: Panel[];
  }
  const dashboard = JSON.parse(await readFile(join(root, 'deploy/grafana/smtp-gateway.json'), 'utf8')) as {
    panels: Panel[];
    templating: { list: Array<{ name: string; query?: string | { query: string } }> };
  };
  const panels = (list: Panel[]): Panel[] => list.flatMap((p) => [p, ...panels(p.panels ?? [])]);
  for (const panel of panels(dashboard.panels)) for (const target of panel.targets ?? []) add(target.expr, `dashboard panel "${panel.title}"`);
  for (const variable of dashboard.templating.list) {
    const query = typeof variable.query === 'object' ? variable.query.query : variable.query;
    const inner = /^label_values\((.*),\s*\w+\)$/.exec(query ?? '')?.[1];
    if (inner) add(inner, `dashboard variable ${variable.name}`);
  }
  const rule = parse(await readFile(join(root, 'deploy/kubernetes/base/prometheusrule.yaml'), 'utf8')) as {
    spec: { groups: Array<{ rules: Array<{ alert?: string; record?: string; expr: string }> }> };
  };
  for (const r of rule.spec.groups.flatMap((g) => g.rules)) add(r.expr, `alert ${r.alert ?? r.record}`);
  return where;
}

describe('metric names', () => {
  it('are read from PromQL as expected', () => {
    expect(metricNames('sum by (reason) (rate(smtp_gateway_auth_total{job="x", reason="failure"}[5m] offset 1d)) > 3 * up')).toEqual([
      'smtp_gateway_auth_total',
      'up',
    ]);
    expect(metricNames('absent(up{job="smtp-gateway"} == 1) or min(a_b) - time() < 14 * 86400')).toEqual(['up', 'a_b']);
  });
});

describe('a running gateway', () => {
  let fake: FakeCakemail;
  let gateway: Running;
  let dir: string;
  let exported: Set<string>;

  beforeAll(async () => {
    fake = createFakeCakemail();
    await fake.listen(0, '127.0.0.1');
    dir = await mkdtemp(join(tmpdir(), 'gw-metrics-'));
    gateway = run(process.execPath, [join(root, 'apps/gateway/dist/main.js'), 'start'], {
      env: {
        PATH: process.env['PATH'] ?? '',
        SMTP_HOST: '127.0.0.1',
        OPS_HOST: '127.0.0.1',
        SMTP_PORT: '0',
        SMTPS_PORT: '0',
        OPS_PORT: '0',
        SMTP_HOSTNAME: 'localhost',
        TLS_CERT_PATH: join(dir, 'tls.crt'),
        TLS_KEY_PATH: join(dir, 'tls.key'),
        CAKEMAIL_API_URL: fake.url,
      },
    });
    const ready = await gateway.waitFor(readyLine);
    const text = await (await fetch(`http://127.0.0.1:${ready.opsPort}/metrics`)).text();
    exported = new Set([...text.matchAll(/^# TYPE (\S+) \S+$/gm)].map((m) => m[1] as string));
  });

  afterAll(async () => {
    await gateway?.stop();
    await fake?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('exports every metric that the dashboard and the alerts query', async () => {
    const where = await queried();
    expect(where.size).toBeGreaterThan(8);
    expect(exported.size).toBeGreaterThan(10);
    const missing = [...where].filter(([name]) => !exported.has(name) && !(name in fromElsewhere)).map(([name, sources]) => `${name} (${sources.join(', ')})`);
    expect(missing).toEqual([]);
    // what the dashboard names from elsewhere is really used, so the list stays honest
    for (const name of Object.keys(fromElsewhere)) expect(where.has(name), name).toBe(true);
  });
});
