/**
 * createGateway(config) assembles the packages, each from its section of the
 * configuration: the certificate (made for development when missing,
 * hot-reloaded), the stores (stores.ts), the store-and-forward queue and its
 * workers (QUEUE_MODE), the Cakemail relay, the SMTP listeners and the ops
 * server. It returns `{ listen, close }`; it reads no environment and
 * installs no signal handler (serve.ts does).
 */
import { ensureSelfSigned, createCertificateReloader, serverTlsSettings, type CertificateReloader } from '@cakemail-smtp/tls';
import { createSmtpServer, type Backend, type SmtpServer } from '@cakemail-smtp/smtp-core';
import { createRelayBackend, type QueuedBody, type QueuedSession, type RelayBackend, type RelayObserver } from '@cakemail-smtp/cakemail';
import { openQueue, type MessageQueue } from '@cakemail-smtp/queue';
import type { Config } from './config/index.js';
import type { Logger } from './logger.js';
import { createMetrics, type GatewayMetrics } from './metrics.js';
import { createOpsServer, type OpsServer } from './ops.js';
import { openStores, type Stores } from './stores.js';

export interface GatewayDeps {
  readonly logger: Logger;
  /** Replaces the Cakemail relay (tests). */
  readonly backend?: Backend;
  /** Told what each message became (development mode: the dev inbox). */
  readonly onRelayed?: RelayObserver;
}

export interface ListeningGateway {
  readonly smtpPort: number;
  readonly smtpsPort: number | null;
  readonly opsPort: number;
}

export interface Gateway {
  listen(): Promise<ListeningGateway>;
  /**
   * Readiness off, stop accepting, let sessions finish up to SHUTDOWN_TIMEOUT_MS (limits.closeTimeoutMs), close the rest;
   * then the queue workers finish what they hold within what is left of it and return the rest to the queue.
   */
  close(): Promise<void>;
  readonly metrics: GatewayMetrics;
}

export function createGateway(config: Config, deps: GatewayDeps): Gateway {
  const { logger } = deps;
  const metrics = createMetrics();
  let tls: CertificateReloader | undefined;
  let smtp: SmtpServer | undefined;
  let relay: RelayBackend | undefined;
  let ops: OpsServer | undefined;
  let stores: Stores | undefined;
  let queue: MessageQueue<QueuedBody, QueuedSession> | undefined;
  let closing: Promise<void> | undefined;
  let state: 'starting' | 'ready' | 'stopping' = 'starting';

  return {
    metrics,
    async listen() {
      // TLS: the certificate, made for development when missing, hot-reloaded.
      const paths = { certPath: config.tls.certPath, keyPath: config.tls.keyPath };
      if (await ensureSelfSigned(paths, { hostname: config.smtp.hostname })) {
        logger.warn(
          { certPath: paths.certPath, keyPath: paths.keyPath, hostname: config.smtp.hostname },
          'no TLS certificate found: generated a self-signed one, for development only. Mount a CA-issued certificate in production',
        );
      }
      tls = await createCertificateReloader({ ...paths, pollIntervalMs: config.tls.reloadIntervalMs, logger });
      const current = tls;
      metrics.certificateExpiry(() => current.current().notAfter);
      logger.info({ subject: current.current().subject, notAfter: current.current().notAfter.toISOString() }, 'TLS certificate loaded');

      // Stores: lockout counters, accepted recipients, in-flight marks (one Redis client with REDIS_URL).
      stores = await openStores({ lockout: config.lockout, redis: config.redis, accepted: !deps.backend, logger });
      const { accepted } = stores;

      // Queue (QUEUE_MODE fallback or always): in REDIS_URL, which loadConfig requires with it; the relay's, so none
      // for a replaced backend (tests). Its metrics join the gateway's; Redis settings that break its promise are warned of.
      const queueConfig = deps.backend ? null : config.queue;
      if (queueConfig && config.redis) {
        queue = await openQueue<QueuedBody, QueuedSession>({
          redisUrl: config.redis.url,
          keys: queueConfig.encryptionKey,
          maxBytes: queueConfig.maxBytes,
          retryBaseMs: queueConfig.retryBaseMs,
          retryMaxMs: queueConfig.retryMaxMs,
          maxAgeMs: queueConfig.maxAgeMs,
          register: metrics.registry,
          logger,
        });
        const check = await queue.checkRedis();
        for (const warning of check.warnings) logger.warn({ store: 'queue' }, warning);
        logger.info(
          {
            mode: queueConfig.mode,
            concurrency: queueConfig.concurrency,
            maxBytes: queueConfig.maxBytes,
            maxAgeMs: queueConfig.maxAgeMs,
            appendonly: check.appendonly,
            appendfsync: check.appendfsync,
            maxmemoryPolicy: check.maxmemoryPolicy,
          },
          'queue open',
        );
      }

      // Relay: the Cakemail API behind each SMTP session.
      const backend =
        deps.backend ??
        (relay = createRelayBackend(config.relay, {
          logger,
          onBounce: metrics.bounce,
          onUpstreamAttempt: metrics.upstream,
          ...(accepted ? { store: accepted, inflight: accepted.inflight } : {}),
          ...(deps.onRelayed ? { onRelayed: deps.onRelayed } : {}),
          ...(queue && queueConfig ? { queue: { mode: queueConfig.mode, queue, maxAgeMs: queueConfig.maxAgeMs } } : {}),
        }));

      // SMTP: both listeners.
      smtp = createSmtpServer({
        hostname: config.smtp.hostname,
        greeting: 'Cakemail SMTP gateway',
        host: config.smtp.host,
        port: config.smtp.port,
        securePort: config.smtp.securePort,
        tls: current,
        tlsSettings: serverTlsSettings,
        backend,
        logger,
        authLimiter: stores.authLimiter,
        count: metrics.count,
        ...(config.proxy ? { proxyTrustedCidrs: config.proxy.trustedCidrs } : {}),
        limits: config.limits,
      });
      const server = smtp;
      metrics.sessions(() => server.connections);
      metrics.inflightBytes(() => server.inflightBytes);

      // Ops: health and metrics.
      ops = createOpsServer({
        host: config.ops.host,
        port: config.ops.port,
        registry: metrics.registry,
        notReady: () => (state === 'ready' ? undefined : state),
      });
      const opsPort = await ops.listen();
      const { port, securePort } = await smtp.listen();
      // Workers in every replica: they deliver what any replica queued, and what a dead one held.
      if (queue && queueConfig && relay) queue.startWorkers({ concurrency: queueConfig.concurrency, ...relay.queueHandlers() });
      state = 'ready';
      return { smtpPort: port, smtpsPort: securePort, opsPort };
    },
    close() {
      // Once: a second call waits for the first.
      closing ??= (async () => {
        state = 'stopping';
        // The whole shutdown fits in SHUTDOWN_TIMEOUT_MS: the queue's deliveries, then bounces, get what the drain left of it.
        const deadline = Date.now() + config.limits.closeTimeoutMs;
        await smtp?.close();
        // The workers send through the relay's client: they stop first, returning what they could not finish to the queue.
        await queue?.close(Math.max(0, deadline - Date.now()));
        await relay?.close(deadline - Date.now());
        await stores?.close();
        tls?.close();
        await ops?.close();
      })();
      return closing;
    },
  };
}
