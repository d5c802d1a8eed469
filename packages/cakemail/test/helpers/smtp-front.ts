// The relay behind a real SMTP listener (smtp-core, STARTTLS on 127.0.0.1 with a test certificate),
// and a queue on a test Redis: what the queue-mode tests over the wire share.
import { randomBytes } from 'node:crypto';
import { Registry } from 'prom-client';
import { openQueue, type MessageQueue } from '@cakemail-smtp/queue';
import { createMemoryAuthLimiter, createSmtpServer, type AuthLimiter, type Backend, type SmtpServer } from '@cakemail-smtp/smtp-core';
import { serverTlsSettings } from '@cakemail-smtp/tls';
import { createMailer, DEFAULT_SENDER, DEFAULT_USER, testCertificates } from '@cakemail-smtp/testkit';
import type { QueuedBody, QueuedSession } from '../../src/relay/queue.js';

export interface SmtpFront {
  readonly port: number;
  /** The CA that signed the listener's certificate. */
  readonly ca: string;
  close(): Promise<void>;
}

/** Listens on a free port in front of `backend`, with generous limits. */
export async function startSmtpFront(backend: Backend): Promise<SmtpFront> {
  const certs = await testCertificates();
  const limiter: AuthLimiter = createMemoryAuthLimiter({ pairLimit: 10, ipLimit: 30, windowMs: 60_000 });
  const smtp: SmtpServer = createSmtpServer({
    hostname: 'gateway.test',
    greeting: 'Cakemail SMTP gateway',
    host: '127.0.0.1',
    port: 0,
    securePort: null,
    tls: { current: () => ({ cert: certs.cert, key: certs.key }), onChange: () => () => undefined },
    tlsSettings: serverTlsSettings,
    backend,
    limits: {
      maxMessageSize: 10_485_760,
      maxRecipients: 100,
      idleTimeoutMs: 60_000,
      handshakeTimeoutMs: 10_000,
      maxConnections: 0,
      maxConnectionsPerIp: 20,
      sessionMaxMs: 0,
      maxMessagesPerSession: 100,
      maxJunkCommands: 50,
      maxAuthFailures: 3,
      maxUnauthenticatedCommands: 10,
      bareLf: 'normalize',
      maxInflightBytes: 0,
      closeTimeoutMs: 500,
      maxReplyWaitMs: 0,
    },
    authLimiter: limiter,
  });
  const { port } = await smtp.listen();
  return {
    port,
    ca: certs.ca,
    async close() {
      await smtp.close();
      await limiter.close();
    },
  };
}

/** A queue of its own (a random name) on `redisUrl`, retrying fast: 100 ms, then up to 400 ms. */
export function openTestQueue(redisUrl: string, maxAgeMs: number, maxBytes = 0): Promise<MessageQueue<QueuedBody, QueuedSession>> {
  return openQueue<QueuedBody, QueuedSession>({
    redisUrl,
    keys: randomBytes(32).toString('base64'),
    maxBytes,
    retryBaseMs: 100,
    retryMaxMs: 400,
    maxAgeMs,
    name: `q${randomBytes(4).toString('hex')}`,
    register: new Registry(),
  });
}

export type Sent = { response: string } | { responseCode: number; response: string };

/** One message through `front` with nodemailer: the final reply, a refusal included. */
export async function sendThrough(front: SmtpFront, message: { to: string[]; subject: string; text: string }, pass: string = DEFAULT_USER.password): Promise<Sent> {
  const mailer = createMailer({ port: front.port, ca: front.ca, auth: { user: DEFAULT_USER.email, pass } });
  try {
    const info = await mailer.sendMail({ from: DEFAULT_SENDER.email, ...message });
    return { response: info.response };
  } catch (err) {
    const e = err as { responseCode?: number; response?: string };
    if (e.responseCode === undefined) throw err;
    return { responseCode: e.responseCode, response: e.response ?? '' };
  } finally {
    mailer.close();
  }
}
