/**
 * The adapter: two smtp-server listeners (STARTTLS and implicit TLS) driving a
 * Backend's Sessions. This is the only file that knows smtp-server's callbacks.
 */
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import type { SecureContextOptions } from 'node:tls';
import type { SMTPServerAddress, SMTPServerDataStream, SMTPServerSession } from 'smtp-server';
import { AcceptingServer, ConnectionSlots } from './accept.js';
import { clientKey } from './client-address.js';
import { DataGuard, type BareLfPolicy } from './data-guard.js';
import type { GatewayServer, GatewayServerOptions } from './connection.js';
import { Replies, isSmtpError } from './errors.js';
import { InflightBudget } from './inflight.js';
import { silentLogger, type Logger } from './logger.js';
import { noCount, type CountHook } from './metrics.js';
import type { Backend, ConnectionInfo, Session } from './session.js';
import { createMemoryAuthLimiter, type AuthLimiter } from './auth-limiter/index.js';
import { trustedPeers } from './proxy.js';

/** Where the certificate comes from; @cakemail-smtp/tls's reloader fits. */
export interface TlsProvider {
  current(): { readonly cert: string; readonly key: string };
  onChange(listener: (pair: { readonly cert: string; readonly key: string }) => void): () => void;
}

export interface SmtpLimits {
  /** Bytes; `552 5.3.4` over it, at MAIL `SIZE=` and during DATA. */
  readonly maxMessageSize: number;
  /** `452 4.5.3` from the first recipient over it. */
  readonly maxRecipients: number;
  /** An idle session gets `421 4.4.2`. */
  readonly idleTimeoutMs: number;
  /** A TLS handshake (implicit or STARTTLS), or a PROXY header, that takes longer is dropped. */
  readonly handshakeTimeoutMs: number;
  /**
   * Connections across both listeners, counted from accept (before TLS, a
   * PROXY header or the greeting). Over it: `421 4.7.0` on the STARTTLS
   * listener, closed before TLS on the implicit one. 0: no limit.
   */
  readonly maxConnections: number;
  /**
   * Connections from one client (IPv6: one /64), counted from accept as
   * maxConnections is; must be lower than maxConnections. 0: no limit.
   */
  readonly maxConnectionsPerIp: number;
  /** Overall session cap; `421 4.4.2` when reached. 0: none. */
  readonly sessionMaxMs: number;
  /** Message transactions per session; the next MAIL gets `421 4.7.0`. */
  readonly maxMessagesPerSession: number;
  /** Commands that move no mail (NOOP, RSET, unknown…) between two messages; then `421 4.7.0`. */
  readonly maxJunkCommands: number;
  /** Failed AUTH on one connection; the last one gets `421 4.7.0` and the connection is closed. */
  readonly maxAuthFailures: number;
  /** Commands before a successful AUTH (AUTH itself not counted); then `421 4.7.0`. */
  readonly maxUnauthenticatedCommands: number;
  readonly bareLf: BareLfPolicy;
  /**
   * Message bytes held at once across all sessions, from the first DATA byte
   * until the reply is sent. Over it: `452 4.3.1` at `MAIL FROM ... SIZE=`
   * (checked against what is free then, nothing reserved) or `451 4.3.1`
   * during DATA. 0: no limit.
   */
  readonly maxInflightBytes: number;
  /**
   * How long close() lets sessions finish before cutting them off. A session
   * whose message was received and waits for its reply is never cut.
   */
  readonly closeTimeoutMs: number;
  /**
   * The longest the backend takes to answer a message received in full (the
   * relay's deadline). close() cuts sessions this long before closeTimeoutMs,
   * so that every reply still fits in closeTimeoutMs. 0: cut at closeTimeoutMs.
   */
  readonly maxReplyWaitMs: number;
}

export const defaultLimits: SmtpLimits = Object.freeze({
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
  closeTimeoutMs: 30_000,
  maxReplyWaitMs: 0,
});

export interface SmtpServerOptions {
  /** Greeting and EHLO name. */
  readonly hostname: string;
  readonly host: string;
  /** STARTTLS listener; 0 picks a free port. */
  readonly port: number;
  /** Implicit-TLS listener; `null` disables it, 0 picks a free port. */
  readonly securePort: number | null;
  readonly tls: TlsProvider;
  /** Protocol versions, ciphers, options (@cakemail-smtp/tls's serverTlsSettings). */
  readonly tlsSettings: SecureContextOptions;
  readonly backend: Backend;
  readonly logger?: Logger;
  readonly count?: CountHook;
  readonly limits?: Partial<SmtpLimits>;
  /** Failed logins across connections (brute force); a memory limiter by default. */
  readonly authLimiter?: AuthLimiter;
  /**
   * PROXY protocol: connections from these CIDRs (`10.0.0.0/8`, `fd00::/8`, or
   * one address) must start with a v1 or v2 header, whose source address is
   * then the client's. Others are served as themselves. Off when absent.
   */
  readonly proxyTrustedCidrs?: readonly string[];
}

