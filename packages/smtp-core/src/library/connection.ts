/**
 * GatewayConnection: smtp-server's SMTPConnection, adapted. With
 * GatewayServer (server.ts) and AcceptingServer (accepting-server.ts) these
 * are the library adaptations; each override is listed in the README
 * ("Changes to smtp-server") and has a test.
 *
 * 1. No 100 ms pre-greeting wait: the greeting goes out at once.
 * 2. Replies built by smtp-core carry their own enhanced status code
 *    (`5.7.1 …`); the library does not add a second, derived one.
 * 3. AUTH is advertised only once the connection is TLS, and AUTH on plaintext
 *    gets `530 5.7.0 Must issue a STARTTLS command first` (the library says 538).
 * 4. A separate TLS handshake timeout, for implicit TLS and after STARTTLS
 *    (the library reuses the idle timeout).
 * 5. The transaction reset reaches the session (RSET, EHLO, end of DATA).
 * 6. Command lines over 512 octets get `500 5.5.2` and the session reads on
 *    (command-stream.ts); invalid base64 in AUTH gets `501 5.5.2`.
 * 7. Floods are bounded: commands that move no mail (NOOP, RSET, VRFY, HELP,
 *    EHLO, unknown…) and commands refused with a 5xx (AUTH before TLS, RCPT
 *    out of sequence…; Postfix's hard error limit) are counted between
 *    messages; over the limit, `421 4.7.0`.
 * 8. An overall session cap: `421 4.4.2` once it is reached, between commands
 *    or while a message is being received (the message is dropped); a message
 *    already received gets its reply first.
 * 9. The library's own `421`s carry the right enhanced code and our wording.
 * 10. Shutdown drains (with GatewayServer.close): a session ending a
 *     transaction during a shutdown gets `421 4.3.2` after its reply.
 * 11. Replies to commands that arrive together leave in one TLS record.
 */
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { SMTPServerOptions } from 'smtp-server';
import { SMTPConnection } from 'smtp-server/lib/smtp-connection.js';
import { AUTH_LINE_LIMIT, COMMAND_LINE_LIMIT, CommandStream, TOO_LONG_MARKER } from './command-stream.js';
import { Replies, SmtpError } from '../errors.js';

/** A reply text that already starts with an enhanced status code. */
const ENHANCED = /^[245]\.\d{1,3}\.\d{1,3} /;

export interface GatewayHooks {
  /** The TLS handshake did not finish in time. */
  handshakeTimeout(): void;
  /** RSET, EHLO or the end of a transaction on this session id. */
  reset(sessionId: string): void;
  /** A limit or edge defence refused something. */
  limit(reason: string): void;
}

export interface GatewayServerOptions extends SMTPServerOptions {
  handshakeTimeout: number;
  /** Commands that move no mail, allowed between two messages. */
  maxJunkCommands: number;
  /** Overall session cap in ms; 0: none. */
  sessionMaxMs: number;
  /**
   * The longest the backend takes to answer a message it has received in full.
   * A shutdown cuts the sessions that are not waiting for such a reply this
   * long before closeTimeout, so every reply fits in closeTimeout. 0: at closeTimeout.
   */
  maxReplyWaitMs: number;
  hooks: GatewayHooks;
}

/** Commands that move no mail: counted against maxJunkCommands. */
const JUNK = new Set(['NOOP', 'RSET', 'VRFY', 'EXPN', 'HELP', 'EHLO', 'HELO', 'LHLO', 'ETRN', 'TURN']);

/** Strict base64 (RFC 4648 alphabet, padded), or `=` for an empty response. */
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** The library's 421 texts, and what the client gets instead. */
const LIBRARY_421: ReadonlyMap<string, SmtpError> = new Map([
  ['Timeout - closing connection', Replies.S421_IDLE_TIMEOUT],
  ['Server shutting down', Replies.S421_SHUTTING_DOWN],
  ['Error: too many unauthenticated commands', Replies.S421_TOO_MANY_COMMANDS],
  ['Error: too many unrecognized commands', Replies.S421_TOO_MANY_COMMANDS],
]);

