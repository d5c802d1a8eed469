/**
 * The small subclasses of smtp-server this gateway needs. Each override is
 * listed in the README ("Changes to smtp-server") and has a test.
 *
 * 1. No 100 ms pre-greeting wait: the greeting goes out at once.
 * 2. Replies built by smtp-core carry their own enhanced status code
 *    (`5.7.1 …`); the library does not add a second, derived one.
 * 3. AUTH is advertised only once the connection is TLS, and AUTH on plaintext
 *    gets `530 5.7.0 Must issue a STARTTLS command first` (the library says 538).
 * 4. A separate TLS handshake timeout, for implicit TLS and after STARTTLS
 *    (the library reuses the idle timeout).
 * 5. The transaction reset reaches the session (RSET, EHLO, end of DATA).
 */
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { SMTPServer, type SMTPServerOptions } from 'smtp-server';
import { SMTPConnection } from 'smtp-server/lib/smtp-connection.js';
import { Replies } from './errors.js';

/** A reply text that already starts with an enhanced status code. */
const ENHANCED = /^[245]\.\d{1,3}\.\d{1,3} /;

export interface GatewayHooks {
  /** The TLS handshake did not finish in time. */
  handshakeTimeout(): void;
  /** RSET, EHLO or the end of a transaction on this session id. */
  reset(sessionId: string): void;
}

export interface GatewayServerOptions extends SMTPServerOptions {
  handshakeTimeout: number;
  hooks: GatewayHooks;
}

export class GatewayConnection extends SMTPConnection {
  private hideAuth = false;

  private get gatewayOptions(): GatewayServerOptions {
    return this._server.options as GatewayServerOptions;
  }

  /** As the library's init(), without `setTimeout(connectionReady, 100)`. */
  override init(): void {
    this._setListeners(() => {
      const { maxClients } = this._server.options;
      if (maxClients && this._server.connections.size > maxClients) {
        this.send(421, `${Replies.S421_TOO_MANY_CONNECTIONS.enhancedCode} ${Replies.S421_TOO_MANY_CONNECTIONS.message}`);
        return;
      }
      this.connectionReady();
    });
  }

  override send(code: number, data?: string | string[] | null, context?: string | false): void {
    if (this.hideAuth && Array.isArray(data)) data = data.filter((line) => !/^AUTH\b/i.test(line));
    if (typeof data === 'string' && ENHANCED.test(data)) context = false;
    super.send(code, data, context);
  }

  override handler_EHLO(command: Buffer, callback: () => void): void {
    this.hideAuth = !this.secure;
    try {
      super.handler_EHLO(command, callback);
    } finally {
      this.hideAuth = false;
    }
  }

  override handler_AUTH(command: Buffer, callback: () => void): void {
    if (!this.secure) {
      const r = Replies.S530_STARTTLS_FIRST;
      this.send(r.code, `${r.enhancedCode} ${r.message}`);
      callback();
      return;
    }
    super.handler_AUTH(command, callback);
  }

  /**
   * upgrade() arms the new TLS socket through here while `_upgrading` is set:
   * give it the handshake deadline, and the idle one once it is secure.
   */
  override _armTimeout(socket: Socket = this._socket): void {
    if (!this._upgrading || socket === this._socket) {
      super._armTimeout(socket);
      return;
    }
    const tlsSocket = socket as TLSSocket;
    const onHandshakeTimeout = (): void => {
      this.gatewayOptions.hooks.handshakeTimeout();
      tlsSocket.destroy(); // the TLS socket on top, never the raw one underneath
    };
    tlsSocket.setTimeout(this.gatewayOptions.handshakeTimeout, onHandshakeTimeout);
    tlsSocket.once('secure', () => {
      tlsSocket.removeListener('timeout', onHandshakeTimeout);
      super._armTimeout(tlsSocket);
    });
  }

  override _resetSession(): void {
    super._resetSession();
    this.gatewayOptions.hooks.reset(this.id);
  }
}

export class GatewayServer extends SMTPServer {
  declare options: GatewayServerOptions & SMTPServer['options'];

  override connect(socket: Socket, socketOptions: object): void {
    const connection = new GatewayConnection(this, socket, socketOptions);
    this.connections.add(connection);
    connection.on('error', (err: Error) => this._onError(err));
    connection.on('connect', (data: unknown) => this._onClientConnect(data as never));
    connection.init();
  }

  /** Implicit TLS: the handshake gets its own deadline, not the idle timeout. */
  override _upgrade(socket: Socket, callback: Parameters<SMTPServer['_upgrade']>[1]): void {
    const idle = this.options.socketTimeout;
    this.options.socketTimeout = this.options.handshakeTimeout;
    try {
      super._upgrade(socket, callback);
    } finally {
      this.options.socketTimeout = idle;
    }
  }
}
