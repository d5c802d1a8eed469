/**
 * Every metric that the Grafana dashboard and the alert rules query is one a
 * running gateway exports (or one of the few named below that come from
 * Prometheus itself or kube-state-metrics): a renamed metric breaks this test,
 * not a dashboard in production. The gateway runs with QUEUE_MODE=always on a
 * redis-server, so that it exports the queue's metrics too; only the queue's
 * alerts (deploy/kubernetes/components/queue-alerts) and the dashboard's queue
 * row may read them, since a gateway with QUEUE_MODE=off does not export them.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { createFakeCakemail, startRedisServer, type FakeCakemail, type TestRedis } from '@cakemail-smtp/testkit';
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

/** Where a metric is read, and whether that place is about the queue. */
interface Source {
  readonly where: string;
  readonly queue: boolean;
}

const queueRow = /^Queue\b/;

async function queried(): Promise<Map<string, Source[]>> {
  const where = new Map<string, Source[]>();
  const add = (expr: string, source: Source): void => {
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
  // a collapsed row holds its panels; the others follow their row
  let row = '';
  const visit = (panel: Panel, inRow: string): void => {
    for (const target of panel.targets ?? []) add(target.expr, { where: `dashboard panel "${panel.title}"`, queue: queueRow.test(inRow) });
    for (const inner of panel.panels ?? []) visit(inner, panel.title);
  };
  for (const panel of dashboard.panels) {
    if ((panel as { type?: string }).type === 'row') row = panel.title;
    visit(panel, row);
  }
  for (const variable of dashboard.templating.list) {
    const query = typeof variable.query === 'object' ? variable.query.query : variable.query;
    const inner = /^label_values\((.*),\s*\w+\)$/.exec(query ?? '')?.[1];
    if (inner) add(inner, { where: `dashboard variable ${variable.name}`, queue: false });
  }
  const rules = [
    { file: 'deploy/kubernetes/base/prometheusrule.yaml', queue: false },
    { file: 'deploy/kubernetes/components/queue-alerts/prometheusrule.yaml', queue: true },
  ];
  for (const { file, queue } of rules) {
    const rule = parse(await readFile(join(root, file), 'utf8')) as {
      spec: { groups: Array<{ rules: Array<{ alert?: string; record?: string; expr: string }> }> };
    };
    for (const r of rule.spec.groups.flatMap((g) => g.rules)) add(r.expr, { where: `alert ${r.alert ?? r.record} (${file})`, queue });
  }
  return where;
}

/** The names a scrape's text exposes, with a histogram's or summary's series. */
function exposed(text: string): Set<string> {
  const names = new Set<string>();
  for (const [, name, type] of text.matchAll(/^# TYPE (\S+) (\S+)$/gm) as IterableIterator<[string, string, string]>) {
    names.add(name);
    if (type === 'histogram') for (const suffix of ['_bucket', '_sum', '_count']) names.add(name + suffix);
    if (type === 'summary') for (const suffix of ['_sum', '_count']) names.add(name + suffix);
  }
  return names;
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
  let redis: TestRedis;
  let gateway: Running;
  let dir: string;
  let exported: Set<string>;

  beforeAll(async () => {
    fake = createFakeCakemail();
    await fake.listen(0, '127.0.0.1');
    redis = await startRedisServer();
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
        REDIS_URL: redis.url,
        AUTH_LOCKOUT_KEY: 'metrics-test-lockout-key-0123456789abcdef',
        QUEUE_MODE: 'always',
        QUEUE_ENCRYPTION_KEY: Buffer.alloc(32, 1).toString('base64'),
      },
    });
    const ready = await gateway.waitFor(readyLine);
    const text = await (await fetch(`http://127.0.0.1:${ready.opsPort}/metrics`)).text();
    exported = exposed(text);
  });

  afterAll(async () => {
    await gateway?.stop();
    await fake?.close();
    await redis?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('exports every metric that the dashboard and the alerts query', async () => {
    const where = await queried();
    expect(where.size).toBeGreaterThan(8);
    expect(exported.size).toBeGreaterThan(10);
    expect([...exported]).toEqual(expect.arrayContaining(['smtp_gateway_queue_depth', 'smtp_gateway_queue_oldest_age_seconds']));
    const missing = [...where]
      .filter(([name]) => !exported.has(name) && !(name in fromElsewhere))
      .map(([name, sources]) => `${name} (${sources.map((s) => s.where).join(', ')})`);
    expect(missing).toEqual([]);
    // with QUEUE_MODE=off there are no queue series: only the queue's alerts and the dashboard's queue row read them
    const misplaced = [...where]
      .filter(([name, sources]) => name.startsWith('smtp_gateway_queue_') && !sources.every((s) => s.queue))
      .map(([name, sources]) => `${name} (${sources.map((s) => s.where).join(', ')})`);
    expect(misplaced).toEqual([]);
    // what the dashboard names from elsewhere is really used, so the list stays honest
    for (const name of Object.keys(fromElsewhere)) expect(where.has(name), name).toBe(true);
  });

  it('has every metric of its own on the dashboard', async () => {
    const where = await queried();
    const own = [...exported].filter((name) => !/^smtp_gateway_(process|nodejs)_/.test(name));
    expect(own).toEqual(
      expect.arrayContaining([
        'smtp_gateway_proxy_header_failures_total',
        'smtp_gateway_limit_rejections_total',
        'smtp_gateway_inflight_message_bytes',
        'smtp_gateway_bounces_total',
      ]),
    );
    // A histogram is one metric: on the dashboard when any of its series is (its _bucket for quantiles).
    const family = (name: string): string => {
      const series = /^(.*)_(?:bucket|sum|count)$/.exec(name);
      return series?.[1] !== undefined && exported.has(`${series[1]}_bucket`) ? series[1] : name;
    };
    const dashboarded = new Set([...where].filter(([, sources]) => sources.some((s) => s.where.startsWith('dashboard'))).map(([name]) => family(name)));
    expect(own.filter((name) => !dashboarded.has(family(name)))).toEqual([]);
  });
});
