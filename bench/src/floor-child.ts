/**
 * Child process: the floor of a relay, the least work any relay to this API must do. The bare
 * smtp-server library with the gateway's TLS settings and certificate and AUTH PLAIN/LOGIN; it
 * collects the message, then makes one JSON `POST /v2/emails` per recipient through an undici
 * Pool (FLOOR_CONNECTIONS, the gateway's CAKEMAIL_CONNECTIONS default) with a minimal body (the
 * raw message as the text), and answers 250 with Cakemail's ids. No MIME parse, no logging, no
 * checks.
 *
 * Per login, once (at its first AUTH, then cached, as the gateway caches a login): the token
 * (`POST /token`), a confirmed sender and the "SMTP Gateway" list (found or created). The
 * library's 100 ms wait before the greeting is left out, as the gateway leaves it out: it is a
 * timer, not work, and would cap S2's sessions/s.
 */
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { SMTPServer, type SMTPServerOptions, type SMTPServerSession } from 'smtp-server';
import { SMTPConnection } from 'smtp-server/lib/smtp-connection.js';
import { Pool } from 'undici';
import { baselineOptions } from './baseline-options.js';
import { exitWithParent, sendToParent } from './ipc.js';

exitWithParent();
const env = process.env;
const api = new URL(env['CAKEMAIL_API_URL'] ?? 'http://127.0.0.1:1');
// the gateway's CAKEMAIL_CONNECTIONS default, which run.ts reads from the gateway's config
const connections = Number(env['FLOOR_CONNECTIONS']);
if (!Number.isInteger(connections) || connections < 1) throw new Error('floor: FLOOR_CONNECTIONS must be a positive integer');
const pool = new Pool(api.origin, {
  connections,
  keepAliveTimeout: 30_000,
  keepAliveMaxTimeout: 120_000,
});
const LIST_NAME = 'SMTP Gateway';

interface Login {
  readonly token: string;
  readonly senderId: string;
  readonly listId: number;
}

async function call(method: 'GET' | 'POST', path: string, body?: { form?: Record<string, string>; json?: unknown }, token?: string): Promise<{ status: number; json: unknown }> {
  const headers: Record<string, string> = {};
  let payload: string | undefined;
  if (token) headers['authorization'] = `Bearer ${token}`;
  if (body?.form) {
    headers['content-type'] = 'application/x-www-form-urlencoded';
    payload = new URLSearchParams(body.form).toString();
  } else if (body?.json !== undefined) {
    headers['content-type'] = 'application/json';
    payload = JSON.stringify(body.json);
  }
  const res = await pool.request({ method, path, headers, ...(payload === undefined ? {} : { body: payload }) });
  return { status: res.statusCode, json: await res.body.json() };
}

type Json = Record<string, unknown>;

async function login(username: string, password: string): Promise<Login> {
  const token = await call('POST', '/token', { form: { grant_type: 'password', username, password } });
  if (token.status !== 200) throw new Error(`token: ${token.status}`);
  const access = String((token.json as Json)['access_token']);
  const senders = await call('GET', '/brands/default/senders?per_page=100', undefined, access);
  const sender = ((senders.json as Json)['data'] as Json[] | undefined)?.find((s) => s['confirmed'] === true);
  if (!sender) throw new Error('no confirmed sender');
  const senderId = String(sender['id']);
  const filter = encodeURIComponent(`name==${LIST_NAME}`);
  const lists = await call('GET', `/lists?filter=${filter}`, undefined, access);
  let listId = ((lists.json as Json)['data'] as Json[] | undefined)?.[0]?.['id'];
  if (typeof listId !== 'number') {
    const created = await call('POST', '/lists', { json: { name: LIST_NAME, default_sender: { id: senderId } } }, access);
    listId = ((created.json as Json)['data'] as Json | undefined)?.['id'] ?? (created.json as Json)['id'];
  }
  if (typeof listId !== 'number') throw new Error('no list');
  return { token: access, senderId, listId };
}

const logins = new Map<string, Promise<Login>>();

/** One POST per recipient; Cakemail's ids. */
async function relay(who: Login, session: SMTPServerSession, text: string): Promise<string[]> {
  return Promise.all(
    session.envelope.rcptTo.map(async ({ address }) => {
      const res = await call(
        'POST',
        '/v2/emails',
        { json: { email: address, list_id: who.listId, sender: { id: who.senderId }, content: { type: 'transactional', subject: 'floor', text } } },
        who.token,
      );
      if (res.status !== 200 && res.status !== 201) throw new Error(`send: ${res.status}`);
      return String(((res.json as Json)['data'] as Json | undefined)?.['id']);
    }),
  );
}

/** The library's connection without the 100 ms pre-greeting timer. */
class FloorConnection extends SMTPConnection {
  override init(): void {
    this._setListeners(() => this.connectionReady());
  }
}

class FloorServer extends SMTPServer {
  override connect(socket: Socket | TLSSocket, socketOptions?: object | null): void {
    const connection = new FloorConnection(this, socket, socketOptions as never);
    this.connections.add(connection);
    connection.on('error', (err: Error) => this._onError(err));
    connection.on('connect', (data: unknown) => this._onClientConnect(data as never));
    connection.init();
  }
}

const options: SMTPServerOptions = {
  ...baselineOptions(env),
  onAuth(auth, _session, callback) {
    const key = `${auth.username ?? ''}\0${auth.password ?? ''}`;
    let cached = logins.get(key);
    if (!cached) {
      cached = login(auth.username ?? '', auth.password ?? '');
      logins.set(key, cached);
      cached.catch(() => logins.delete(key));
    }
    cached.then(
      (who) => callback(null, { user: who }),
      () => callback(new Error('Invalid username or password')),
    );
  },
  onData(stream, session, callback) {
    const chunks: Buffer[] = [];
    let size = 0;
    stream.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      size += chunk.length;
    });
    stream.on('end', () => {
      const text = Buffer.concat(chunks, size).toString('utf8');
      relay(session.user as Login, session, text).then(
        (ids) => callback(null, `Ok: queued as ${ids.join(' ')}`),
        (err: unknown) => callback(Object.assign(new Error(`Upstream failed: ${err instanceof Error ? err.message : String(err)}`), { responseCode: 451 })),
      );
    });
  },
};
const server = new FloorServer(options);
server.on('error', () => {}); // failed handshakes, resets: not the floor's concern

server.listen(0, '127.0.0.1', () => {
  const address = server.server.address();
  sendToParent({ type: 'ready', port: typeof address === 'object' && address ? address.port : 0 });
});
process.once('SIGTERM', () => {
  server.close(() => void pool.close().finally(() => process.exit(0)));
  setTimeout(() => process.exit(0), 2000).unref();
});
