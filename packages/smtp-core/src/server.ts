/**
 * createSmtpServer: two smtp-server listeners (STARTTLS and implicit TLS)
 * sharing one set of connection slots, one in-flight budget and one set of
 * session callbacks, bound and closed together.
 */
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import type { SecureContextOptions } from 'node:tls';
import { silentLogger, type Logger } from '@cakemail-smtp/tls';
import type { AuthLimiter } from './auth-limiter/index.js';
import { SessionCallbacks } from './callbacks.js';
import { ConnectionSlots } from './connection-slots.js';
import { Replies } from './errors.js';
import { watchConnectionErrors } from './handshake-errors.js';
import { InflightBudget } from './inflight.js';
import { AcceptingServer } from './library/accepting-server.js';
import type { GatewayServerOptions } from './library/connection.js';
import type { GatewayServer } from './library/server.js';
import { checkLimits, type SmtpLimits } from './limits.js';
import { noCount, type CountHook } from './metrics.js';
import { trustedPeers } from './proxy.js';
import type { Backend, Listener } from './session.js';
import { rotateCertificates, type TlsProvider } from './tls-rotation.js';

export interface SmtpServerOptions {
  /** The EHLO name, and the first word of the greeting. */
  readonly hostname: string;
  /** The greeting's text after the hostname: `220 <hostname> ESMTP <greeting>`. */
  readonly greeting: string;
  readonly host: string;
  /** STARTTLS listener; 0 picks a free port. */
  readonly port: number;
  /** Implicit-TLS listener; `null` disables it, 0 picks a free port. */
  readonly securePort: number | null;
  readonly tls: TlsProvider;
  /** Protocol versions, ciphers, options (@cakemail-smtp/tls's serverTlsSettings). */
  readonly tlsSettings: SecureContextOptions;
  readonly backend: Backend;
  readonly logger?: Logger;
  readonly count?: CountHook;
  readonly limits: SmtpLimits;
  /** Failed logins across connections (brute force). The caller closes it. */
  readonly authLimiter: AuthLimiter;
  /**
   * PROXY protocol: connections from these CIDRs (`10.0.0.0/8`, `fd00::/8`, or
   * one address) must start with a v1 or v2 header, whose source address is
   * then the client's. Others are served as themselves. Off when absent.
   */
  readonly proxyTrustedCidrs?: readonly string[];
}

export interface SmtpServer {
  /** Binds both listeners; resolves with the bound ports. */
  listen(): Promise<{ port: number; securePort: number | null }>;
  /** Stops accepting, lets sessions finish up to closeTimeoutMs, then closes the rest. */
  close(): Promise<void>;
  /** Open SMTP sessions across both listeners. */
  readonly connections: number;
  /** Message bytes held now (see SmtpLimits.maxInflightBytes). */
  readonly inflightBytes: number;
}

export function createSmtpServer(options: SmtpServerOptions): SmtpServer {
  const { limits } = options;
  checkLimits(limits);
  const logger = options.logger ?? silentLogger;
  const count = options.count ?? noCount;
  const slots = new ConnectionSlots(limits);
  const budget = new InflightBudget(limits.maxInflightBytes);
  const trustedProxies = options.proxyTrustedCidrs ? trustedPeers(options.proxyTrustedCidrs) : undefined;
  const callbacks = new SessionCallbacks({
    backend: options.backend,
    limits,
    logger,
    count,
    budget,
    slots,
    auth: { limiter: options.authLimiter, maxAuthFailures: limits.maxAuthFailures, count },
  });

  function build(listener: Listener): GatewayServer {
    const serverOptions: GatewayServerOptions = {
      ...options.tlsSettings,
      key: options.tls.current().key,
      cert: options.tls.current().cert,
      secure: listener === 'implicit',
      name: options.hostname,
      banner: options.greeting,
      logger: false,
      disableReverseLookup: true,
      hideENHANCEDSTATUSCODES: false,
      hideDSN: true,
      hideREQUIRETLS: true,
      authMethods: ['PLAIN', 'LOGIN'],
      authRequiredMessage: Replies.S530_AUTH_REQUIRED.text,
      size: limits.maxMessageSize,
      maxRecipients: limits.maxRecipients,
      socketTimeout: limits.idleTimeoutMs,
      closeTimeout: limits.closeTimeoutMs,
      maxReplyWaitMs: limits.maxReplyWaitMs,
      maxClients: limits.maxConnections || Infinity,
      handshakeTimeout: limits.handshakeTimeoutMs,
      maxJunkCommands: limits.maxJunkCommands,
      sessionMaxMs: limits.sessionMaxMs,
      maxAllowedUnauthenticatedCommands: limits.maxUnauthenticatedCommands,
      noDelay: true,
      hooks: {
        handshakeTimeout: () => count('tls_handshake_failure', 'timeout'),
        reset: (id) => callbacks.reset(id),
        limit: (reason) => count('limit', reason),
      },
      ...callbacks.forListener(listener),
    };
    const server = new AcceptingServer(serverOptions, {
      listener,
      slots,
      trustedProxies,
      proxyTimeoutMs: limits.handshakeTimeoutMs,
      logger,
      count,
    });
    watchConnectionErrors(server, listener, logger, count);
    return server;
  }

  const starttls = build('starttls');
  const implicit = options.securePort === null ? undefined : build('implicit');
  const servers = implicit ? [starttls, implicit] : [starttls];
  const unsubscribe = rotateCertificates(options.tls, options.tlsSettings, servers);

  async function bind(server: GatewayServer, port: number): Promise<number> {
    server.server.listen(port, options.host);
    await once(server.server, 'listening');
    return (server.server.address() as AddressInfo).port;
  }

  return {
    async listen() {
      const port = await bind(starttls, options.port);
      const securePort = implicit && options.securePort !== null ? await bind(implicit, options.securePort) : null;
      logger.info({ port, securePort, hostname: options.hostname }, 'SMTP listening');
      return { port, securePort };
    },
    async close() {
      unsubscribe();
      await Promise.all(
        servers.map(
          (server) =>
            new Promise<void>((resolve) => {
              if (!server.server.listening) return resolve();
              server.close(() => resolve());
            }),
        ),
      );
    },
    get connections() {
      return servers.reduce((sum, server) => sum + server.connections.size, 0);
    },
    get inflightBytes() {
      return budget.used;
    },
  };
}
