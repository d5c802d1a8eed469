/**
 * Prometheus metrics on a private registry, prefix `smtp_gateway_`, base units,
 * `_total` on counters. No addresses or usernames in labels.
 */
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { UpstreamAttempt } from '@cakemail-smtp/cakemail';
import type { CountHook, SmtpEvent } from '@cakemail-smtp/smtp-core';
import { type CounterChild, type HistogramChild, TalliedCounter, TalliedHistogram } from './tally.js';

export interface GatewayMetrics {
  readonly registry: Registry;
  /** smtp-core's counting hook. */
  readonly count: CountHook;
  /** Open SMTP sessions, read at scrape time. */
  sessions(read: () => number): void;
  /** Message bytes held in flight (MAX_INFLIGHT_BYTES), read at scrape time. */
  inflightBytes(read: () => number): void;
  /** The serving certificate's expiry, read at scrape time. */
  certificateExpiry(read: () => Date): void;
  /** A delivery status notification sent, or failed. */
  readonly bounce: (result: 'sent' | 'failed') => void;
  /** An HTTP attempt to Cakemail's API ended (the client's `onAttempt`). */
  readonly upstream: (attempt: UpstreamAttempt) => void;
}

/** One SMTP event's counter: an increment for a reason, its child looked up once per reason. */
type EventCounter = (reason: string) => void;

function eventCounter(counter: TalliedCounter<'reason'>): EventCounter {
  const children = new Map<string, CounterChild>();
  return (reason) => {
    let child = children.get(reason);
    if (child === undefined) {
      child = counter.child({ reason });
      children.set(reason, child);
    }
    child.inc();
  };
}

export function createMetrics(): GatewayMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'smtp_gateway_' });

  const event = (name: string, help: string): EventCounter => eventCounter(new TalliedCounter({ name, help, labelNames: ['reason'], registers: [registry] }));
  const counters: Record<SmtpEvent, EventCounter> = {
    connection: event('smtp_gateway_connections_total', 'SMTP connections accepted, by listener (reason=starttls|implicit).'),
    tls_handshake_failure: event('smtp_gateway_tls_handshake_failures_total', 'TLS handshakes that failed or timed out, by reason.'),
    proxy_header_failure: event(
      'smtp_gateway_proxy_header_failures_total',
      'Connections from a trusted balancer closed for an invalid or missing PROXY protocol header, by reason (invalid|missing).',
    ),
    auth: event('smtp_gateway_auth_total', 'AUTH attempts, by result (success|failure|error).'),
    limit: event('smtp_gateway_limit_rejections_total', 'Things refused by a limit or edge defence, by reason.'),
    message: event('smtp_gateway_messages_total', 'Message transactions, by result (accepted|temporary|permanent).'),
  };

  const bounces = new Counter({
    name: 'smtp_gateway_bounces_total',
    help: 'Delivery status notifications for recipients Cakemail refused after others were accepted, by result (sent|failed).',
    labelNames: ['result'],
    registers: [registry],
  });
  for (const result of ['sent', 'failed']) bounces.inc({ result }, 0);

  const upstreamRequests = new TalliedCounter({
    name: 'smtp_gateway_cakemail_requests_total',
    help: "HTTP attempts to Cakemail's API (each retry counts), by call and outcome (2xx|3xx|4xx|429|5xx|timeout|network|aborted).",
    labelNames: ['call', 'outcome'],
    registers: [registry],
  });
  const upstreamSeconds = new TalliedHistogram({
    name: 'smtp_gateway_cakemail_request_duration_seconds',
    help: "Time of each HTTP attempt to Cakemail's API, answered or not, by call.",
    labelName: 'call',
    buckets: [0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  });
  // The label sets are few (five calls, eight outcomes): each child is looked up once.
  const upstreamChildren = new Map<string, { readonly time: HistogramChild; readonly outcomes: Map<string, CounterChild> }>();
  const upstream = ({ call, outcome, seconds }: UpstreamAttempt): void => {
    let byCall = upstreamChildren.get(call);
    if (byCall === undefined) {
      byCall = { time: upstreamSeconds.child(call), outcomes: new Map() };
      upstreamChildren.set(call, byCall);
    }
    let count = byCall.outcomes.get(outcome);
    if (count === undefined) {
      count = upstreamRequests.child({ call, outcome });
      byCall.outcomes.set(outcome, count);
    }
    count.inc();
    byCall.time.observe(seconds);
  };

  let readSessions = (): number => 0;
  new Gauge({
    name: 'smtp_gateway_sessions',
    help: 'Open SMTP sessions.',
    registers: [registry],
    collect() {
      this.set(readSessions());
    },
  });
  let readInflight = (): number => 0;
  new Gauge({
    name: 'smtp_gateway_inflight_message_bytes',
    help: 'Message bytes held in flight, from the first DATA byte until the reply is sent (MAX_INFLIGHT_BYTES caps it).',
    registers: [registry],
    collect() {
      this.set(readInflight());
    },
  });
  let readExpiry: (() => Date) | undefined;
  new Gauge({
    name: 'smtp_gateway_tls_certificate_expiry_timestamp_seconds',
    help: 'When the serving TLS certificate expires (Unix time).',
    registers: [registry],
    collect() {
      if (readExpiry) this.set(Math.floor(readExpiry().getTime() / 1000));
    },
  });

  return {
    registry,
    count: (event, reason) => counters[event](reason),
    bounce: (result) => bounces.inc({ result }),
    upstream,
    sessions(read) {
      readSessions = read;
    },
    inflightBytes(read) {
      readInflight = read;
    },
    certificateExpiry(read) {
      readExpiry = read;
    },
  };
}
