/**
 * Development mode: ports 2587 and 2465, a self-signed certificate under
 * `.dev/tls`, readable log lines, and, unless CAKEMAIL_API_URL is set, the
 * testkit's fake Cakemail API as the embedded upstream, so a message can be
 * sent at once. It prints a login and a swaks command to paste.
 *
 * The testkit is a development dependency: it is loaded here, with a dynamic
 * import, only when the fake is started, and a production install (which
 * leaves it out) never loads it.
 */
import { resolve } from 'node:path';
import type { RelayObserver } from '@cakemail-smtp/cakemail';
import type * as Testkit from '@cakemail-smtp/testkit';
import type { Config, Variable } from './config/index.js';

/** The defaults `dev` changes; a variable set in the environment still wins. */
export const devDefaults = {
  SMTP_PORT: '2587',
  SMTPS_PORT: '2465',
  SMTP_HOSTNAME: 'localhost',
  SMTP_HOST: '127.0.0.1',
  OPS_HOST: '127.0.0.1',
  OPS_PORT: '2580',
  TLS_CERT_PATH: resolve('.dev/tls/tls.crt'),
  TLS_KEY_PATH: resolve('.dev/tls/tls.key'),
  LOG_FORMAT: 'pretty',
} as const satisfies Partial<Record<Variable, string>>;

/** The port the embedded fake Cakemail listens on, unless DEV_UPSTREAM_PORT says otherwise. */
export const DEV_UPSTREAM_PORT = 2581;

const TESTKIT = '@cakemail-smtp/testkit';

export interface DevUpstream {
  readonly url: string;
  /** The fake's seeded login and confirmed sender, for the banner. */
  readonly login: { readonly email: string; readonly password: string };
  readonly sender: string;
  /** Tells the fake's inbox what each SMTP message became (headers, replies). */
  readonly onRelayed: RelayObserver;
  close(): Promise<void>;
}

/** The testkit is missing: a production install, where `dev` needs CAKEMAIL_API_URL. */
export class DevToolingMissing extends Error {
  override readonly name = 'DevToolingMissing';
}

export async function startDevUpstream(host: string, port = DEV_UPSTREAM_PORT): Promise<DevUpstream> {
  let testkit: typeof Testkit;
  try {
    testkit = await import('@cakemail-smtp/testkit');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ERR_MODULE_NOT_FOUND') {
      throw new DevToolingMissing(
        `development mode embeds the fake Cakemail API from ${TESTKIT}, which this install leaves out (a production install); ` +
          'set CAKEMAIL_API_URL to a Cakemail API, or run `smtp-gateway start`',
      );
    }
    throw err;
  }
  const fake = testkit.createFakeCakemail();
  const url = await fake.listen(port, host);
  return {
    url,
    login: { email: testkit.DEFAULT_USER.email, password: testkit.DEFAULT_USER.password },
    sender: testkit.DEFAULT_SENDER.email,
    onRelayed: (message) => fake.inbox.note(message),
    close: () => fake.close(),
  };
}

export function devBanner(config: Config, upstream: DevUpstream | undefined, ports: { smtp: number; smtps: number | null; ops: number }): string {
  const lines = [
    '',
    'Cakemail SMTP gateway, development mode',
    `  SMTP (STARTTLS)   ${config.smtp.host}:${ports.smtp}`,
    ...(ports.smtps === null ? [] : [`  SMTPS (implicit)  ${config.smtp.host}:${ports.smtps}`]),
    `  ops               http://${config.ops.host}:${ports.ops}/health/ready  /metrics`,
    `  certificate       ${config.tls.certPath} (self-signed, for development only)`,
  ];
  if (upstream) {
    lines.push(
      `  upstream          embedded fake Cakemail API at ${upstream.url}`,
      `  dev inbox         ${upstream.url}/  (what Cakemail received, live; chaos switches)`,
      `  recorded calls    ${upstream.url}/_fake/calls`,
      '',
      `Log in with ${upstream.login.email} / ${upstream.login.password}; send from ${upstream.sender}:`,
      '',
      `  swaks --server ${config.smtp.host}:${ports.smtp} -tls --auth PLAIN --auth-user ${upstream.login.email} --auth-password ${upstream.login.password} --from ${upstream.sender} --to someone@example.net --header 'Subject: Hello from the gateway'`,
      '',
    );
  } else {
    lines.push(`  upstream          ${config.relay.apiUrl}`, '');
  }
  return lines.join('\n');
}
