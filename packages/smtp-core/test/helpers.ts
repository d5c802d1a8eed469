/**
 * The ladder's first rung for smtp-core: a server on port 0 with a recording
 * backend and fault switches (failAuth, refuseAuth, failData, throwUnexpected).
 */
import { text } from 'node:stream/consumers';
import { serverTlsSettings } from '@cakemail-smtp/tls';
import { authenticated, testCertificates, type ClientOptions, type SmtpTestClient } from '@cakemail-smtp/testkit';
import {
  createMemoryAuthLimiter,
  createSmtpServer,
  Replies,
  type AuthDecision,
  type Backend,
  type ConnectionInfo,
  type Credentials,
  type Logger,
  type SmtpLimits,
  type SmtpServer,
  type TlsProvider,
} from '../src/index.js';
import type { AuthLimiter } from '../src/auth-limiter/index.js';

/** The lockout of a test server, and of the lockout's own tests. */
export const testAuthLimits = Object.freeze({ pairLimit: 10, ipLimit: 30, windowMs: 15 * 60_000 });

/** The limits of a test server: each test overrides the ones it tests. */
export const testLimits: SmtpLimits = Object.freeze({
  maxMessageSize: 26_214_400,
  maxRecipients: 100,
  idleTimeoutMs: 60_000,
  handshakeTimeoutMs: 10_000,
  maxConnections: 0,
  maxConnectionsPerIp: 20,
  sessionMaxMs: 0,
  maxMessagesPerSession: 100,
  maxJunkCommands: 50,
  maxAuthFailures: 3,
  maxUnauthenticatedCommands: 10,
  bareLf: 'normalize',
  maxInflightBytes: 0,
  closeTimeoutMs: 500,
  maxReplyWaitMs: 0,
});

export const USER = 'app@example.test';
export const PASSWORD = 'correct horse battery staple';

export interface Delivered {
  from: string;
  to: readonly string[];
  body: string;
}

export interface Recorder {
  sessions: ConnectionInfo[];
  open: number;
  resets: number;
  auths: Credentials[];
  delivered: Delivered[];
  /** Thrown from the next data() call. */
  failData?: Error | undefined;
  /** Thrown from auth() instead of checking the password. */
  failAuth?: Error | undefined;
  /** Returned from auth() instead of checking the password. */
  refuseAuth?: AuthDecision | undefined;
  logs: Array<{ level: string; obj: object; msg: string | undefined }>;
  counts: Map<string, number>;
}

export function recordingBackend(rec: Recorder): Backend {
  return {
    newSession(conn) {
      rec.sessions.push(conn);
      rec.open++;
      return {
        async auth(credentials) {
          rec.auths.push(credentials);
          if (rec.failAuth) throw rec.failAuth;
          if (rec.refuseAuth) return rec.refuseAuth;
          if (credentials.username !== USER || credentials.password !== PASSWORD)
            return { ok: false, reason: 'invalid', reply: Replies.S535_AUTH_INVALID };
          return { ok: true };
        },
        async mail() {},
        async rcpt() {},
        async data(message, info) {
          const body = await text(message);
          if (rec.failData) {
            const err = rec.failData;
            rec.failData = undefined;
            throw err;
          }
          rec.delivered.push({ from: info.from, to: info.to, body });
          return `Ok: queued as test-${rec.delivered.length}`;
        },
        reset() {
          rec.resets++;
        },
        logout() {
          rec.open--;
        },
      };
    },
  };
}

function recordingLogger(rec: Recorder): Logger {
  const log = (level: string) => (obj: object, msg?: string) => rec.logs.push({ level, obj, msg });
  const logger: Logger = {
    child: () => logger,
    debug: log('debug'),
    info: log('info'),
    warn: log('warn'),
    error: log('error'),
  };
  return logger;
}

export interface TestServer {
  server: SmtpServer;
  rec: Recorder;
  port: number;
  securePort: number;
  ca: string;
  /** Options for the testkit client on the STARTTLS port. */
  client: ClientOptions;
  /** Options for the testkit client on the implicit-TLS port. */
  implicit: ClientOptions;
  close(): Promise<void>;
}

export function staticTls(cert: string, key: string): TlsProvider & { set(cert: string, key: string): void } {
  let pair = { cert, key };
  const listeners = new Set<(p: typeof pair) => void>();
  return {
    current: () => pair,
    onChange(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    set(cert, key) {
      pair = { cert, key };
      for (const listener of listeners) listener(pair);
    },
  };
}

export async function startServer(
  options: {
    limits?: Partial<SmtpLimits>;
    tls?: TlsProvider;
    backend?: (rec: Recorder) => Backend;
    authLimiter?: AuthLimiter;
    proxyTrustedCidrs?: readonly string[];
  } = {},
): Promise<TestServer> {
  const certs = await testCertificates();
  const rec: Recorder = { sessions: [], open: 0, resets: 0, auths: [], delivered: [], logs: [], counts: new Map() };
  const authLimiter = options.authLimiter ?? createMemoryAuthLimiter(testAuthLimits);
  const server = createSmtpServer({
    hostname: 'gateway.test',
    greeting: 'Cakemail SMTP gateway',
    host: '127.0.0.1',
    port: 0,
    securePort: 0,
    tls: options.tls ?? staticTls(certs.cert, certs.key),
    tlsSettings: serverTlsSettings,
    backend: (options.backend ?? recordingBackend)(rec),
    logger: recordingLogger(rec),
    count: (event, reason) => {
      const key = `${event}:${reason}`;
      rec.counts.set(key, (rec.counts.get(key) ?? 0) + 1);
    },
    limits: { ...testLimits, ...options.limits },
    authLimiter,
    ...(options.proxyTrustedCidrs ? { proxyTrustedCidrs: options.proxyTrustedCidrs } : {}),
  });
  const { port, securePort } = await server.listen();
  const tls = { ca: certs.ca, servername: 'localhost' };
  return {
    server,
    rec,
    port,
    securePort: securePort as number,
    ca: certs.ca,
    client: { port, tls },
    implicit: { port: securePort as number, implicitTls: true, tls },
    async close() {
      await server.close();
      if (!options.authLimiter) await authLimiter.close();
    },
  };
}

/** Polls until `check` holds (for counters updated after a socket event). */
export async function eventually(check: () => boolean, timeoutMs = 3000): Promise<void> {
  const start = Date.now();
  while (!check()) {
    if (Date.now() - start > timeoutMs) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** The ladder's top rung against a test server, with the test login. */
export async function loggedIn(server: TestServer): Promise<SmtpTestClient> {
  return authenticated({ ...server.client, username: USER, password: PASSWORD });
}
