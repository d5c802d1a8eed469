/**
 * End-to-end harness: a testkit fake Cakemail API on port 0 and the whole gateway
 * (`createGateway(loadConfig(...))`) in front of it, with real SMTP listeners on port 0,
 * real TLS (the run's test certificate) and a pino logger writing JSON lines to memory.
 *
 * `startGateway()` answers what a test needs: the fake (faults, `sent()`, `calls`), the ports,
 * `send()` through nodemailer, the raw ladder's client options, `logs()` and `close()`.
 */
import { afterAll, afterEach, beforeAll, beforeEach } from 'vitest';
import { Writable } from 'node:stream';
import {
  authenticated,
  createFakeCakemail,
  createMailer,
  DEFAULT_SENDER,
  DEFAULT_USER,
  loopbackGatewayEnv,
  SmtpTestClient,
  testCertificates,
  type ClientOptions,
  type FakeCakemail,
  type FakeCakemailOptions,
  type Reply,
  type SentEmail,
} from '@cakemail-smtp/testkit';
import { loadConfig, type Config, type Variable } from '../src/config/index.js';
import { createGateway, type Gateway } from '../src/gateway.js';
import { createLogger } from '../src/logger.js';

export interface StartOptions {
  /** Extra configuration (environment variables as strings), e.g. `{ MAX_RECIPIENTS: '3' }`. */
  readonly env?: Partial<Record<Variable, string>>;
  readonly fake?: FakeCakemailOptions;
  /** Changes the validated configuration, e.g. to one loadConfig refuses, to test what the code does anyway. */
  readonly adjust?: (config: Config) => Config;
  /** Tell the fake's dev inbox what each message became, as development mode does. */
  readonly inbox?: boolean;
}

export interface Login {
  readonly email: string;
  readonly password: string;
}

/** What nodemailer answers, or the SMTP error it got: `line` is the server's reply line either way. */
export interface SendOutcome {
  readonly ok: boolean;
  /** The reply line as the client saw it, e.g. `250 2.0.0 Ok: queued as …`. */
  readonly line: string;
  readonly code: number | undefined;
  /** The SMTP command that got the final reply (nodemailer's `err.command`), when it failed. */
  readonly command: string | undefined;
}

type Mailer = ReturnType<typeof createMailer>;
export type MailOptions = Parameters<Mailer['sendMail']>[0];

export interface RunningGateway {
  /** The gateway itself, e.g. to close it while the fake stays up. */
  readonly gateway: Gateway;
  readonly fake: FakeCakemail;
  readonly ports: { readonly smtp: number; readonly smtps: number | null; readonly ops: number };
  readonly config: Config;
  /** The PEM the clients trust. */
  readonly ca: string;
  /** The raw ladder's options for the STARTTLS listener (TLS verified against `ca`). */
  readonly client: ClientOptions;
  /** Sends through nodemailer (STARTTLS, AUTH PLAIN as DEFAULT_USER unless `auth` says otherwise). */
  send(mail: MailOptions, auth?: Login): Promise<SendOutcome>;
  /** A raw-ladder client, greeted, STARTTLS done, logged in. */
  login(auth?: Login, mechanism?: 'PLAIN' | 'LOGIN'): Promise<SmtpTestClient>;
  /** A new connection, login, MAIL/RCPT/DATA of `raw` exactly, QUIT; answers the final reply. */
  sendRaw(from: string, to: readonly string[], raw: string, auth?: Login): Promise<Reply>;
  /** Every log line so far, parsed. */
  logs(): Array<Record<string, unknown>>;
  /** Every log line so far, as written. */
  logText(): string;
  close(): Promise<void>;
}