export class GatewayConnection extends SMTPConnection {
  private hideAuth = false;
  private junk = 0;
  private junkEpoch = 0;
  /** A command is being dispatched by the library: a 5xx it sends now is a refusal. */
  private inCommand = false;
  private counted = false;
  private sessionTimer: NodeJS.Timeout | undefined;
  /** Corked until the replies to the commands read with this one are written (corkReplies). */
  private corked = false;

  private get gatewayOptions(): GatewayServerOptions {
    return this._server.options as GatewayServerOptions;
  }

  /** As the library's init(), without `setTimeout(connectionReady, 100)`. */
  override init(): void {
    this._setListeners(() => {
      const { maxClients } = this._server.options;
      if (maxClients && this._server.connections.size > maxClients) {
        this.reply(Replies.S421_TOO_MANY_CONNECTIONS);
        return;
      }
      this.connectionReady();
      const { sessionMaxMs } = this.gatewayOptions;
      if (sessionMaxMs > 0) {
        this.sessionTimer = setTimeout(() => this.expire(), sessionMaxMs);
        this.sessionTimer.unref();
      }
    });
  }

  /**
   * The session cap: answered between commands, or while a message is being
   * received (the message is dropped). A command being handled, a TLS upgrade
   * or a received message waiting for its reply is answered first.
   */
  private expire(): void {
    if (this._closing || this._closed) return;
    if (this.receiving) {
      this.gatewayOptions.hooks.limit('session_time');
      this.dropMessage(Replies.S421_SESSION_TOO_LONG);
      return;
    }
    if (this._handlerPending || this._dataStream || this._upgrading) {
      this.sessionTimer = setTimeout(() => this.expire(), 100);
      this.sessionTimer.unref();
      return;
    }
    this.gatewayOptions.hooks.limit('session_time');
    this.reply(Replies.S421_SESSION_TOO_LONG);
  }

  /**
   * Sends `r` (a 421) and closes, dropping the message being received: its
   * stream fails, so the session abandons it and nothing of it is relayed.
   */
  dropMessage(r: SmtpError): void {
    const stream = this._dataStream;
    this.reply(r);
    if (stream && !stream.destroyed) stream.destroy(r);
  }

  override _onClose(): void {
    clearTimeout(this.sessionTimer);
    super._onClose();
  }

  /** Sends a catalogue reply. */
  reply(r: SmtpError): void {
    this.send(r.code, r.text);
  }

  override send(code: number, data?: string | string[] | null, context?: string | false): void {
    if (this.hideAuth && Array.isArray(data)) data = data.filter((line) => !/^AUTH\b/i.test(line));
    // The library's own limit replies: counted like ours, worded like ours.
    if (code === 452 && !(typeof data === 'string' && ENHANCED.test(data))) {
      this.gatewayOptions.hooks.limit('recipients');
      data = Replies.S452_TOO_MANY_RECIPIENTS.text;
    }
    if (code === 552 && typeof data === 'string' && !ENHANCED.test(data)) {
      this.gatewayOptions.hooks.limit('message_size');
      data = Replies.S552_MESSAGE_TOO_BIG.text;
    }
    if (code === 421 && typeof data === 'string') {
      const ours = LIBRARY_421.get(data);
      if (ours) data = ours.text;
      else if (!ENHANCED.test(data)) data = `4.7.0 ${data.replace(/^Error: /, '')}`;
    }
    if (typeof data === 'string' && ENHANCED.test(data)) context = false;
    // A refused command moves no mail either (535 has its own, lower, limit).
    if (this.inCommand && !this.counted && code >= 500 && code !== 535) {
      this.counted = true;
      this.junk++;
    }
    super.send(code, data, context);
  }

  override _createParser(): CommandStream {
    const parser = new CommandStream((head) =>
      this._nextHandler || /^AUTH(?:\s|$)/i.test(head) ? AUTH_LINE_LIMIT : COMMAND_LINE_LIMIT,
    );
    parser.oncommand = (command: Buffer, callback?: () => void) => this._onCommand(command, callback);
    // The library's own last-resort limit: the parser stops reading, so the connection must go.
    parser.on('error', () => this.reply(new SmtpError(421, '4.7.0', 'Line too long, closing connection')));
    return parser;
  }

