/**
 * Metrics counted once per message or per call to Cakemail, kept as plain numbers and handed to
 * prom-client when it is scraped. prom-client's own `inc` and `observe` check and hash their
 * labels on every call, `labels()` children included: about 10 µs of every S1 message for the
 * message counter and one attempt's counter and histogram (BENCHMARKS.md, "Fourth round").
 * Here an increment is one addition on a child looked up once per label set.
 */
import { Counter, type CounterConfiguration, type LabelValues, type Metric, type Registry } from 'prom-client';

/** One label set's count, added to the counter at the next scrape. */
export interface CounterChild {
  inc(): void;
}

class PendingCount implements CounterChild {
  n = 0;
  constructor(readonly labels: LabelValues<string>) {}

  inc(): void {
    this.n++;
  }
}

/**
 * A prom-client Counter whose hot-path increments are tallied by `child(labels)` and added to it
 * (`counter.inc(labels, n)`) by its `collect`, which prom-client runs before each scrape.
 */
export class TalliedCounter<L extends string> {
  readonly counter: Counter<L>;
  readonly #pending: PendingCount[] = [];

  constructor(config: Omit<CounterConfiguration<L>, 'collect'>) {
    const pending = this.#pending;
    this.counter = new Counter<L>({
      ...config,
      collect() {
        for (const p of pending) {
          if (p.n === 0) continue;
          this.inc(p.labels as LabelValues<L>, p.n);
          p.n = 0;
        }
      },
    });
  }

  /** A child for one label set; look it up once, not per increment. */
  child(labels: LabelValues<L>): CounterChild {
    const p = new PendingCount(labels);
    this.#pending.push(p);
    return p;
  }
}

/** One label value's observations. */
export interface HistogramChild {
  observe(value: number): void;
}

class Buckets implements HistogramChild {
  /** Observations per bucket, not cumulative; the last one is over every bound (+Inf). */
  readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(
    readonly value: string,
    readonly bounds: readonly number[],
  ) {
    this.counts = new Float64Array(bounds.length + 1);
  }

  observe(value: number): void {
    if (!Number.isFinite(value)) return;
    const { bounds } = this;
    let i = 0;
    while (i < bounds.length && value > (bounds[i] as number)) i++;
    (this.counts[i] as number)++;
    this.sum += value;
    this.count++;
  }
}

/** One line of a histogram's exposition, as prom-client's metrics give it. */
export interface SeriesValue {
  readonly labels: Readonly<Record<string, string | number>>;
  readonly value: number;
  readonly metricName: string;
}

/** What a prom-client metric's `get()` answers (its typings name `type` an enum; it is the text). */
export interface HistogramSnapshot {
  readonly name: string;
  readonly help: string;
  readonly type: 'histogram';
  readonly values: readonly SeriesValue[];
  readonly aggregator: 'sum';
}

export interface TalliedHistogramConfiguration {
  readonly name: string;
  readonly help: string;
  /** The one label its series are split by. */
  readonly labelName: string;
  /** Upper bounds, ascending (`le`); +Inf is added. */
  readonly buckets: readonly number[];
  readonly registers: readonly Registry[];
}

/**
 * A histogram with one label, exposed with the very lines prom-client's Histogram writes for the
 * same observations (a test compares both). Registered as a prom-client metric: the registry
 * reads it through `get()`, the method every prom-client metric has.
 */
export class TalliedHistogram {
  readonly name: string;
  readonly help: string;
  readonly type = 'histogram' as const;
  readonly aggregator = 'sum' as const;
  readonly #labelName: string;
  readonly #bounds: readonly number[];
  readonly #children = new Map<string, Buckets>();

  constructor(config: TalliedHistogramConfiguration) {
    this.name = config.name;
    this.help = config.help;
    this.#labelName = config.labelName;
    this.#bounds = [...config.buckets];
    if (this.#bounds.some((b, i) => !Number.isFinite(b) || (i > 0 && b <= (this.#bounds[i - 1] as number)))) {
      throw new Error(`${config.name}: buckets must be finite and ascending`);
    }
    for (const registry of config.registers) registry.registerMetric(this as unknown as Metric);
  }

  /** The child of one label value; look it up once, not per observation. */
  child(value: string): HistogramChild {
    let c = this.#children.get(value);
    if (c === undefined) {
      c = new Buckets(value, this.#bounds);
      this.#children.set(value, c);
    }
    return c;
  }

  reset(): void {
    this.#children.clear();
  }

  /** prom-client's `Histogram.get()` answer for the same observations. */
  get(): Promise<HistogramSnapshot> {
    const values: SeriesValue[] = [];
    const bucket = `${this.name}_bucket`;
    for (const c of this.#children.values()) {
      let cumulative = 0;
      this.#bounds.forEach((le, i) => {
        cumulative += c.counts[i] as number;
        values.push({ labels: { le, [this.#labelName]: c.value }, value: cumulative, metricName: bucket });
      });
      values.push(
        { labels: { le: '+Inf', [this.#labelName]: c.value }, value: c.count, metricName: bucket },
        { labels: { [this.#labelName]: c.value }, value: c.sum, metricName: `${this.name}_sum` },
        { labels: { [this.#labelName]: c.value }, value: c.count, metricName: `${this.name}_count` },
      );
    }
    return Promise.resolve({ name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator });
  }
}
