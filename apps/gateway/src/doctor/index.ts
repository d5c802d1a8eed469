/**
 * `smtp-gateway doctor`: why a login or a sender is refused, in one command. Checks a Cakemail
 * login against CAKEMAIL_API_URL (login, accounts, senders, list) and, with --smtp, a running
 * gateway as a client would (TLS, certificate, AUTH, MAIL FROM; nothing is sent). Prints one
 * ✓/✗ line per check with what to do for each ✗, or JSON with --json. Exit code 0 only when
 * every check passed, 1 when one failed, 2 for a usage error. Never prints the password or a token.
 */
import { readFile } from 'node:fs/promises';
import type { Readable, Writable } from 'node:stream';
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig } from '../config/index.js';
import { checkCakemail } from './cakemail-checks.js';
import { PasswordError, readPassword } from './password.js';
import { allPassed, formatJson, formatText, type Check } from './report.js';
import { checkSmtp } from './smtp-checks.js';

export const doctorUsage = `usage: smtp-gateway doctor [--user <login>] [--password-stdin] [--json]
                           [--smtp <host:port> [--tls starttls|implicit] [--from <address>] [--ca <pem file>]]

Checks a Cakemail login against CAKEMAIL_API_URL: the login, its accounts, their confirmed
senders and the list messages will use (CAKEMAIL_LIST_ID or "SMTP Gateway"). With --smtp, it
also checks a running gateway as a client would: TLS, the certificate, AUTH with the same login
and MAIL FROM of --from, then quits without sending.

  --user <login>       the Cakemail login (default: CAKEMAIL_USERNAME)
  --password-stdin     read the password from stdin (default: CAKEMAIL_PASSWORD, else a prompt
                       on a terminal; never on the command line)
  --smtp <host:port>   a running gateway to check
  --tls <mode>         starttls (default) or implicit (the default for port 465)
  --from <address>     the sender to try at MAIL FROM (and to look for among the senders)
  --ca <pem file>      also trust this CA for the gateway's certificate
  --json               the checks as JSON, for scripts

Exit code: 0 when every check passed, 1 when one failed, 2 for a usage error.
`;

export interface DoctorIo {
  readonly env: NodeJS.ProcessEnv;
  readonly stdin: Readable & { isTTY?: boolean; setRawMode?: (raw: boolean) => unknown };
  readonly stdout: Writable;
  readonly stderr: Writable;
}

class UsageError extends Error {}

function parseHostPort(value: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(value);
  const port = Number(m?.[3]);
  if (!m || port < 1 || port > 65_535) throw new UsageError(`--smtp: expected host:port, e.g. smtp.example.com:587 (got ${JSON.stringify(value)})`);
  return { host: (m[1] ?? m[2]) as string, port };
}

export async function runDoctor(argv: readonly string[], io: DoctorIo): Promise<number> {
  const fail = (message: string, code: number): number => {
    io.stderr.write(`smtp-gateway doctor: ${message}\n`);
    return code;
  };
  if (argv.some((a) => a === '--password' || a.startsWith('--password=') || a === '-p')) {
    return fail(
      '--password is refused: a password on the command line is visible to other users (ps) and kept in the shell history. Use CAKEMAIL_PASSWORD, --password-stdin, or the prompt.',
      2,
    );
  }
  let values;
  try {
    values = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: false,
      options: {
        user: { type: 'string' },
        'password-stdin': { type: 'boolean' },
        smtp: { type: 'string' },
        tls: { type: 'string' },
        from: { type: 'string' },
        ca: { type: 'string' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    }).values;
  } catch (err) {
    return fail(`${err instanceof Error ? err.message : String(err)}\n${doctorUsage}`, 2);
  }
  if (values.help) {
    io.stdout.write(doctorUsage);
    return 0;
  }

  let config;
  try {
    config = loadConfig(io.env);
  } catch (err) {
    if (err instanceof ConfigError) return fail(err.message, 1);
    throw err;
  }

  const username = values.user ?? io.env['CAKEMAIL_USERNAME']?.trim();
  if (!username) return fail('no login: give --user or set CAKEMAIL_USERNAME', 2);
  let smtp: { host: string; port: number; tls: 'starttls' | 'implicit' } | undefined;
  let ca: string | undefined;
  try {
    if (values.tls !== undefined && values.tls !== 'starttls' && values.tls !== 'implicit') throw new UsageError('--tls: expected starttls or implicit');
    if (values.smtp !== undefined) {
      const at = parseHostPort(values.smtp);
      smtp = { ...at, tls: (values.tls as 'starttls' | 'implicit' | undefined) ?? (at.port === 465 ? 'implicit' : 'starttls') };
    } else if (values.tls !== undefined || values.ca !== undefined) {
      throw new UsageError('--tls and --ca go with --smtp');
    }
    if (values.ca !== undefined) ca = await readFile(values.ca, 'utf8').catch(() => Promise.reject(new UsageError(`--ca: cannot read ${values.ca}`)));
  } catch (err) {
    if (err instanceof UsageError) return fail(err.message, 2);
    throw err;
  }

  let password: string;
  try {
    password = await readPassword({
      env: io.env['CAKEMAIL_PASSWORD'],
      fromStdin: values['password-stdin'] === true,
      stdin: io.stdin,
      prompt: io.stderr,
      username,
    });
  } catch (err) {
    if (err instanceof PasswordError) return fail(err.message, 2);
    throw err;
  }

  if (!values.json) io.stdout.write(`Checking ${username} against ${config.relay.apiUrl}${smtp ? ` and the gateway at ${smtp.host}:${smtp.port}` : ''}\n\n`);
  const checks: Check[] = await checkCakemail({
    apiUrl: config.relay.apiUrl,
    timeoutMs: config.relay.timeoutMs,
    username,
    password,
    listId: config.relay.listId,
    from: values.from,
  });
  if (smtp) {
    checks.push(...(await checkSmtp({ ...smtp, username, password, from: values.from, ca, timeoutMs: config.relay.timeoutMs + 5000 })));
  }
  io.stdout.write(values.json ? formatJson(checks) : formatText(checks));
  return allPassed(checks) ? 0 : 1;
}
