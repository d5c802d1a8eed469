/**
 * The ops HTTP server: liveness, readiness and metrics, on its own port so it
 * never shares a listener with mail.
 *
 * - `/health/live`: the process answers.
 * - `/health/ready`: listeners bound and TLS loaded, and not shutting down; 503 otherwise.
 * - `/metrics`: Prometheus text format.
 */
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';

export interface OpsServerOptions {
  readonly host: string;
  readonly port: number;
  readonly registry: Registry;
  /** Why the gateway is not ready, or undefined when it is. */
  readonly notReady: () => string | undefined;
}

export interface OpsServer {
  listen(): Promise<number>;
  close(): Promise<void>;
}

export function createOpsServer(options: OpsServerOptions): OpsServer {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const reply = (status: number, body: string, type = 'text/plain; charset=utf-8'): void => {
      res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
      res.end(body);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') return reply(405, 'method not allowed\n');
    if (path === '/health/live') return reply(200, 'ok\n');
    if (path === '/health/ready') {
      const reason = options.notReady();
      return reason ? reply(503, `not ready: ${reason}\n`) : reply(200, 'ready\n');
    }
    if (path === '/metrics') {
      options.registry.metrics().then(
        (text) => reply(200, text, options.registry.contentType),
        () => reply(500, 'metrics unavailable\n'),
      );
      return;
    }
    reply(404, 'not found\n');
  });
  server.keepAliveTimeout = 5000;
  return {
    async listen() {
      server.listen(options.port, options.host);
      await once(server, 'listening');
      return (server.address() as AddressInfo).port;
    },
    close: () =>
      new Promise((resolve) => {
        if (!server.listening) return resolve();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
