/**
 * The STARTTLS client harness on nodemailer: a transport that must upgrade
 * (requireTLS), verifies the server against the run's certificate, and logs in.
 */
import nodemailer, { type Transporter } from 'nodemailer';
import type SMTPTransport from 'nodemailer/lib/smtp-transport/index.js';

export interface MailerOptions {
  readonly port: number;
  readonly host?: string;
  /** Implicit TLS (465 style) instead of STARTTLS. */
  readonly secure?: boolean;
  /** PEM the client trusts. */
  readonly ca: string;
  readonly auth?: { readonly user: string; readonly pass: string; readonly method?: 'PLAIN' | 'LOGIN' };
  readonly pool?: boolean | { readonly maxConnections: number };
  /** Extra TLS options, e.g. `{ maxVersion: 'TLSv1.2' }`. */
  readonly tls?: Record<string, unknown>;
}

export function createMailer(options: MailerOptions): Transporter<SMTPTransport.SentMessageInfo> {
  const pool = options.pool === undefined || options.pool === false ? {} : { pool: true as const, maxConnections: typeof options.pool === 'object' ? options.pool.maxConnections : 5 };
  return nodemailer.createTransport({
    host: options.host ?? 'localhost',
    port: options.port,
    secure: options.secure ?? false,
    requireTLS: !options.secure,
    ignoreTLS: false,
    tls: { ca: options.ca, servername: 'localhost', ...options.tls },
    ...(options.auth ? { auth: { user: options.auth.user, pass: options.auth.pass }, authMethod: options.auth.method ?? 'PLAIN' } : {}),
    // The whole set-up (connect, greeting, STARTTLS): tests open tens of TLS sessions at once on
    // a shared 2-core machine, where 5 s was exceeded; a server that never answers still fails.
    connectionTimeout: 20_000,
    greetingTimeout: 20_000,
    socketTimeout: 15_000,
    ...pool,
  } as SMTPTransport.Options);
}
