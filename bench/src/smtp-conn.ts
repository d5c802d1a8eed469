/**
 * The load generator's SMTP client: raw sockets, node:tls for STARTTLS, AUTH PLAIN, and MAIL,
 * RCPT and DATA sent in one write when the server advertises PIPELINING. Replies are parsed as
 * they arrive (multi-line included) and handed to waiters in order. No nodemailer: it tops out
 * near 1.9k messages/s here, below the servers under test.
 */
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';

export interface Reply {
  readonly code: number;
  /** The reply's lines, joined with LF. */
  readonly text: string;
}

export interface Target {
  readonly host: string;
  readonly port: number;
}

export interface Login {
  readonly user: string;
  readonly password: string;
}

export class SmtpError extends Error {
  constructor(
    readonly step: string,
    readonly reply: Reply | undefined,
  ) {
    super(`${step}: ${reply ? `${reply.code} ${reply.text}` : 'connection closed'}`);
  }
}

/** ms, from the monotonic clock. */
export const now = (): number => performance.now();

export class SmtpConnection {
  pipelining = false;
  closed = false;
  private socket: Socket | TLSSocket;
  private buffer = '';
  private multi = '';
  private readonly ready: Reply[] = [];
  private readonly waiters: Array<{ resolve: (reply: Reply) => void; reject: (err: Error) => void }> = [];
  private readonly onData = (chunk: Buffer): void => this.parse(chunk.toString('latin1'));
  private readonly onClose = (): void => this.fail(new SmtpError('read', undefined));

  private constructor(
    socket: Socket,
    private readonly timeoutMs: number,
  ) {
    this.socket = socket;
    this.attach(socket);
  }

  /** Connects and waits for the greeting; `greetingMs` runs from the connect call. */
  static async open(target: Target, options: { localAddress?: string; timeoutMs?: number } = {}): Promise<{ conn: SmtpConnection; greeting: Reply; greetingMs: number }> {
    const started = now();
    const socket = netConnect({ host: target.host, port: target.port, noDelay: true, ...(options.localAddress ? { localAddress: options.localAddress } : {}) });
    const conn = new SmtpConnection(socket, options.timeoutMs ?? 30_000);
    const greeting = await conn.read();
    const greetingMs = now() - started;
    if (greeting.code !== 220) throw new SmtpError('greeting', greeting);
    return { conn, greeting, greetingMs };
  }

  private attach(socket: Socket | TLSSocket): void {
    socket.on('data', this.onData);
    socket.on('close', this.onClose);
    socket.on('error', () => {}); // 'close' follows
    socket.setTimeout(this.timeoutMs, () => socket.destroy());
  }

  private parse(chunk: string): void {
    const data = this.buffer ? this.buffer + chunk : chunk;
    let start = 0;
    for (;;) {
      const end = data.indexOf('\r\n', start);
      if (end === -1) break;
      const line = data.slice(start, end);
      start = end + 2;
      if (line.charCodeAt(3) === 0x2d /* - */) {
        this.multi += `${line}\n`;
        continue;
      }
      const reply: Reply = { code: Number(line.slice(0, 3)), text: this.multi ? this.multi + line : line };
      this.multi = '';
      const waiter = this.waiters.shift();
      if (waiter) waiter.resolve(reply);
      else this.ready.push(reply);
    }
    this.buffer = start === data.length ? '' : data.slice(start);
  }

  private fail(err: Error): void {
    this.closed = true;
    for (const waiter of this.waiters.splice(0)) waiter.reject(err);
  }

  read(): Promise<Reply> {
    const reply = this.ready.shift();
    if (reply) return Promise.resolve(reply);
    if (this.closed) return Promise.reject(new SmtpError('read', undefined));
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  write(data: string | Buffer): void {
    this.socket.write(data);
  }

  async command(line: string, expect: number, step = line.split(' ')[0] ?? line): Promise<Reply> {
    this.socket.write(`${line}\r\n`);
    const reply = await this.read();
    if (reply.code !== expect) throw new SmtpError(step, reply);
    return reply;
  }

  async ehlo(): Promise<void> {
    const reply = await this.command('EHLO bench.example', 250);
    this.pipelining = /^250[- ]PIPELINING$/im.test(reply.text);
  }

  /** STARTTLS, the handshake, and the EHLO again. */
  async startTls(): Promise<void> {
    await this.command('STARTTLS', 220);
    const raw = this.socket;
    raw.removeListener('data', this.onData);
    raw.removeListener('close', this.onClose);
    raw.setTimeout(0);
    const secure = tlsConnect({ socket: raw, servername: 'localhost', rejectUnauthorized: false });
    await new Promise<void>((resolve, reject) => {
      secure.once('secureConnect', resolve);
      secure.once('error', reject);
      secure.once('close', () => reject(new SmtpError('tls', undefined)));
    });
    this.socket = secure;
    this.buffer = '';
    this.attach(secure);
    await this.ehlo();
  }

  async auth(login: Login): Promise<void> {
    const token = Buffer.from(`\0${login.user}\0${login.password}`).toString('base64');
    await this.command(`AUTH PLAIN ${token}`, 235, 'AUTH');
  }

  /** The whole ladder: greeting, EHLO, STARTTLS, EHLO, AUTH. */
  static async ready(target: Target, login: Login | undefined, options: { localAddress?: string; timeoutMs?: number } = {}): Promise<SmtpConnection> {
    const { conn } = await SmtpConnection.open(target, options);
    await conn.ehlo();
    await conn.startTls();
    if (login) await conn.auth(login);
    return conn;
  }

  /**
   * One transaction. Returns the time the final dot was written and the final reply's arrival.
   * MAIL, RCPT and DATA go in one write when pipelining is on.
   */
  async send(from: string, to: string, message: Buffer): Promise<{ dotAt: number; doneAt: number; reply: Reply }> {
    const envelope = [`MAIL FROM:<${from}>\r\n`, `RCPT TO:<${to}>\r\n`, 'DATA\r\n'];
    const expected = [250, 250, 354];
    if (this.pipelining) {
      this.socket.write(envelope.join(''));
      const replies = [await this.read(), await this.read(), await this.read()];
      for (let i = 0; i < 3; i++) {
        if (replies[i]?.code !== expected[i]) throw new SmtpError(['MAIL', 'RCPT', 'DATA'][i] ?? '?', replies[i]);
      }
    } else {
      for (let i = 0; i < 3; i++) {
        this.socket.write(envelope[i] ?? '');
        const reply = await this.read();
        if (reply.code !== expected[i]) throw new SmtpError(['MAIL', 'RCPT', 'DATA'][i] ?? '?', reply);
      }
    }
    this.socket.write(message);
    const dotAt = now();
    const reply = await this.read();
    return { dotAt, doneAt: now(), reply };
  }

  /** QUIT, and the 221 (or the close). */
  async quit(): Promise<void> {
    if (this.closed) return;
    this.socket.write('QUIT\r\n');
    await this.read().catch(() => undefined);
    this.socket.end();
  }

  destroy(): void {
    this.closed = true;
    this.socket.destroy();
  }
}