export interface SmtpServer {
  /** Binds both listeners; resolves with the bound ports. */
  listen(): Promise<{ port: number; securePort: number | null }>;
  /** Stops accepting, lets sessions finish up to closeTimeoutMs, then closes the rest. */
  close(): Promise<void>;
  /** Open SMTP sessions across both listeners. */
  readonly connections: number;
  /** Message bytes held now (see SmtpLimits.maxInflightBytes). */
  readonly inflightBytes: number;
}

interface Live {
  readonly session: Session;
  readonly log: Logger;
  readonly ip: string;
  authFailures: number;
}


/** Classifies a failed handshake for the counter and the log. */
export function handshakeReason(err: { code?: string; message?: string }): string {
  const text = `${err.code ?? ''} ${err.message ?? ''}`.toUpperCase();
  if (text.includes('TIMEOUT')) return 'timeout';
  if (text.includes('HTTP_REQUEST') || text.includes('WRONG_VERSION_NUMBER') || text.includes('UNKNOWN_PROTOCOL') || text.includes('RECORD'))
    return 'garbage';
  if (text.includes('PROTOCOL') || text.includes('VERSION')) return 'protocol';
  if (text.includes('CIPHER') || text.includes('SIGALG') || text.includes('GROUP')) return 'cipher';
  return 'other';
}

