/**
 * AcceptingServer, the accept path: what happens to a socket between the
 * kernel's accept and the SMTP session (smtp-server's `_acceptSocket` and
 * `_handleProxy`).
 *
 * - Every accepted connection takes a slot at once, before the implicit TLS
 *   handshake, the PROXY header or the greeting: MAX_CONNECTIONS counts all of
 *   them across both listeners, and MAX_CONNECTIONS_PER_IP all those of one
 *   client (IPv6 by /64). Over a limit, the STARTTLS listener answers
 *   `421 4.7.0` and closes; the implicit-TLS listener closes at once (nothing
 *   can be said before TLS, and a handshake is the work a flood wants).
 * - From a trusted balancer (PROXY_TRUSTED_CIDRS) a PROXY header is required
 *   first; its source address is the client for everything after, per-IP slot
 *   included. A bad or missing header closes the connection.
 *
 * - Without a PROXY header the session starts while the accept is handled,
 *   so the greeting is written at once (the library waits for setImmediate).
 *
 * A slot is released when the accepted socket closes, or when its session
 * closes (STARTTLS removes the raw socket's listeners, so both are watched).
 */
import { randomBytes } from 'node:crypto';
import type { BlockList, Socket } from 'node:net';
import type { SMTPServer } from 'smtp-server';
import type { Logger } from '@cakemail-smtp/tls';
import { clientKey } from '../client-address.js';
import type { ConnectionSlots, Refusal, Slot } from '../connection-slots.js';
import { Replies, type SmtpError } from '../errors.js';
import type { CountHook } from '../metrics.js';
import { isTrusted, peerAddress, readProxyHeader } from '../proxy.js';
import type { Listener } from '../session.js';
import type { GatewayServerOptions } from './connection.js';
import { GatewayServer } from './server.js';

export interface AcceptOptions {
  readonly listener: Listener;
  readonly slots: ConnectionSlots;
  /** Balancers whose connections must start with a PROXY header; none when undefined. */
  readonly trustedProxies: BlockList | undefined;
  /** How long a trusted peer has to send its whole header. */
  readonly proxyTimeoutMs: number;
  readonly logger: Logger;
  readonly count: CountHook;
}

type SocketOptions = Parameters<Parameters<SMTPServer['_handleProxy']>[1]>[1];

/** How long a refused socket stays open for its reply to be flushed. */
const REFUSE_LINGER_MS = 1000;

/** A session id as smtp-server makes one: 80 random bits, 16 base-32 digits. */
function sessionId(): string {
  return BigInt(`0x${randomBytes(10).toString('hex')}`)
    .toString(32)
    .padStart(16, '0');
}

export class AcceptingServer extends GatewayServer {
  private readonly slotOf = new WeakMap<Socket, Slot>();
  /** Trusted sockets whose PROXY header has been read. */
  private readonly headerRead = new WeakSet<Socket>();

  constructor(
    options: GatewayServerOptions,
    private readonly accept: AcceptOptions,
  ) {
    super(options);
  }

  override _expectsProxyHeader(socket: Socket): boolean {
    if (this.accept.trustedProxies === undefined || this.headerRead.has(socket)) return false;
    return isTrusted(this.accept.trustedProxies, socket.remoteAddress);
  }

  override _acceptSocket(socket: Socket, handshake: boolean): (() => void) | false {
    const { slots } = this.accept;
    const proxied = this._expectsProxyHeader(socket);
    // Behind a balancer the client is known only from its header: counted then.
    const key = proxied ? undefined : clientKey(socket.remoteAddress ?? '');
    const refused = slots.refusal(key, true);
    if (refused) {
      this.refuse(socket, refused, key);
      return false;
    }
    const release = super._acceptSocket(socket, handshake);
    if (!release) {
      // smtp-server's own cap on sockets still before their session.
      this.accept.count('limit', 'connections');
      return false;
    }
    const slot = slots.take();
    if (key !== undefined) slots.assign(slot, key);
    this.slotOf.set(socket, slot);
    socket.once('close', () => slot.release());
    return release;
  }

