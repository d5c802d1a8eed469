/**
 * The environment: every variable, its default (written once, in the schema)
 * and its validation. A bad value stops the start and names the variable.
 * Every variable here is in the README's configuration table with its
 * default (test/readme-config.test.ts checks the table against this schema).
 */
import { hostname } from 'node:os';
import { z } from 'zod';
import { MIN_USERNAME_KEY_BYTES, trustedPeers } from '@cakemail-smtp/smtp-core';
import { KeyRingError, parseKeyRing } from '@cakemail-smtp/queue';

const port = z.coerce.number().int().min(0).max(65_535);
const ms = z.coerce.number().int().min(1).max(86_400_000);
const count = z.coerce.number().int().min(0);

/**
 * 32 MiB, for a 512 MiB container: the README's MAX_INFLIGHT_BYTES row has the
 * measurement (about 125 MiB base RSS, 4.4 to 5.4 bytes of RSS per text byte
 * in flight, peaks near 364 MiB at this cap).
 */
const DEFAULT_MAX_INFLIGHT_BYTES = 33_554_432;

/** Secrets: a bad value is named, never shown. */
const SECRET: ReadonlySet<string> = new Set(['AUTH_LOCKOUT_KEY', 'REDIS_URL', 'QUEUE_ENCRYPTION_KEY']);