  /** Answers a command here, without the library. */
  private answer(r: SmtpError, callback: (() => void) | undefined, reason: string): void {
    this.gatewayOptions.hooks.limit(reason);
    this.reply(r);
    if (r.code !== 421) setImmediate(() => this._whenWritable(callback ?? (() => {})));
  }

  /**
   * Replies to commands that arrive together (a pipelined MAIL, RCPT and DATA)
   * leave in one TLS record and one write instead of one each: the TLS socket
   * is corked while they are handled, and uncorked once the event loop has run
   * their handlers (setImmediate comes after the promise callbacks that answer
   * them). A reply that waits on I/O (the relay's final 250) goes out on its own.
   * Never before TLS: the plaintext socket must be flushed before STARTTLS wraps it.
   */
  private corkReplies(): void {
    if (this.corked || !this.secure || this._upgrading) return;
    const socket = this._socket;
    socket.cork();
    this.corked = true;
    setImmediate(() => {
      this.corked = false;
      socket.uncork();
    });
  }

  override _onCommand(command: Buffer, callback?: () => void): void {
    this.corkReplies();
    // Before the greeting, during a TLS upgrade or a shutdown, the library decides.
    if (!this._ready || this._upgrading || this._server._closeTimeout) return super._onCommand(command, callback);
    if (this.junkEpoch !== this._transactionCounter) {
      this.junkEpoch = this._transactionCounter;
      this.junk = 0;
    }
    const { maxJunkCommands } = this.gatewayOptions;
    // Refusals already spent the budget.
    if (this.junk > maxJunkCommands) return this.answer(Replies.S421_TOO_MANY_COMMANDS, callback, 'command_flood');
    if (command.equals(TOO_LONG_MARKER)) {
      this._nextHandler = false; // an over-long SASL line ends the exchange
      return this.junkOver(callback) ? undefined : this.answer(Replies.S500_LINE_TOO_LONG, callback, 'line_length');
    }
    if (this._nextHandler) {
      const line = command.toString('latin1').trim();
      if (line !== '*' && !BASE64.test(line)) {
        this._nextHandler = false;
        this.junk++;
        return this.answer(Replies.S501_AUTH_SYNTAX, callback, 'auth_base64');
      }
      return super._onCommand(command, callback);
    }
    // The verb only (up to the first space), not the whole line: `toString('latin1').split(' ')[0]`.
    const space = command.indexOf(0x20);
    const name = (space === -1 ? command : command.subarray(0, space)).toString('latin1').toUpperCase();
    const junk = JUNK.has(name) || !this._isSupported(name);
    if (junk && this.junkOver(callback)) return;
    this.inCommand = true;
    this.counted = junk;
    try {
      super._onCommand(command, callback);
    } finally {
      this.inCommand = false;
    }
  }

  /** Counts a command that moves no mail; true when it was over the limit (and answered 421). */
  private junkOver(callback: (() => void) | undefined): boolean {
    if (++this.junk <= this.gatewayOptions.maxJunkCommands) return false;
    this.answer(Replies.S421_TOO_MANY_COMMANDS, callback, 'command_flood');
    return true;
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
      this.reply(Replies.S530_STARTTLS_FIRST);
      callback();
      return;
    }
    const initial = command.toString('latin1').trim().split(/\s+/)[2];
    if (initial !== undefined && initial !== '=' && !BASE64.test(initial)) {
      this.gatewayOptions.hooks.limit('auth_base64');
      this.reply(Replies.S501_AUTH_SYNTAX);
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
    // The end of a transaction during a shutdown: the reply went out, now say goodbye.
    if (this._server._closeTimeout && this._ready && !this._closing) this.reply(Replies.S421_SHUTTING_DOWN);
  }

  /** Waiting on us: a command handler (AUTH, MAIL, the relay) or a message being received. */
  get busy(): boolean {
    return this._handlerPending || Boolean(this._dataStream) || this._upgrading;
  }

  /** A message is being received (DATA, before the final dot). */
  get receiving(): boolean {
    return Boolean(this._dataStream) && Boolean(this._parser && this._parser._dataMode);
  }

  /** A message was received in full and waits for its reply (the backend is relaying it). */
  get awaitingReply(): boolean {
    return Boolean(this._dataStream) && Boolean(this._parser && !this._parser._dataMode);
  }
}
