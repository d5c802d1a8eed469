/**
 * The doctor's SMTP client: a TCP or TLS connection and a conversation that
 * reads replies (multi-line ones joined), with a timeout on each step. The
 * TLS handshake does not stop at a certificate it cannot verify, so that the
 * checks can report it.
 */
import { connect as netConnect, isIP, type Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';

export interface Reply {
  readonly code: number;
  /** The reply's lines, without CRLF. */
  readonly lines: readonly string[];
}

export const lastLine = (r: Reply): string => r.lines[r.lines.length - 1] ?? String(r.code);

/** Reads SMTP replies (multi-line ones joined) from a socket that may be upgraded to TLS. */
export class Conversation {
  #socket: Socket;
  #buffer = '';
  #lines: string[] = [];
  #waiting: ((r: Reply | Error) => void) | undefined;
  #ready: Reply[] = [];
  #closed: Error | undefined;

  constructor(socket: Socket, readonly timeoutMs: number) {
    this.#socket = socket;
    this.#listen(socket);
  }

  #listen(socket: Socket): void {
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => this.#data(chunk));
    socket.on('error', (err) => this.#fail(err));
    socket.on('close', () => this.#fail(new Error('the connection was closed')));
  }

  #data(chunk: string): void {
    this.#buffer += chunk;
    let nl = this.#buffer.indexOf('\n');
    while (nl !== -1) {
      const line = this.#buffer.slice(0, nl).replace(/\r$/, '');
      this.#buffer = this.#buffer.slice(nl + 1);
      this.#lines.push(line);
      if (!/^\d{3}-/.test(line)) {
        const reply: Reply = { code: Number(line.slice(0, 3)) || 0, lines: this.#lines };
        this.#lines = [];
        if (this.#waiting) {
          const w = this.#waiting;
          this.#waiting = undefined;
          w(reply);
        } else this.#ready.push(reply);
      }
      nl = this.#buffer.indexOf('\n');
    }
  }

  #fail(err: Error): void {
    this.#closed ??= err;
    const w = this.#waiting;
    this.#waiting = undefined;
    w?.(err);
  }

  read(): Promise<Reply> {
    const ready = this.#ready.shift();
    if (ready) return Promise.resolve(ready);
    if (this.#closed) return Promise.reject(this.#closed);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiting = undefined;
        reject(new Error(`no reply within ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      this.#waiting = (r) => {
        clearTimeout(timer);
        if (r instanceof Error) reject(r);
        else resolve(r);
      };
    });
  }

  async command(line: string): Promise<Reply> {
    this.#socket.write(`${line}\r\n`);
    return this.read();
  }

  /** STARTTLS's upgrade: the same conversation continues on the TLS socket. */
  async upgrade(options: TlsOptions): Promise<TLSSocket> {
    this.#socket.removeAllListeners('data');
    this.#socket.removeAllListeners('close');
    this.#socket.removeAllListeners('error');
    const secure = await handshake({ ...options, socket: this.#socket });
    this.#socket = secure;
    this.#closed = undefined;
    this.#listen(secure);
    return secure;
  }

  destroy(): void {
    this.#socket.destroy();
  }
}

interface TlsOptions {
  readonly host: string;
  readonly port: number;
  readonly ca: string | undefined;
  readonly timeoutMs: number;
  readonly socket?: Socket;
}

/** A TLS handshake that does not stop at a certificate it cannot verify: that is reported. */
export function handshake(options: TlsOptions): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({
      ...(options.socket ? { socket: options.socket } : { host: options.host, port: options.port }),
      ...(isIP(options.host) ? {} : { servername: options.host }),
      ...(options.ca === undefined ? {} : { ca: options.ca }),
      rejectUnauthorized: false,
      // the name is checked (and reported) by smtp-checks.ts
      checkServerIdentity: () => undefined,
    });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`TLS handshake took longer than ${options.timeoutMs} ms`));
    }, options.timeoutMs);
    socket.once('secureConnect', () => {
      clearTimeout(timer);
      resolve(socket);
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

/** A TCP connection, or an error within timeoutMs. */
export function tcp(host: string, port: number, timeoutMs: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = netConnect({ host, port });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no connection within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      resolve(socket);
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}