const schema = z.object({
  SMTP_HOST: z.string().min(1).default('0.0.0.0'),
  SMTP_PORT: port.default(587),
  SMTPS_PORT: port.default(465),
  SMTP_HOSTNAME: z
    .string()
    .regex(/^[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$/, 'must be a host name')
    .default(hostname()),
  TLS_CERT_PATH: z.string().min(1).default('/etc/smtp-gateway/tls/tls.crt'),
  TLS_KEY_PATH: z.string().min(1).default('/etc/smtp-gateway/tls/tls.key'),
  TLS_RELOAD_INTERVAL_MS: z.coerce.number().int().min(0).default(10_000),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  LOG_FORMAT: z.enum(['json', 'pretty']).default('json'),
  OPS_HOST: z.string().min(1).default('0.0.0.0'),
  OPS_PORT: port.default(8080),
  SHUTDOWN_TIMEOUT_MS: ms.default(70_000),

  CAKEMAIL_API_URL: z
    .url({ protocol: /^https?$/ })
    .refine((value) => {
      const url = new URL(value);
      return url.username === '' && url.password === '';
    }, 'must not hold a username or password (the URL is logged; Cakemail takes each client\'s login)')
    .default('https://api.cakemail.dev'),
  CAKEMAIL_TIMEOUT_MS: ms.default(10_000),
  CAKEMAIL_CONNECTIONS: z.coerce.number().int().min(1).max(10_000).default(256),
  UPSTREAM_DEADLINE_MS: ms.default(60_000),
  CAKEMAIL_EMAIL_TYPE: z.enum(['transactional', 'marketing']).default('transactional'),
  CAKEMAIL_LIST_ID: z.coerce.number().int().positive().optional(),
  MAX_MESSAGE_SIZE: z.coerce.number().int().min(1024).default(26_214_400),
  MAX_INFLIGHT_BYTES: count.default(DEFAULT_MAX_INFLIGHT_BYTES),
  MAX_RECIPIENTS: z.coerce.number().int().min(1).default(100),

  MAX_CONNECTIONS: count.default(1000),
  MAX_CONNECTIONS_PER_IP: count.default(20),
  PROXY_PROTOCOL: z.enum(['off', 'on']).default('off'),
  PROXY_TRUSTED_CIDRS: z
    .string()
    .transform((value, ctx) => {
      const cidrs = value.split(',').map((entry) => entry.trim()).filter(Boolean);
      try {
        trustedPeers(cidrs);
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: `must be a comma list of CIDRs: ${(err as Error).message}` });
        return z.NEVER;
      }
      return cidrs;
    })
    .optional(),
  SESSION_MAX_MS: z.coerce.number().int().min(0).default(1_800_000),
  MAX_MESSAGES_PER_SESSION: z.coerce.number().int().min(1).default(100),
  MAX_JUNK_COMMANDS: z.coerce.number().int().min(1).default(50),
  MAX_UNAUTHENTICATED_COMMANDS: z.coerce.number().int().min(1).default(10),
  MAX_AUTH_FAILURES: z.coerce.number().int().min(1).default(3),
  AUTH_LOCKOUT_USER_IP: z.coerce.number().int().min(1).default(10),
  AUTH_LOCKOUT_IP: z.coerce.number().int().min(1).default(30),
  AUTH_LOCKOUT_WINDOW_MS: ms.default(900_000),
  AUTH_LOCKOUT_KEY: z
    .string()
    .refine((value) => Buffer.byteLength(value, 'utf8') >= MIN_USERNAME_KEY_BYTES, `must be at least ${MIN_USERNAME_KEY_BYTES} bytes`)
    .optional(),
  AUTH_CACHE_TTL_MS: z.coerce.number().int().min(0).max(86_400_000).default(60_000),
  INFLIGHT_WAIT_MS: z.coerce.number().int().min(0).max(86_400_000).default(15_000),
  BOUNCE_PARTIAL_FAILURES: z.enum(['on', 'off']).default('on'),
  REDIS_URL: z
    .string()
    .regex(/^rediss?:\/\//, 'must be a redis:// or rediss:// URL')
    .optional(),
  QUEUE_MODE: z.enum(['off', 'fallback', 'always']).default('off'),
  QUEUE_ENCRYPTION_KEY: z
    .string()
    .superRefine((value, ctx) => {
      try {
        parseKeyRing(value);
      } catch (err) {
        // KeyRingError names the position of a bad key, never its material.
        if (!(err instanceof KeyRingError)) throw err;
        ctx.addIssue({ code: 'custom', message: `must be a key ring of base64 keys of 32 bytes, "[id:]key,...": ${err.message}` });
      }
    })
    .optional(),
  QUEUE_MAX_BYTES: count.default(1_073_741_824),
  QUEUE_CONCURRENCY: z.coerce.number().int().min(1).max(1000).default(8),
  QUEUE_RETRY_BASE_MS: ms.default(30_000),
  QUEUE_RETRY_MAX_MS: ms.default(3_600_000),
  QUEUE_MAX_AGE_MS: z.coerce.number().int().min(1).max(31_536_000_000).default(432_000_000),
  SMTP_IDLE_TIMEOUT_MS: ms.default(60_000),
  TLS_HANDSHAKE_TIMEOUT_MS: ms.default(10_000),
  BARE_LF_POLICY: z.enum(['normalize', 'reject']).default('normalize'),
});

/** The validated environment, one field a variable. */
export type Environment = Readonly<z.infer<typeof schema>>;

/** A variable's name. */
export type Variable = keyof Environment;

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/** Empty strings count as unset, as a blank line in a Kubernetes manifest means "default". */
function clean(env: NodeJS.ProcessEnv): Record<string, string> {
  const out: Record<string, string> = {};
  for (const key of Object.keys(schema.shape)) {
    const value = env[key];
    if (value !== undefined && value.trim() !== '') out[key] = value.trim();
  }
  return out;
}

/**
 * Validates the environment (`overrides` are defaults of a mode, e.g. dev's; a
 * variable set in `env` wins) and returns it frozen, or throws a ConfigError
 * naming every bad variable.
 */