export function createSmtpServer(options: SmtpServerOptions): SmtpServer {
  const limits: SmtpLimits = { ...defaultLimits, ...options.limits };
  const logger = options.logger ?? silentLogger;
  const count = options.count ?? noCount;
  if (limits.maxConnections > 0 && limits.maxConnectionsPerIp >= limits.maxConnections)
    throw new RangeError('maxConnectionsPerIp must be lower than maxConnections: one address must not take every connection');
  const live = new Map<string, Live>();
  const slots = new ConnectionSlots(limits);
  const trustedProxies = options.proxyTrustedCidrs ? trustedPeers(options.proxyTrustedCidrs) : undefined;
  const authLimiter = options.authLimiter ?? createMemoryAuthLimiter();
  const limit = (reason: string): void => count('limit', reason);
  const budget = new InflightBudget(limits.maxInflightBytes);

  /** The library sends `err.responseCode` and `err.message`; SmtpErrors carry their own enhanced code. */
  function toLibraryError(err: unknown, log: Logger, during: string): Error {
    const smtp = isSmtpError(err) ? err : undefined;
    if (!smtp) log.error({ err, during }, 'unexpected error, answered 451 4.3.0');
    const reply = smtp ?? Replies.S451_INTERNAL;
    return Object.assign(new Error(reply.text), { responseCode: reply.code });
  }

  function lookup(session: SMTPServerSession): Live | undefined {
    return live.get(session.id);
  }

  function build(listener: 'starttls' | 'implicit'): GatewayServer {
    const serverOptions: GatewayServerOptions = {
      ...options.tlsSettings,
      key: options.tls.current().key,
      cert: options.tls.current().cert,
      secure: listener === 'implicit',
      name: options.hostname,
      banner: 'Cakemail SMTP gateway',
      logger: false,
      disableReverseLookup: true,
      hideENHANCEDSTATUSCODES: false,
      hideDSN: true,
      hideREQUIRETLS: true,
      authMethods: ['PLAIN', 'LOGIN'],
      authRequiredMessage: Replies.S530_AUTH_REQUIRED.text,
      size: limits.maxMessageSize,
      maxRecipients: limits.maxRecipients,
      socketTimeout: limits.idleTimeoutMs,
      closeTimeout: limits.closeTimeoutMs,
      maxReplyWaitMs: limits.maxReplyWaitMs,
      maxClients: limits.maxConnections || Infinity,
      handshakeTimeout: limits.handshakeTimeoutMs,
      maxJunkCommands: limits.maxJunkCommands,
      sessionMaxMs: limits.sessionMaxMs,
      maxAllowedUnauthenticatedCommands: limits.maxUnauthenticatedCommands,
      noDelay: true,
      hooks: {
        handshakeTimeout: () => count('tls_handshake_failure', 'timeout'),
        reset: (id) => live.get(id)?.session.reset(),
        limit,
      },
      onConnect(session, callback) {
        const conn: ConnectionInfo = {
          id: session.id,
          remoteAddress: session.remoteAddress,
          remotePort: session.remotePort,
          localPort: session.localPort,
          listener,
        };
        const log = logger.child({ sessionId: session.id });
        count('connection', listener);
        // Per-IP and overall limits were applied at accept (accept.ts).
        const ip = clientKey(session.remoteAddress);
        try {
          live.set(session.id, { session: options.backend.newSession(conn), log, ip, authFailures: 0 });
        } catch (err) {
          callback(toLibraryError(err, log, 'connect'));
          return;
        }
        log.info({ remoteAddress: session.remoteAddress, listener }, 'connection');
        callback();
      },
      onAuth(auth, session, callback) {
        const state = lookup(session);
        if (!state) return callback(toLibraryError(new Error('no session'), logger, 'auth'));
        const mechanism = auth.method === 'PLAIN' ? 'PLAIN' : 'LOGIN';
        const username = auth.username ?? '';
        const refuse = (err: unknown): void => {
          // The last failure allowed on this connection closes it (421 closes in the library).
          // A refusal while locked out counts too: a client must not hammer a lock on one connection.
          const failed = isSmtpError(err) && (err.code === 535 || err === Replies.S454_AUTH_LOCKED);
          const closing = failed && ++state.authFailures >= limits.maxAuthFailures;
          if (closing) limit('auth_failures_connection');
          count('auth', isSmtpError(err) && !err.temporary ? 'failure' : 'error');
          state.log.info({ mechanism, reply: isSmtpError(err) ? err.code : 451, failures: state.authFailures }, 'authentication refused');
          callback(toLibraryError(closing ? Replies.S421_TOO_MANY_AUTH_FAILURES : err, state.log, 'auth'));
        };
        void (async () => {
          const lock = await authLimiter.check(username, state.ip);
          if (lock.locked) {
            limit(lock.scope === 'ip' ? 'auth_lockout_ip' : 'auth_lockout_user');
            return refuse(Replies.S454_AUTH_LOCKED);
          }
          try {
            await state.session.auth({ mechanism, username, password: auth.password ?? '' });
          } catch (err) {
            if (err === Replies.S535_AUTH_INVALID) await authLimiter.fail(username, state.ip);
            return refuse(err);
          }
          await authLimiter.succeed(username, state.ip);
          count('auth', 'success');
          state.log.info({ mechanism }, 'authenticated');
          callback(null, { user: username });
        })().catch(refuse);
      },
      onMailFrom(address: SMTPServerAddress, session, callback) {
        const state = lookup(session);
        if (!state) return callback(toLibraryError(new Error('no session'), logger, 'mail'));
        if (session.transaction > limits.maxMessagesPerSession) {
          limit('messages_per_session');
          return callback(toLibraryError(Replies.S421_TOO_MANY_MESSAGES, state.log, 'mail'));
        }
        const args = (address.args || {}) as Record<string, string | boolean | undefined>;
        const size = typeof args['SIZE'] === 'string' ? Number(args['SIZE']) : undefined;
        const body = typeof args['BODY'] === 'string' ? args['BODY'].toLowerCase() : undefined;
        // A declaration costs the client nothing, so it reserves nothing: it is only checked.
        if (size !== undefined && size > budget.free) {
          limit('inflight_bytes');
          state.log.info({ size, free: budget.free }, 'declared size over the free in-flight budget');
          return callback(toLibraryError(Replies.S452_INFLIGHT_FULL, state.log, 'mail'));
        }
        state.session
          .mail(address.address || '', {
            ...(size !== undefined && Number.isFinite(size) ? { size } : {}),
            ...(body === '7bit' || body === '8bitmime' ? { body } : {}),
            smtpUtf8: args['SMTPUTF8'] === true,
          })
          .then(
            () => callback(),
            (err: unknown) => callback(toLibraryError(err, state.log, 'mail')),
          );
      },
      onRcptTo(address: SMTPServerAddress, session, callback) {
        const state = lookup(session);
        if (!state) return callback(toLibraryError(new Error('no session'), logger, 'rcpt'));
        state.session.rcpt(address.address).then(
          () => callback(),
          (err: unknown) => callback(toLibraryError(err, state.log, 'rcpt')),
        );
      },
      onData(stream: SMTPServerDataStream, session, callback) {
        const state = lookup(session);
        if (!state) {
          stream.resume();
          return callback(toLibraryError(new Error('no session'), logger, 'data'));
        }
        const guard = new DataGuard(stream, { maxSize: limits.maxMessageSize, bareLf: limits.bareLf, budget });
        const envelope = session.envelope;
        const info = {
          from: envelope.mailFrom ? envelope.mailFrom.address : '',
          to: envelope.rcptTo.map((rcpt) => rcpt.address),
        };
        const result = state.session.data(guard.output, info).then(
          (text) => ({ ok: true as const, text }),
          (err: unknown) => ({ ok: false as const, err }),
        );
        // The callback sends the reply: the message's bytes are given back after it.
        const answer = (err: Error | null, text?: string): void => {
          try {
            callback(err, text);
          } finally {
            guard.release();
          }
        };
        void result.then(async (outcome) => {
          guard.detach();
          await guard.finished;
          if (guard.aborted) {
            // The connection closed or the message was dropped (session cap, shutdown): nobody to answer.
            state.log.info({ bytes: guard.bytes }, 'message dropped before the final dot');
            return answer(toLibraryError(Replies.S451_INTERNAL, state.log, 'data'));
          }
          if (guard.violation) {
            limit(guard.violation.reason);
            count('message', guard.violation.reply.temporary ? 'temporary' : 'permanent');
            state.log.info({ bytes: guard.bytes, reply: guard.violation.reply.code }, 'message refused');
            return answer(toLibraryError(guard.violation.reply, state.log, 'data'));
          }
          if (!outcome.ok) {
            count('message', isSmtpError(outcome.err) && outcome.err.temporary ? 'temporary' : 'permanent');
            return answer(toLibraryError(outcome.err, state.log, 'data'));
          }
          count('message', 'accepted');
          answer(null, `2.0.0 ${outcome.text}`);
        });
      },
      onClose(session) {
        slots.releaseSession(session.id);
        const state = live.get(session.id);
        if (!state) return;
        live.delete(session.id);
        state.log.info({}, 'closed');
        try {
          state.session.logout();
        } catch (err) {
          state.log.error({ err }, 'logout failed');
        }
      },
    };
    const server = new AcceptingServer(serverOptions, {
      listener,
      slots,
      trustedProxies,
      proxyTimeoutMs: limits.handshakeTimeoutMs,
      logger,
      count,
    });
    // A failed STARTTLS handshake reaches here twice (the TLS socket's 'error'
    // and '_tlsError' carry the same error object): count it once.
    const seen = new WeakSet<Error>();
    server.on('error', (err: Error & { code?: string; meta?: { stage?: string; remoteAddress?: string } }) => {
      if (seen.has(err)) return;
      seen.add(err);
      if (err.meta?.stage === 'connect' || /TLS|SSL/i.test(`${err.code} ${err.message}`)) {
        const reason = handshakeReason(err);
        count('tls_handshake_failure', reason);
        logger.info({ listener, reason, code: err.code, remoteAddress: err.meta?.remoteAddress }, 'TLS handshake failed');
        return;
      }
      logger.debug({ listener, code: err.code, err: err.message }, 'connection error');
    });
    return server;
  }

  const starttls = build('starttls');
  const implicit = options.securePort === null ? undefined : build('implicit');
  const servers = implicit ? [starttls, implicit] : [starttls];
  const unsubscribe = options.tls.onChange((pair) => {
    for (const server of servers) server.updateSecureContext({ ...options.tlsSettings, key: pair.key, cert: pair.cert });
  });

  async function bind(server: GatewayServer, port: number): Promise<number> {
    server.server.listen(port, options.host);
    await once(server.server, 'listening');
    return (server.server.address() as AddressInfo).port;
  }

  return {
    async listen() {
      const port = await bind(starttls, options.port);
      const securePort = implicit && options.securePort !== null ? await bind(implicit, options.securePort) : null;
      logger.info({ port, securePort, hostname: options.hostname }, 'SMTP listening');
      return { port, securePort };
    },
    async close() {
      unsubscribe();
      if (!options.authLimiter) await authLimiter.close();
      await Promise.all(
        servers.map(
          (server) =>
            new Promise<void>((resolve) => {
              if (!server.server.listening) return resolve();
              server.close(() => resolve());
            }),
        ),
      );
    },
    get connections() {
      return servers.reduce((sum, server) => sum + server.connections.size, 0);
    },
    get inflightBytes() {
      return budget.used;
    },
  };
}
