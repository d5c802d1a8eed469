/**
 * The adapter from smtp-server's callbacks (onConnect, onAuth, onMailFrom,
 * onRcptTo, onData, onClose) to a Backend's Sessions: the only code that
 * knows those callbacks. One SessionCallbacks serves both listeners.
 */
import type { SMTPServerAddress, SMTPServerDataStream, SMTPServerSession } from 'smtp-server';
import type { Logger } from '@cakemail-smtp/tls';
import { authenticate, type AuthConnection, type AuthPolicy } from './auth-policy.js';
import { clientKey } from './client-address.js';
import type { ConnectionSlots } from './connection-slots.js';
import { DataGuard } from './data-guard.js';
import { Replies, isSmtpError } from './errors.js';
import type { InflightBudget } from './inflight.js';
import type { GatewayServerOptions } from './library/connection.js';
import { toLibraryError } from './library/errors.js';
import type { SmtpLimits } from './limits.js';
import type { CountHook } from './metrics.js';
import type { Backend, ConnectionInfo, Listener } from './session.js';

export interface SessionCallbacksOptions {
  readonly backend: Backend;
  readonly limits: SmtpLimits;
  readonly logger: Logger;
  readonly count: CountHook;
  readonly budget: InflightBudget;
  readonly slots: ConnectionSlots;
  readonly auth: AuthPolicy;
}

type Callbacks = Pick<GatewayServerOptions, 'onConnect' | 'onAuth' | 'onMailFrom' | 'onRcptTo' | 'onData' | 'onClose'>;

export class SessionCallbacks {
  private readonly live = new Map<string, AuthConnection>();

  constructor(private readonly options: SessionCallbacksOptions) {}

  /** RSET, EHLO or the end of a transaction on session `id`. */
  reset(id: string): void {
    this.live.get(id)?.session.reset();
  }

  /** smtp-server's callbacks for one listener. */
  forListener(listener: Listener): Callbacks {
    const { backend, limits, logger, count, budget, slots } = this.options;
    const live = this.live;
    const limit = (reason: string): void => count('limit', reason);
    const lookup = (session: SMTPServerSession): AuthConnection | undefined => live.get(session.id);
    const auth = this.options.auth;
    return {
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
        // Per-IP and overall limits were applied at accept (library/accepting-server.ts).
        const ip = clientKey(session.remoteAddress);
        try {
          live.set(session.id, { session: backend.newSession(conn), log, ip, authFailures: 0 });
        } catch (err) {
          callback(toLibraryError(err, log, 'connect'));
          return;
        }
        log.info({ remoteAddress: session.remoteAddress, listener }, 'connection');
        callback();
      },
      onAuth(request, session, callback) {
        const state = lookup(session);
        if (!state) return callback(toLibraryError(new Error('no session'), logger, 'auth'));
        const username = request.username ?? '';
        const credentials = { mechanism: request.method === 'PLAIN' ? 'PLAIN' : 'LOGIN', username, password: request.password ?? '' } as const;
        void authenticate(auth, state, credentials).then((outcome) =>
          outcome.ok ? callback(null, { user: username }) : callback(toLibraryError(outcome.err, state.log, 'auth')),
        );
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
  }
}
