/**
 * A raw-socket SMTP client for exact-byte tests, climbed as a ladder:
 * `greeted → ehlo → startTls → authenticated` (go-smtp's test style).
 * It writes exactly the bytes it is given and parses replies as they come,
 * multi-line ones included, so a test can assert every reply line.
 */
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions, type TLSSocket } from 'node:tls';

export interface Reply {
  readonly code: number;
  /** The enhanced status code of the last line, when there is one. */
  readonly enhanced: string | undefined;
  /** Each line's text after the code (and the enhanced code). */
  readonly lines: readonly string[];
  /** The last line's text. */
  readonly text: string;
  /** The reply as received, CRLFs included. */
  readonly raw: string;
}

export interface ClientOptions {
  readonly host?: string;
  readonly port: number;
  /** Connect with implicit TLS (port 465 style). */
  readonly implicitTls?: boolean;
  /** TLS options: `ca`, `servername`, `minVersion`, `ciphers`… Verification is on unless `rejectUnauthorized: false`. */
  readonly tls?: ConnectionOptions;
  /** ms to wait for any one reply. Default 5000. */
  readonly timeoutMs?: number;
  /** Source address, e.g. `127.0.0.2` to appear as another client on loopback. */
  readonly localAddress?: string;
  /** Bytes sent first, before TLS and the greeting: a PROXY protocol header, as a balancer sends it. */
  readonly prefix?: string | Uint8Array;
}

const LINE = /^(\d{3})([ -])(?:([245]\.\d{1,3}\.\d{1,3}) )?(.*)$/;

export class SmtpTestClient {
  socket: Socket | TLSSocket;
  greeting: Reply | undefined;
  private buffer = '';
  private replies: Reply[] = [];
  private waiters: Array<{ resolve: (r: Reply) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }> = [];
  private ended = false;
  private endWaiters: Array<() => void> = [];

  private constructor(
    socket: Socket | TLSSocket,
    private readonly options: ClientOptions,
  ) {
    this.socket = socket;
    this.attach(socket);
  }

  /** Opens the connection and waits for the greeting. */
  static async connect(options: ClientOptions): Promise<SmtpTestClient> {
    const host = options.host ?? '127.0.0.1';
    const local = options.localAddress ? { localAddress: options.localAddress } : {};
    let socket: Socket | TLSSocket;
    if (options.prefix !== undefined) {
      const tcp = netConnect({ host, port: options.port, ...local });
      tcp.write(options.prefix);
      socket = options.implicitTls ? tlsConnect({ socket: tcp, ...tlsDefaults(host), ...options.tls }) : tcp;
    } else {
      socket = options.implicitTls
        ? tlsConnect({ host, port: options.port, ...local, ...tlsDefaults(host), ...options.tls })
        : netConnect({ host, port: options.port, ...local });
    }
    const client = new SmtpTestClient(socket, options);
    await new Promise<void>((resolve, reject) => {
      socket.once(options.implicitTls ? 'secureConnect' : 'connect', resolve);
      socket.once('error', reject);
    });
    client.greeting = await client.read();
    return client;
  }

  private attach(socket: Socket | TLSSocket): void {
    socket.setEncoding('latin1');
    socket.on('data', (data: string) => {
      this.buffer += data;
      this.parse();
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      if (this.socket !== socket) return;
      this.ended = true;
      for (const waiter of this.waiters.splice(0)) {
        clearTimeout(waiter.timer);
        waiter.reject(new Error(`connection closed while waiting for a reply; unparsed: ${JSON.stringify(this.buffer)}`));
      }
      for (const resolve of this.endWaiters.splice(0)) resolve();
    });
  }

  private parse(): void {
    for (;;) {
      let end = 0;
      const lines: RegExpExecArray[] = [];
      let complete = false;
      while (!complete) {
        const eol = this.buffer.indexOf('\r\n', end);
        if (eol === -1) return;
        const match = LINE.exec(this.buffer.slice(end, eol));
        if (!match) throw new Error(`malformed reply line: ${JSON.stringify(this.buffer.slice(end, eol))}`);
        lines.push(match);
        end = eol + 2;
        complete = match[2] === ' ';
      }
      const last = lines[lines.length - 1] as RegExpExecArray;
      const reply: Reply = {
        code: Number(last[1]),
        enhanced: last[3],
        lines: lines.map((m) => m[4] ?? ''),
        text: last[4] ?? '',
        raw: this.buffer.slice(0, end),
      };
      this.buffer = this.buffer.slice(end);
      const waiter = this.waiters.shift();
      if (waiter) {
        clearTimeout(waiter.timer);
        waiter.resolve(reply);
      } else {
        this.replies.push(reply);
      }
    }
  }

