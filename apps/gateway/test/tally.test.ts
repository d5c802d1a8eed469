/**
 * The tallied metrics (src/tally.ts) against prom-client's own: the same observations and
 * increments must be exposed as the very same text, scrape after scrape.
 */
import { Counter, Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { TalliedCounter, TalliedHistogram } from '../src/tally.js';

const BUCKETS = [0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/** Values on, between, under and over the bounds. */
const SECONDS = [0, 0.001, 0.025, 0.0250001, 0.05, 0.07, 0.1, 0.3, 1, 2.5, 4.99, 5, 9.9, 10, 29, 30, 30.5, 1e6];

describe('TalliedHistogram', () => {
  it('is exposed as prom-client Histogram exposes the same observations', async () => {
    const ours = new Registry();
    const theirs = new Registry();
    const name = 'smtp_gateway_cakemail_request_duration_seconds';
    const help = "Time of each HTTP attempt to Cakemail's API, answered or not, by call.";
    const tallied = new TalliedHistogram({ name, help, labelName: 'call', buckets: BUCKETS, registers: [ours] });
    const reference = new Histogram({ name, help, labelNames: ['call'], buckets: BUCKETS, registers: [theirs] });

    expect(await ours.metrics()).toBe(await theirs.metrics()); // no series yet

    const calls = ['POST /v2/emails', 'POST /token', 'GET /lists "quoted" \\ back'];
    const children = new Map(calls.map((call) => [call, tallied.child(call)]));
    SECONDS.forEach((s, i) => {
      const call = calls[i % calls.length] as string;
      children.get(call)?.observe(s);
      reference.observe({ call }, s);
    });
    const first = await ours.metrics();
    expect(first).toBe(await theirs.metrics());
    expect(first).toContain('smtp_gateway_cakemail_request_duration_seconds_bucket{le="0.05",call="POST /v2/emails"} 2');
    // a second scrape changes nothing; more observations add up
    expect(await ours.metrics()).toBe(first);
    tallied.child('POST /token').observe(0.2);
    reference.observe({ call: 'POST /token' }, 0.2);
    expect(await ours.metrics()).toBe(await theirs.metrics());
    // the JSON form too, but for prom-client's exemplar fields (null: exemplars are off)
    const withoutExemplars = JSON.parse(JSON.stringify(await theirs.getMetricsAsJSON(), (k, v: unknown) => (k === 'exemplar' ? undefined : v))) as unknown;
    expect(await ours.getMetricsAsJSON()).toEqual(withoutExemplars);

    ours.resetMetrics();
    theirs.resetMetrics();
    expect(await ours.metrics()).toBe(await theirs.metrics());
  });

  it('ignores a value that is not a finite number, which prom-client refuses', async () => {
    const registry = new Registry();
    const h = new TalliedHistogram({ name: 'h_seconds', help: 'h', labelName: 'call', buckets: [1], registers: [registry] });
    const child = h.child('x');
    child.observe(Number.NaN);
    child.observe(Number.POSITIVE_INFINITY);
    child.observe(0.5);
    const text = await registry.metrics();
    expect(text).toContain('h_seconds_count{call="x"} 1');
    expect(text).toContain('h_seconds_sum{call="x"} 0.5');
  });

  it('refuses buckets that are not ascending', () => {
    expect(() => new TalliedHistogram({ name: 'h', help: 'h', labelName: 'l', buckets: [1, 1], registers: [] })).toThrow(/ascending/);
  });
});

describe('TalliedCounter', () => {
  it('adds its increments to the counter at each scrape, once', async () => {
    const ours = new Registry();
    const theirs = new Registry();
    const config = { name: 'smtp_gateway_messages_total', help: 'Message transactions.', labelNames: ['reason'] as const };
    const tallied = new TalliedCounter({ ...config, labelNames: [...config.labelNames], registers: [ours] });
    const reference = new Counter({ ...config, labelNames: [...config.labelNames], registers: [theirs] });
    const accepted = tallied.child({ reason: 'accepted' });
    const temporary = tallied.child({ reason: 'temporary' });

    for (let i = 0; i < 3; i++) {
      accepted.inc();
      reference.inc({ reason: 'accepted' });
    }
    temporary.inc();
    reference.inc({ reason: 'temporary' });
    const first = await ours.metrics();
    expect(first).toBe(await theirs.metrics());
    expect(first).toContain('smtp_gateway_messages_total{reason="accepted"} 3');
    expect(await ours.metrics()).toBe(first); // not added twice

    accepted.inc();
    reference.inc({ reason: 'accepted' });
    expect(await ours.metrics()).toBe(await theirs.metrics());
    expect(await ours.metrics()).toContain('smtp_gateway_messages_total{reason="accepted"} 4');
    expect(await ours.getMetricsAsJSON()).toEqual(await theirs.getMetricsAsJSON());
  });
});