export function parseEnvironment(env: NodeJS.ProcessEnv, overrides: Partial<Record<Variable, string>> = {}): Environment {
  const result = schema.safeParse({ ...overrides, ...clean(env) });
  if (!result.success) {
    const problems = result.error.issues.map((issue) => {
      const name = String(issue.path[0] ?? 'config');
      const given = env[name] ?? overrides[name as Variable];
      // a URL's userinfo (a password) is never shown
      const shown = given?.replace(/\/\/[^/@\s]*@/, '//***@');
      return `${name}: ${issue.message}${shown === undefined || SECRET.has(name) ? '' : ` (got ${JSON.stringify(shown)})`}`;
    });
    throw new ConfigError(`invalid configuration:\n  ${problems.join('\n  ')}`);
  }
  const config = result.data;
  const problems: string[] = [];
  if (config.SMTPS_PORT !== 0 && config.SMTPS_PORT === config.SMTP_PORT) {
    problems.push('SMTPS_PORT: must differ from SMTP_PORT (or be 0 to disable it)');
  }
  const { MAX_CONNECTIONS, MAX_CONNECTIONS_PER_IP } = config;
  if (MAX_CONNECTIONS > 0 && MAX_CONNECTIONS_PER_IP >= MAX_CONNECTIONS) {
    problems.push('MAX_CONNECTIONS_PER_IP: must be lower than MAX_CONNECTIONS, so that one address cannot take every connection');
  }
  if (config.PROXY_PROTOCOL === 'on' && !config.PROXY_TRUSTED_CIDRS) {
    problems.push("PROXY_TRUSTED_CIDRS: required when PROXY_PROTOCOL=on (the balancers' addresses, e.g. 10.0.0.0/8)");
  }
  // The drain waits for a message being relayed, which UPSTREAM_DEADLINE_MS bounds.
  if (config.SHUTDOWN_TIMEOUT_MS < config.UPSTREAM_DEADLINE_MS) {
    problems.push(
      `SHUTDOWN_TIMEOUT_MS: must be at least UPSTREAM_DEADLINE_MS (${config.SHUTDOWN_TIMEOUT_MS} < ${config.UPSTREAM_DEADLINE_MS}), so that a shutdown can wait for every message being relayed`,
    );
  }
  if (config.MAX_INFLIGHT_BYTES !== 0 && config.MAX_INFLIGHT_BYTES < config.MAX_MESSAGE_SIZE) {
    problems.push(
      `MAX_INFLIGHT_BYTES: must be 0 or at least MAX_MESSAGE_SIZE (${config.MAX_INFLIGHT_BYTES} < ${config.MAX_MESSAGE_SIZE}), or a message of an allowed size could never be accepted`,
    );
  }
  if (config.REDIS_URL !== undefined && config.AUTH_LOCKOUT_KEY === undefined) {
    problems.push('AUTH_LOCKOUT_KEY: required when REDIS_URL is set (the key of the username HMACs in Redis, shared by every replica)');
  }
  if (config.QUEUE_MODE !== 'off') {
    const why = `required when QUEUE_MODE=${config.QUEUE_MODE}`;
    if (config.REDIS_URL === undefined) problems.push(`REDIS_URL: ${why} (the queue is stored in Redis)`);
    if (config.QUEUE_ENCRYPTION_KEY === undefined) {
      problems.push(`QUEUE_ENCRYPTION_KEY: ${why} (queued bodies and sessions are encrypted with it; openssl rand -base64 32)`);
    }
  }
  if (config.QUEUE_RETRY_MAX_MS < config.QUEUE_RETRY_BASE_MS) {
    problems.push(
      `QUEUE_RETRY_MAX_MS: must be at least QUEUE_RETRY_BASE_MS (${config.QUEUE_RETRY_MAX_MS} < ${config.QUEUE_RETRY_BASE_MS})`,
    );
  }
  if (problems.length) throw new ConfigError(`invalid configuration:\n  ${problems.join('\n  ')}`);
  return Object.freeze(config);
}

/** Every variable, for `--help` and the README table's test. */
export const configKeys = Object.keys(schema.shape) as Variable[];

/**
 * A variable's default as the schema gives it: a value, or undefined for a
 * variable without one (optional). SMTP_HOSTNAME's is this machine's host name.
 */
export function defaultOf(name: Variable): unknown {
  const result = schema.shape[name].safeParse(undefined);
  return result.success ? result.data : undefined;
}
