/**
 * Configuration, read once from the environment, validated with zod, frozen.
 * A bad value stops the start and names the variable. Every variable here is
 * in the README's configuration table with its default.
 */
import { hostname } from 'node:os';
import { z } from 'zod';

const port = z.coerce.number().int().min(0).max(65_535);
const ms = z.coerce.number().int().min(1).max(86_400_000);
const count = z.coerce.number().int().min(0);

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
  SHUTDOWN_TIMEOUT_MS: ms.default(30_000),

  CAKEMAIL_API_URL: z.url({ protocol: /^https?$/ }).default('https://api.cakemail.dev'),
  CAKEMAIL_TIMEOUT_MS: ms.default(10_000),
  CAKEMAIL_CONNECTIONS: z.coerce.number().int().min(1).max(10_000).default(256),
  UPSTREAM_DEADLINE_MS: ms.default(60_000),
  CAKEMAIL_EMAIL_TYPE: z.enum(['transactional', 'marketing']).default('transactional'),
  CAKEMAIL_LIST_ID: z.coerce.number().int().positive().optional(),
  MAX_MESSAGE_SIZE: z.coerce.number().int().min(1024).default(26_214_400),
  MAX_RECIPIENTS: z.coerce.number().int().min(1).default(100),

  MAX_CONNECTIONS: count.default(1000),
  MAX_CONNECTIONS_PER_IP: count.default(20),
  SESSION_MAX_MS: z.coerce.number().int().min(0).default(1_800_000),
  MAX_MESSAGES_PER_SESSION: z.coerce.number().int().min(1).default(100),
  MAX_JUNK_COMMANDS: z.coerce.number().int().min(1).default(50),
  MAX_UNAUTHENTICATED_COMMANDS: z.coerce.number().int().min(1).default(10),
  MAX_AUTH_FAILURES: z.coerce.number().int().min(1).default(3),
  AUTH_LOCKOUT_USER_IP: z.coerce.number().int().min(1).default(10),
  AUTH_LOCKOUT_IP: z.coerce.number().int().min(1).default(30),
  AUTH_LOCKOUT_WINDOW_MS: ms.default(900_000),
  AUTH_CACHE_TTL_MS: z.coerce.number().int().min(0).max(86_400_000).default(60_000),
  INFLIGHT_WAIT_MS: z.coerce.number().int().min(0).max(86_400_000).default(15_000),
  BOUNCE_PARTIAL_FAILURES: z.enum(['on', 'off']).default('on'),
  REDIS_URL: z
    .string()
    .regex(/^rediss?:\/\//, 'must be a redis:// or rediss:// URL')
    .optional(),
  SMTP_IDLE_TIMEOUT_MS: ms.default(60_000),
  TLS_HANDSHAKE_TIMEOUT_MS: ms.default(10_000),
  BARE_LF_POLICY: z.enum(['normalize', 'reject']).default('normalize'),
});

export type Config = Readonly<z.infer<typeof schema>>;

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

export function loadConfig(env: NodeJS.ProcessEnv, overrides: Partial<Record<keyof Config, string>> = {}): Config {
  const result = schema.safeParse({ ...overrides, ...clean(env) });
  if (!result.success) {
    const problems = result.error.issues.map((issue) => {
      const name = String(issue.path[0] ?? 'config');
      const given = env[name] ?? overrides[name as keyof Config];
      return `${name}: ${issue.message}${given === undefined ? '' : ` (got ${JSON.stringify(given)})`}`;
    });
    throw new ConfigError(`invalid configuration:\n  ${problems.join('\n  ')}`);
  }
  if (result.data.SMTPS_PORT !== 0 && result.data.SMTPS_PORT === result.data.SMTP_PORT) {
    throw new ConfigError('invalid configuration:\n  SMTPS_PORT: must differ from SMTP_PORT (or be 0 to disable it)');
  }
  return Object.freeze(result.data);
}

/** The variables and their defaults, for the README table and `--help`. */
export const configKeys = Object.keys(schema.shape) as Array<keyof Config>;