export async function startGateway(opts: StartOptions = {}): Promise<RunningGateway> {
  const certs = await testCertificates();
  const fake = createFakeCakemail(opts.fake);
  await fake.listen(0);

  const lines: string[] = [];
  let partial = '';
  const destination = new Writable({
    write(chunk: Buffer | string, _enc, done) {
      partial += chunk.toString();
      let nl = partial.indexOf('\n');
      while (nl !== -1) {
        lines.push(partial.slice(0, nl));
        partial = partial.slice(nl + 1);
        nl = partial.indexOf('\n');
      }
      done();
    },
  });
  const logger = createLogger({ level: 'debug', format: 'json', destination });

  const loaded = loadConfig({
    ...loopbackGatewayEnv(certs),
    TLS_RELOAD_INTERVAL_MS: '0',
    // at least UPSTREAM_DEADLINE_MS, which loadConfig requires
    SHUTDOWN_TIMEOUT_MS: opts.env?.UPSTREAM_DEADLINE_MS ?? '3000',
    CAKEMAIL_API_URL: fake.url,
    CAKEMAIL_TIMEOUT_MS: '2000',
    UPSTREAM_DEADLINE_MS: '3000',
    LOG_LEVEL: 'debug',
    ...opts.env,
  });
  const config = opts.adjust ? Object.freeze(opts.adjust(loaded)) : loaded;
  let gateway: Gateway;
  let listening;
  try {
    gateway = createGateway(config, { logger, ...(opts.inbox ? { onRelayed: (m) => fake.inbox.note(m) } : {}) });
    listening = await gateway.listen();
  } catch (err) {
    await fake.close();
    throw err;
  }
  const ports = { smtp: listening.smtpPort, smtps: listening.smtpsPort, ops: listening.opsPort };
  const client: ClientOptions = { port: ports.smtp, tls: { ca: certs.ca, servername: 'localhost' }, timeoutMs: 15_000 };
  const mailers: Mailer[] = [];
  const clients: SmtpTestClient[] = [];

  const login = async (auth: Login = DEFAULT_USER, mechanism: 'PLAIN' | 'LOGIN' = 'PLAIN'): Promise<SmtpTestClient> => {
    const c = await authenticated({ ...client, username: auth.email, password: auth.password, mechanism });
    clients.push(c);
    return c;
  };

  return {
    gateway,
    fake,
    ports,
    config,
    ca: certs.ca,
    client,
    async send(mail, auth = DEFAULT_USER) {
      const mailer = createMailer({ port: ports.smtp, host: '127.0.0.1', ca: certs.ca, auth: { user: auth.email, pass: auth.password } });
      mailers.push(mailer);
      try {
        const info = await mailer.sendMail(mail);
        return { ok: true, line: info.response, code: Number(info.response.slice(0, 3)), command: undefined };
      } catch (err) {
        const e = err as { response?: string; responseCode?: number; command?: string; message?: string };
        if (e.response === undefined) throw err;
        return { ok: false, line: e.response, code: e.responseCode, command: e.command };
      } finally {
        mailer.close();
      }
    },
    login,
    async sendRaw(from, to, raw, auth = DEFAULT_USER) {
      const c = await login(auth);
      try {
        const reply = await c.sendMail(from, to, raw);
        await c.command('QUIT').catch(() => undefined);
        return reply;
      } finally {
        c.close();
      }
    },
    logs: () =>
      lines.map((l) => {
        try {
          return JSON.parse(l) as Record<string, unknown>;
        } catch {
          return { unparsed: l };
        }
      }),
    logText: () => lines.join('\n'),
    async close() {
      for (const c of clients) c.close();
      for (const m of mailers) m.close();
      await gateway.close();
      await fake.close();
    },
  };
}

/** The reply line of a raw-ladder Reply, without its CRLF. */
export function lineOf(reply: Reply): string {
  return reply.raw.replace(/\r\n$/, '');
}

/** A minimal text message, CRLF line ends. `headers` go before the defaults' MIME headers. */
export function textMessage(options: { from?: string; to?: string; subject?: string; body?: string; headers?: readonly string[] } = {}): string {
  return [
    `From: ${options.from ?? DEFAULT_SENDER.email}`,
    `To: ${options.to ?? 'someone@example.net'}`,
    ...(options.subject === undefined ? [] : [`Subject: ${options.subject}`]),
    ...(options.headers ?? []),
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    '',
    options.body ?? 'Hello',
    '',
  ].join('\r\n');
}

/** The emails the fake received for one recipient. */
export function sentTo(fake: FakeCakemail, email: string): SentEmail[] {
  return fake.sent().filter((e) => e.body.email === email);
}

/**
 * Every series on a gateway's `/metrics` (at its ops port) and its value, keyed by the series as
 * written there, e.g. `smtp_gateway_bounces_total{result="sent"}`.
 */
export async function scrapeMetrics(opsPort: number): Promise<Map<string, number>> {
  const text = await (await fetch(`http://127.0.0.1:${opsPort}/metrics`)).text();
  const series = new Map<string, number>();
  for (const line of text.split('\n')) {
    const space = line.lastIndexOf(' ');
    if (line === '' || line.startsWith('#') || space === -1) continue;
    series.set(line.slice(0, space), Number(line.slice(space + 1)));
  }
  return series;
}

/** Secrets that must never show up in logs or replies: the fake's token prefixes and the passwords. */
export const TOKEN_PATTERN = /fake-(?:at|rt)-[A-Za-z0-9_-]+/;

/**
 * A gateway for the enclosing describe block: started before its tests (or
 * before each one with `perTest`), closed after, the fake's record cleared
 * before each test with `resetFake`. The returned object stands for the
 * current gateway.
 */
export function useGateway(opts: StartOptions = {}, how: { perTest?: boolean; resetFake?: boolean } = {}): RunningGateway {
  let current: RunningGateway | undefined;
  const start = async (): Promise<void> => {
    current = await startGateway(opts);
  };
  const stop = async (): Promise<void> => {
    await current?.close();
    current = undefined;
  };
  if (how.perTest) {
    beforeEach(start);
    afterEach(stop);
  } else {
    beforeAll(start);
    afterAll(stop);
  }
  if (how.resetFake) beforeEach(() => current?.fake.reset());
  return new Proxy({} as RunningGateway, {
    get(_target, key) {
      if (!current) throw new Error('the gateway is only there inside the tests of its describe block');
      return Reflect.get(current, key);
    },
  });
}
