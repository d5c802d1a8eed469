/**
 * The configuration the gateway runs on: the validated environment cut into
 * one section per part it configures, each in the shape that part takes
 * (plain typed options, already valid). Built once, frozen.
 */
import type { AuthLimiterOptions, SmtpLimits } from '@cakemail-smtp/smtp-core';
import type { RelayConfig } from '@cakemail-smtp/cakemail';
import type { Environment } from './environment.js';

export interface Config {
  /** The SMTP listeners. */
  readonly smtp: {
    readonly host: string;
    readonly port: number;
    /** The implicit-TLS listener; null when SMTPS_PORT is 0. */
    readonly securePort: number | null;
    /** Greeting and EHLO name, the self-signed certificate's CN, the bounces' Reporting-MTA. */
    readonly hostname: string;
  };
  /** The certificate files and how often they are re-read. */
  readonly tls: {
    readonly certPath: string;
    readonly keyPath: string;
    readonly reloadIntervalMs: number;
  };
  /** Sessions, messages and connections, as smtp-core takes them. */
  readonly limits: SmtpLimits;
  /** PROXY protocol from these balancers; null when PROXY_PROTOCOL is off. */
  readonly proxy: { readonly trustedCidrs: readonly string[] } | null;
  /** The Cakemail relay, as the cakemail package takes it; every setting given. */
  readonly relay: RelayConfig & Required<Pick<RelayConfig, 'connections' | 'authCacheTtlMs' | 'inflightWaitMs' | 'bounces' | 'hostname'>>;
  /** The failed-AUTH lockout across connections (the store's error hook is the gateway's). */
  readonly lockout: Required<Pick<AuthLimiterOptions, 'pairLimit' | 'ipLimit' | 'windowMs'>> & Pick<AuthLimiterOptions, 'usernameKey'>;
  /** The shared store of every replica; null without REDIS_URL. The URL may hold a password: never logged. */
  readonly redis: { readonly url: string } | null;
  /**
   * The store-and-forward queue (QUEUE_MODE fallback or always); null when off.
   * It lives in `redis`, which loadConfig requires with it.
   */
  readonly queue: {
    readonly mode: 'fallback' | 'always';
    /** QUEUE_ENCRYPTION_KEY, the key ring's text: a secret, never logged. */
    readonly encryptionKey: string;
    readonly maxBytes: number;
    readonly concurrency: number;
    readonly retryBaseMs: number;
    readonly retryMaxMs: number;
    readonly maxAgeMs: number;
  } | null;
  /** The ops HTTP server: health and metrics. */
  readonly ops: { readonly host: string; readonly port: number };
  readonly log: { readonly level: Environment['LOG_LEVEL']; readonly format: Environment['LOG_FORMAT'] };
}

function deepFreeze<T extends object>(value: T): T {
  for (const child of Object.values(value)) {
    if (child !== null && typeof child === 'object' && !Object.isFrozen(child)) deepFreeze(child as object);
  }
  return Object.freeze(value);
}

export function toSections(env: Environment): Config {
  return deepFreeze({
    smtp: {
      host: env.SMTP_HOST,
      port: env.SMTP_PORT,
      securePort: env.SMTPS_PORT === 0 ? null : env.SMTPS_PORT,
      hostname: env.SMTP_HOSTNAME,
    },
    tls: { certPath: env.TLS_CERT_PATH, keyPath: env.TLS_KEY_PATH, reloadIntervalMs: env.TLS_RELOAD_INTERVAL_MS },
    limits: {
      maxMessageSize: env.MAX_MESSAGE_SIZE,
      maxRecipients: env.MAX_RECIPIENTS,
      idleTimeoutMs: env.SMTP_IDLE_TIMEOUT_MS,
      handshakeTimeoutMs: env.TLS_HANDSHAKE_TIMEOUT_MS,
      maxConnections: env.MAX_CONNECTIONS,
      maxConnectionsPerIp: env.MAX_CONNECTIONS_PER_IP,
      sessionMaxMs: env.SESSION_MAX_MS,
      maxMessagesPerSession: env.MAX_MESSAGES_PER_SESSION,
      maxJunkCommands: env.MAX_JUNK_COMMANDS,
      maxUnauthenticatedCommands: env.MAX_UNAUTHENTICATED_COMMANDS,
      maxAuthFailures: env.MAX_AUTH_FAILURES,
      bareLf: env.BARE_LF_POLICY,
      maxInflightBytes: env.MAX_INFLIGHT_BYTES,
      // The drain lasts at most the shutdown timeout.
      closeTimeoutMs: env.SHUTDOWN_TIMEOUT_MS,
      // The relay answers a received message within its deadline.
      maxReplyWaitMs: env.UPSTREAM_DEADLINE_MS,
    },
    proxy: env.PROXY_PROTOCOL === 'on' && env.PROXY_TRUSTED_CIDRS ? { trustedCidrs: env.PROXY_TRUSTED_CIDRS } : null,
    relay: {
      apiUrl: env.CAKEMAIL_API_URL,
      timeoutMs: env.CAKEMAIL_TIMEOUT_MS,
      connections: env.CAKEMAIL_CONNECTIONS,
      deadlineMs: env.UPSTREAM_DEADLINE_MS,
      emailType: env.CAKEMAIL_EMAIL_TYPE,
      ...(env.CAKEMAIL_LIST_ID === undefined ? {} : { listId: env.CAKEMAIL_LIST_ID }),
      authCacheTtlMs: env.AUTH_CACHE_TTL_MS,
      inflightWaitMs: env.INFLIGHT_WAIT_MS,
      bounces: env.BOUNCE_PARTIAL_FAILURES === 'on',
      hostname: env.SMTP_HOSTNAME,
    },
    lockout: {
      pairLimit: env.AUTH_LOCKOUT_USER_IP,
      ipLimit: env.AUTH_LOCKOUT_IP,
      windowMs: env.AUTH_LOCKOUT_WINDOW_MS,
      // A secret, never logged. Without it a random key for this process does (memory counters only).
      ...(env.AUTH_LOCKOUT_KEY === undefined ? {} : { usernameKey: env.AUTH_LOCKOUT_KEY }),
    },
    redis: env.REDIS_URL === undefined ? null : { url: env.REDIS_URL },
    queue:
      env.QUEUE_MODE === 'off' || env.QUEUE_ENCRYPTION_KEY === undefined
        ? null
        : {
            mode: env.QUEUE_MODE,
            encryptionKey: env.QUEUE_ENCRYPTION_KEY,
            maxBytes: env.QUEUE_MAX_BYTES,
            concurrency: env.QUEUE_CONCURRENCY,
            retryBaseMs: env.QUEUE_RETRY_BASE_MS,
            retryMaxMs: env.QUEUE_RETRY_MAX_MS,
            maxAgeMs: env.QUEUE_MAX_AGE_MS,
          },
    ops: { host: env.OPS_HOST, port: env.OPS_PORT },
    log: { level: env.LOG_LEVEL, format: env.LOG_FORMAT },
  });
}
