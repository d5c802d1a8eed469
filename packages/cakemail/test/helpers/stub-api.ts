// A bare HTTP stub for the client's own tests: real socket, port 0, every request recorded, each
// answer scripted by the test, raw (a reset socket, a body off the spec, a sequence of statuses).
// It holds no state and no seed data: the stateful fake Cakemail is the testkit's.
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';

export interface StubRequest {
  readonly method: string;
  readonly path: string;
  readonly query: URLSearchParams;
  readonly headers: IncomingMessage['headers'];
  readonly body: string;
  json<T = unknown>(): T;
  form(): URLSearchParams;
}

export interface StubAnswer {
  readonly status: number;
  readonly json?: unknown;
  readonly headers?: Record<string, string>;
  /** Destroy the socket without answering (a connection reset). */
  readonly reset?: boolean;
  /** Wait this long before answering. */
  readonly delayMs?: number;
}

export interface Stub {
  readonly url: string;
  readonly calls: StubRequest[];
  handler: (req: StubRequest) => StubAnswer | Promise<StubAnswer>;
  close(): Promise<void>;
}

export async function startStub(handler: Stub['handler']): Promise<Stub> {
  const calls: StubRequest[] = [];
  const stub: Stub = {
    url: '',
    calls,
    handler,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://stub');
      const body = Buffer.concat(chunks).toString('utf8');
      const r: StubRequest = {
        method: req.method ?? '',
        path: url.pathname,
        query: url.searchParams,
        headers: req.headers,
        body,
        json: <T>() => JSON.parse(body) as T,
        form: () => new URLSearchParams(body),
      };
      calls.push(r);
      void Promise.resolve(stub.handler(r)).then(async (a) => {
        if (a.delayMs) await new Promise((ok) => setTimeout(ok, a.delayMs));
        if (a.reset) {
          req.socket.destroy();
          return;
        }
        if (res.destroyed) return;
        res.writeHead(a.status, { 'content-type': 'application/json', ...a.headers });
        Readable.from([a.json === undefined ? '' : JSON.stringify(a.json)]).pipe(res);
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  (stub as { url: string }).url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return stub;
}

export const okToken = (accounts: number[] = [1], access = 'access-1', expiresIn = 3600): StubAnswer => ({
  status: 200,
  json: { access_token: access, token_type: 'bearer', expires_in: expiresIn, refresh_token: `refresh-${access}`, accounts },
});