  override _handleProxy(socket: Socket, callback: (err: Error | null, socketOptions?: SocketOptions) => void): void {
    const slot = this.slotOf.get(socket);
    const bind = (err: Error | null, socketOptions?: SocketOptions): void => {
      if (slot && socketOptions) this.accept.slots.bindSession(slot, socketOptions.id);
      callback(err, socketOptions);
    };
    // The library hands a socket without a PROXY header on at setImmediate, after every
    // other socket's I/O of this turn of the event loop (TLS handshakes: milliseconds each
    // under load). Here it goes on at once, so the greeting leaves with the accept.
    if (!this._expectsProxyHeader(socket)) return bind(null, { id: sessionId() });
    const { logger, count, listener, proxyTimeoutMs } = this.accept;
    const peer = peerAddress(socket.remoteAddress ?? '');
    // The header is read: the library makes the session's socket options (its id), with the client's address.
    const start = (remote: { remoteAddress: string; remotePort: number } | undefined): void => {
      this.headerRead.add(socket);
      super._handleProxy(socket, (err, socketOptions) => {
        if (err || !socketOptions) return bind(err ?? new Error('no socket options'));
        bind(null, remote ? { ...socketOptions, ...remote } : socketOptions);
      });
    };
    readProxyHeader(
      socket,
      proxyTimeoutMs,
      (header) => {
        if (header.kind === 'local') {
          // A health check or UNKNOWN: the balancer's own connection, counted as its own.
          const key = clientKey(peer);
          const refused = this.accept.slots.refusal(key, false);
          if (refused) return this.refuseLater(socket, refused, key, callback);
          if (slot) this.accept.slots.assign(slot, key);
          logger.debug({ listener, peer, version: header.version }, 'PROXY header for the balancer itself');
          return start(undefined);
        }
        const key = clientKey(header.address);
        const refused = this.accept.slots.refusal(key, false);
        if (refused) return this.refuseLater(socket, refused, key, callback);
        if (slot) this.accept.slots.assign(slot, key);
        logger.debug({ listener, peer, remoteAddress: header.address, version: header.version }, 'PROXY header');
        start({ remoteAddress: header.address, remotePort: header.port });
      },
      (failure, detail) => {
        socket.on('error', () => {});
        if (failure === 'closed') {
          // A TCP health check: connected, said nothing, left.
          socket.destroy();
        } else {
          count('proxy_header_failure', failure);
          logger.info({ listener, peer, reason: failure, detail }, 'PROXY header refused');
          this.close421(socket, Replies.S421_PROXY_HEADER);
        }
        callback(new Error(`PROXY header: ${detail}`));
      },
    );
  }

  /** Over a limit at accept: a reply on the STARTTLS listener, a plain close on the TLS one. */
  private refuse(socket: Socket, refused: Refusal, key: string | undefined): void {
    this.accept.count('limit', refused);
    this.accept.logger.info(
      { listener: this.accept.listener, remoteAddress: key, connections: key === undefined ? this.accept.slots.size : this.accept.slots.held(key) },
      refused === 'connections' ? 'too many connections' : 'too many connections from one address',
    );
    socket.on('error', () => {});
    this.close421(socket, refused === 'connections' ? Replies.S421_TOO_MANY_CONNECTIONS : Replies.S421_TOO_MANY_FROM_IP);
  }

  /** As refuse(), for a socket the library already guards (after a PROXY header). */
  private refuseLater(socket: Socket, refused: Refusal, key: string, callback: (err: Error | null) => void): void {
    this.refuse(socket, refused, key);
    callback(new Error(`refused: ${refused}`));
  }

  private close421(socket: Socket, reply: SmtpError): void {
    if (this.accept.listener === 'implicit' || !socket.writable) {
      socket.destroy();
      return;
    }
    socket.end(`${reply.line}\r\n`);
    setTimeout(() => socket.destroy(), REFUSE_LINGER_MS).unref();
  }
}
