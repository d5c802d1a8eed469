/** The queue's Prometheus metrics, on the registry the gateway passes in. */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { QueueStats } from './types.js';

export interface QueueMetrics {
  readonly enqueued: Counter<'outcome'>;
  readonly deliveries: Counter<'outcome'>;
  readonly bounces: Counter<'cause' | 'outcome'>;
  readonly retries: Counter;
  readonly possibleDuplicates: Counter;
}

const PREFIX = 'smtp_gateway_queue_';

/**
 * Depth, bytes and oldest age are read from Redis at scrape time, so every
 * replica reports the same shared queue: aggregate them with max(), not sum().
 */
export function queueMetrics(register: Registry, stats: () => Promise<QueueStats>): QueueMetrics {
  let last: Promise<QueueStats | undefined> | undefined;
  // One Redis read per scrape serves the three gauges.
  const read = (): Promise<QueueStats | undefined> => {
    last ??= stats()
      .catch(() => undefined)
      .finally(() => setImmediate(() => (last = undefined)));
    return last;
  };
  const gauge = (name: string, help: string, pick: (s: QueueStats) => number): void => {
    new Gauge({
      name: PREFIX + name,
      help,
      registers: [register],
      async collect() {
        const s = await read();
        if (s) this.set(pick(s));
      },
    });
  };
  gauge('depth', 'Messages in the queue (waiting, delayed, active or failed)', (s) => s.depth);
  gauge('bytes', 'Bytes the queued messages hold, as counted against QUEUE_MAX_BYTES', (s) => s.bytes);
  gauge('oldest_age_seconds', 'Age of the oldest queued message', (s) => s.oldestAgeSeconds);
  return {
    enqueued: new Counter({
      name: PREFIX + 'enqueued_total',
      help: 'Messages offered to the queue, by outcome (queued, full, error)',
      labelNames: ['outcome'],
      registers: [register],
    }),
    deliveries: new Counter({
      name: PREFIX + 'deliveries_total',
      help: 'Recipient delivery attempts from the queue, by outcome (accepted, temporary, permanent)',
      labelNames: ['outcome'],
      registers: [register],
    }),
    bounces: new Counter({
      name: PREFIX + 'bounces_total',
      help: 'Recipients given up on, by cause (permanent, expired, operator) and outcome (sent, failed, suppressed)',
      labelNames: ['cause', 'outcome'],
      registers: [register],
    }),
    retries: new Counter({
      name: PREFIX + 'retries_total',
      help: 'Attempts that left recipients for a later retry',
      registers: [register],
    }),
    possibleDuplicates: new Counter({
      name: PREFIX + 'possible_duplicates_total',
      help: 'Attempts cut short by a crash, found on recovery: each may have sent one recipient twice',
      registers: [register],
    }),
  };
}
