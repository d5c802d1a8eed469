/**
 * GatewayServer: smtp-server's SMTPServer, adapted (see connection.ts for the
 * list). It builds GatewayConnections, drains on close() and gives implicit
 * TLS its own handshake deadline.
 *
 * Shutdown drains: idle sessions get `421 4.3.2` at once; a session in the
 * middle of a message gets its reply first, then the `421`. At the cut-off
 * the sessions left get `421 4.3.2`, except one whose message is received and
 * waits for its reply: that reply is never cut short, as the backend may
 * deliver the message anyway.
 */
import type { Socket } from 'node:net';
import { SMTPServer } from 'smtp-server';
import { Replies } from '../errors.js';
import { GatewayConnection, type GatewayServerOptions } from './connection.js';

export class GatewayServer extends SMTPServer {
  declare options: GatewayServerOptions & SMTPServer['options'];

  override connect(socket: Socket, socketOptions: object): void {
    const connection = new GatewayConnection(this, socket, socketOptions);
    this.connections.add(connection);
    connection.on('error', (err: Error) => this._onError(err));
    connection.on('connect', (data: unknown) => this._onClientConnect(data as never));
    connection.init();
  }

  /**
   * Stops accepting; sessions that wait on nothing get `421 4.3.2` now, the
   * others when their current command is answered (see _resetSession and the
   * library's `_onCommand`). At closeTimeout - maxReplyWaitMs the sessions left
   * are cut with `421 4.3.2` (a message still being received is dropped),
   * except those whose message was received and waits for its reply: the
   * backend may deliver it whatever the client is told, so the client gets
   * that reply, then the `421`. `callback` runs once every connection is gone.
   */
  override close(callback?: () => void): void {
    super.close(callback);
    // The library's timer cuts every session, and calls back while some are still open.
    if (this._closeTimeout) clearTimeout(this._closeTimeout);
    const { closeTimeout = 30_000, maxReplyWaitMs } = this.options;
    this._closeTimeout = setTimeout(() => this.cut(), Math.max(0, closeTimeout - maxReplyWaitMs));
    this._closeTimeout.unref();
    for (const connection of this.connections) {
      if (connection instanceof GatewayConnection && !connection.busy) connection.reply(Replies.S421_SHUTTING_DOWN);
    }
  }

  /** The drain's cut-off: every session goes, except a received message waiting for its reply. */
  private cut(): void {
    for (const connection of this.connections) {
      if (!(connection instanceof GatewayConnection)) continue;
      if (connection.awaitingReply) continue;
      connection.dropMessage(Replies.S421_SHUTTING_DOWN);
      connection.close();
    }
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