  /** The next reply, in order. Rejects if none comes in time or the connection closes. */
  read(): Promise<Reply> {
    const queued = this.replies.shift();
    if (queued) return Promise.resolve(queued);
    if (this.ended) return Promise.reject(new Error('connection is closed'));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w.timer !== timer);
        reject(new Error(`no reply within ${this.options.timeoutMs ?? 5000} ms; unparsed: ${JSON.stringify(this.buffer)}`));
      }, this.options.timeoutMs ?? 5000);
      this.waiters.push({ resolve, reject, timer });
    });
  }

  /** Writes raw bytes, nothing added. */
  write(data: string | Buffer): void {
    this.socket.write(typeof data === 'string' ? Buffer.from(data, 'latin1') : data);
  }

  /** Writes `line` + CRLF and reads one reply. */
  async command(line: string): Promise<Reply> {
    this.write(`${line}\r\n`);
    return this.read();
  }

  async ehlo(name = 'client.test'): Promise<Reply> {
    return this.command(`EHLO ${name}`);
  }

  /** STARTTLS, expect 220, then the handshake on the same socket. */
  async startTls(tls: ConnectionOptions = this.options.tls ?? {}): Promise<Reply> {
    const reply = await this.command('STARTTLS');
    if (reply.code !== 220) throw new Error(`STARTTLS refused: ${reply.raw}`);
    await this.upgrade(tls);
    return reply;
  }

  /** The TLS handshake on the current socket, without sending STARTTLS (for tests that pipeline). */
  async upgrade(tls: ConnectionOptions = this.options.tls ?? {}): Promise<TLSSocket> {
    const host = this.options.host ?? '127.0.0.1';
    const plain = this.socket;
    plain.removeAllListeners('data');
    const secure = tlsConnect({ socket: plain, ...tlsDefaults(host), ...tls });
    this.socket = secure;
    this.attach(secure);
    await new Promise<void>((resolve, reject) => {
      secure.once('secureConnect', resolve);
      secure.once('error', reject);
    });
    return secure;
  }

  /** AUTH PLAIN (initial response) or LOGIN (two challenges). Returns the final reply. */
  async auth(username: string, password: string, mechanism: 'PLAIN' | 'LOGIN' = 'PLAIN'): Promise<Reply> {
    if (mechanism === 'PLAIN') {
      return this.command(`AUTH PLAIN ${Buffer.from(`\0${username}\0${password}`).toString('base64')}`);
    }
    const first = await this.command('AUTH LOGIN');
    if (first.code !== 334) return first;
    const second = await this.command(Buffer.from(username).toString('base64'));
    if (second.code !== 334) return second;
    return this.command(Buffer.from(password).toString('base64'));
  }

  /** MAIL, RCPT…, DATA, the message (dot-stuffed here) and the final dot. Returns the final reply. */
  async sendMail(from: string, to: readonly string[], message: string): Promise<Reply> {
    for (const [line, want] of [[`MAIL FROM:<${from}>`, 250], ...to.map((rcpt) => [`RCPT TO:<${rcpt}>`, 250] as const)] as const) {
      const reply = await this.command(line);
      if (reply.code !== want) return reply;
    }
    const data = await this.command('DATA');
    if (data.code !== 354) return data;
    const body = message.replace(/\r?\n/g, '\r\n').replace(/^\./gm, '..');
    this.write(`${body}${body.endsWith('\r\n') ? '' : '\r\n'}.\r\n`);
    return this.read();
  }

  /** True once the server closed the connection. */
  get isClosed(): boolean {
    return this.ended;
  }

  /** Resolves when the server closes the connection; rejects after `timeoutMs`. */
  closed(timeoutMs = 5000): Promise<void> {
    if (this.ended) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`connection still open after ${timeoutMs} ms`)), timeoutMs);
      this.endWaiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  /** Any replies received and not yet read. */
  pending(): readonly Reply[] {
    return this.replies;
  }

  close(): void {
    this.socket.destroy();
  }
}

function tlsDefaults(host: string): ConnectionOptions {
  // No SNI for IP literals, as real clients do.
  return /^[\d.]+$|:/.test(host) ? {} : { servername: host };
}

/** The ladder, one rung at a time. */
export async function greeted(options: ClientOptions): Promise<SmtpTestClient> {
  return SmtpTestClient.connect(options);
}

export async function ehlo(options: ClientOptions): Promise<SmtpTestClient> {
  const client = await greeted(options);
  const reply = await client.ehlo();
  if (reply.code !== 250) throw new Error(`EHLO refused: ${reply.raw}`);
  return client;
}

export async function startTls(options: ClientOptions): Promise<SmtpTestClient> {
  const client = await ehlo(options);
  await client.startTls();
  const reply = await client.ehlo();
  if (reply.code !== 250) throw new Error(`EHLO after STARTTLS refused: ${reply.raw}`);
  return client;
}

export async function authenticated(
  options: ClientOptions & { username: string; password: string; mechanism?: 'PLAIN' | 'LOGIN' },
): Promise<SmtpTestClient> {
  const client = await startTls(options);
  const reply = await client.auth(options.username, options.password, options.mechanism);
  if (reply.code !== 235) throw new Error(`AUTH refused: ${reply.raw}`);
  return client;
}
