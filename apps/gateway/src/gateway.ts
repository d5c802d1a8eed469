/**
 * createGateway(config) assembles the packages: the certificate (made for
 * development when missing, hot-reloaded), the Cakemail relay, the SMTP
 * listeners and the ops server. It returns `{ listen, close }`; only main.ts
 * reads the environment and installs signal handlers.
 */
import { ensureSelfSigned, createCertificateReloader, serverTlsSettings, type CertificateReloader } from '@cakemail-smtp/tls';
import {
  createMemoryAuthLimiter,
  createRedisAuthLimiter,
  createSmtpServer,
  type AuthLimiter,
  type Backend,
  type SmtpServer,
} from '@cakemail-smtp/smtp-core';
import { RedisAcceptedStore, createRelayBackend, type RelayBackend, type RelayObserver } from '@cakemail-smtp/cakemail';
import type { Config } from './config.js';
import type { Logger } from './logger.js';
import { createMetrics, type GatewayMetrics } from './metrics.js';
import { createOpsServer, type OpsServer } from './ops.js';

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
  /** Readiness off, stop accepting, let sessions finish up to SHUTDOWN_TIMEOUT_MS, close the rest. */
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
  let authLimiter: AuthLimiter | undefined;
  let accepted: RedisAcceptedStore | undefined;
  let state: 'starting' | 'ready' | 'stopping' = 'starting';

  return {
    metrics,
    async listen() {
      const paths = { certPath: config.TLS_CERT_PATH, keyPath: config.TLS_KEY_PATH };
      if (await ensureSelfSigned(paths, { hostname: config.SMTP_HOSTNAME })) {
        logger.warn(
          { certPath: paths.certPath, keyPath: paths.keyPath, hostname: config.SMTP_HOSTNAME },
          'no TLS certificate found: generated a self-signed one, for development only. Mount a CA-issued certificate in production',
        );
      }
      tls = await createCertificateReloader({ ...paths, pollIntervalMs: config.TLS_RELOAD_INTERVAL_MS, logger });
      const current = tls;
      metrics.certificateExpiry(() => current.current().notAfter);
      logger.info({ subject: current.current().subject, notAfter: current.current().notAfter.toISOString() }, 'TLS certificate loaded');

      // Redis (REDIS_URL) is optional and shared by every replica: the lockout
      // counters, the accepted-recipient store and the in-flight marks (both
      // written through to memory, used while Redis is away). Its URL may hold a password:
      // never logged. At most one warning every 30 s while it is away.
      let lastStoreWarning = 0;
      const storeWarning = (store: string, err: unknown): void => {
        if (Date.now() - lastStoreWarning < 30_000) return;
        lastStoreWarning = Date.now();
        logger.warn({ store, err: err instanceof Error ? err.message : String(err) }, 'Redis unavailable');
      };
      if (config.REDIS_URL && !deps.backend) {
        accepted = await RedisAcceptedStore.connect({
          url: config.REDIS_URL,
          onError: (err) => storeWarning('accepted (answering from memory meanwhile)', err),
        });
      }
      const backend =
        deps.backend ??
        (relay = createRelayBackend(
          {
            apiUrl: config.CAKEMAIL_API_URL,
            timeoutMs: config.CAKEMAIL_TIMEOUT_MS,
            connections: config.CAKEMAIL_CONNECTIONS,
            deadlineMs: config.UPSTREAM_DEADLINE_MS,
            emailType: config.CAKEMAIL_EMAIL_TYPE,
            ...(config.CAKEMAIL_LIST_ID === undefined ? {} : { listId: config.CAKEMAIL_LIST_ID }),
            authCacheTtlMs: config.AUTH_CACHE_TTL_MS,
            inflightWaitMs: config.INFLIGHT_WAIT_MS,
            bounces: config.BOUNCE_PARTIAL_FAILURES === 'on',
            hostname: config.SMTP_HOSTNAME,
          },
          {
            logger,
            onBounce: metrics.bounce,
            ...(accepted ? { store: accepted, inflight: accepted.inflight } : {}),
            ...(deps.onRelayed ? { onRelayed: deps.onRelayed } : {}),
          },
        ));

      const lockout = {
        pairLimit: config.AUTH_LOCKOUT_USER_IP,
        ipLimit: config.AUTH_LOCKOUT_IP,
        windowMs: config.AUTH_LOCKOUT_WINDOW_MS,
        onError: (err: unknown) => storeWarning('lockout (counting in memory meanwhile)', err),
        // A secret, never logged. Without Redis a random key for this process (the default) does.
        ...(config.AUTH_LOCKOUT_KEY === undefined ? {} : { usernameKey: config.AUTH_LOCKOUT_KEY }),
      };
      authLimiter = config.REDIS_URL
        ? // loadConfig requires the key with REDIS_URL; an empty one is refused here too.
          await createRedisAuthLimiter({ ...lockout, url: config.REDIS_URL, usernameKey: config.AUTH_LOCKOUT_KEY ?? '' })
        : createMemoryAuthLimiter(lockout);
      logger.info({ store: config.REDIS_URL ? 'redis' : 'memory' }, 'lockout counters, accepted-recipient store and in-flight marks');

      smtp = createSmtpServer({
        hostname: config.SMTP_HOSTNAME,
        greeting: 'Cakemail SMTP gateway',
        host: config.SMTP_HOST,
        port: config.SMTP_PORT,
        securePort: config.SMTPS_PORT === 0 ? null : config.SMTPS_PORT,
        tls: current,
        tlsSettings: serverTlsSettings,
        backend,
        logger,
        authLimiter,
        count: metrics.count,
        ...(config.PROXY_PROTOCOL === 'on' && config.PROXY_TRUSTED_CIDRS ? { proxyTrustedCidrs: config.PROXY_TRUSTED_CIDRS } : {}),
        limits: {
          maxMessageSize: config.MAX_MESSAGE_SIZE,
          maxRecipients: config.MAX_RECIPIENTS,
          idleTimeoutMs: config.SMTP_IDLE_TIMEOUT_MS,
          handshakeTimeoutMs: config.TLS_HANDSHAKE_TIMEOUT_MS,
          maxConnections: config.MAX_CONNECTIONS,
          maxConnectionsPerIp: config.MAX_CONNECTIONS_PER_IP,
          sessionMaxMs: config.SESSION_MAX_MS,
          maxMessagesPerSession: config.MAX_MESSAGES_PER_SESSION,
          maxJunkCommands: config.MAX_JUNK_COMMANDS,
          maxUnauthenticatedCommands: config.MAX_UNAUTHENTICATED_COMMANDS,
          maxAuthFailures: config.MAX_AUTH_FAILURES,
          bareLf: config.BARE_LF_POLICY,
          maxInflightBytes: config.MAX_INFLIGHT_BYTES,
          closeTimeoutMs: config.SHUTDOWN_TIMEOUT_MS,
          // The relay answers a received message within its deadline.
          maxReplyWaitMs: config.UPSTREAM_DEADLINE_MS,
        },
      });
      const server = smtp;
      metrics.sessions(() => server.connections);
      metrics.inflightBytes(() => server.inflightBytes);
      ops = createOpsServer({
        host: config.OPS_HOST,
        port: config.OPS_PORT,
        registry: metrics.registry,
        notReady: () => (state === 'ready' ? undefined : state),
      });
      const opsPort = await ops.listen();
      const { port, securePort } = await smtp.listen();
      state = 'ready';
      return { smtpPort: port, smtpsPort: securePort, opsPort };
    },
    async close() {
      state = 'stopping';
      await smtp?.close();
      await relay?.close();
      await authLimiter?.close();
      await accepted?.close();
      tls?.close();
      await ops?.close();
    },
  };
}
