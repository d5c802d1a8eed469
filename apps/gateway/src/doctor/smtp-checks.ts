/**
 * A running gateway checked as a client would: TLS (STARTTLS or implicit) with its protocol,
 * certificate chain, expiry and name; AUTH PLAIN with the login; MAIL FROM; QUIT without sending.
 */
import { checkServerIdentity, type PeerCertificate, type TLSSocket } from 'node:tls';
import { failed, passed, skipped, type Check } from './report.js';
import { Conversation, handshake, lastLine, tcp } from './smtp-conversation.js';

export interface SmtpCheckOptions {
  readonly host: string;
  readonly port: number;
  readonly tls: 'starttls' | 'implicit';
  readonly username: string;
  readonly password: string;
  readonly from: string | undefined;
  /** Extra trusted CA certificates (PEM), besides Node's. */
  readonly ca: string | undefined;
  readonly timeoutMs: number;
}

const DAY_MS = 86_400_000;

const SMTP_CHECKS = ['smtp:tls', 'smtp:chain', 'smtp:expiry', 'smtp:name', 'smtp:auth', 'smtp:mail'] as const;
type SmtpCheckId = (typeof SMTP_CHECKS)[number];
const LABELS: Readonly<Record<SmtpCheckId, string>> = {
  'smtp:tls': 'TLS',
  'smtp:chain': 'certificate chain',
  'smtp:expiry': 'certificate expiry',
  'smtp:name': 'certificate name',
  'smtp:auth': 'AUTH',
  'smtp:mail': 'MAIL FROM',
};

/** The certificate checks: chain, expiry, name. */
function certificateChecks(socket: TLSSocket, host: string): Check[] {
  const cert = socket.getPeerCertificate(true) as PeerCertificate & { issuerCertificate?: PeerCertificate };
  const checks: Check[] = [];
  const subject = cert.subject?.CN ?? '(no CN)';
  const issuer = cert.issuer?.CN ?? cert.issuer?.O ?? '(unknown)';
  const selfSigned = cert.fingerprint256 !== undefined && cert.issuerCertificate?.fingerprint256 === cert.fingerprint256;
  if (socket.authorized) {
    checks.push(passed('smtp:chain', `certificate chain: trusted (CN=${subject}, issued by ${issuer})`));
  } else {
    const why = String(socket.authorizationError ?? 'unknown');
    checks.push(
      failed(
        'smtp:chain',
        `certificate chain: not trusted: ${selfSigned || /SELF_SIGNED/.test(why) ? 'a self-signed certificate' : `issued by ${issuer}`} (${why})`,
        selfSigned || /SELF_SIGNED/.test(why)
          ? 'mount a CA-issued certificate (TLS_CERT_PATH, TLS_KEY_PATH); clients refuse a self-signed one unless told to trust it (--ca here)'
          : 'serve the full chain (the certificate followed by its intermediates) from a CA the clients trust, or pass that CA with --ca',
      ),
    );
  }
  const notAfter = new Date(cert.valid_to);
  const notBefore = new Date(cert.valid_from);
  const days = Math.floor((notAfter.getTime() - Date.now()) / DAY_MS);
  if (Number.isNaN(notAfter.getTime())) checks.push(failed('smtp:expiry', 'certificate expiry: unreadable', 'check the certificate file'));
  else if (notAfter.getTime() <= Date.now()) {
    checks.push(failed('smtp:expiry', `certificate expiry: expired on ${notAfter.toISOString()}`, 'renew the certificate; the gateway reloads it from TLS_CERT_PATH without a restart'));
  } else if (notBefore.getTime() > Date.now()) {
    checks.push(failed('smtp:expiry', `certificate expiry: not valid before ${notBefore.toISOString()}`, "check the host's clock and the certificate"));
  } else {
    checks.push(passed('smtp:expiry', `certificate expiry: valid until ${notAfter.toISOString()} (${days} days left)`));
  }
  const mismatch = checkServerIdentity(host, cert);
  const names = cert.subjectaltname ?? `CN=${subject}`;
  checks.push(
    mismatch === undefined
      ? passed('smtp:name', `certificate name: matches ${host} (${names})`)
      : failed('smtp:name', `certificate name: does not match ${host} (the certificate is for ${names})`, `connect with a name the certificate holds, or get a certificate for ${host}`),
  );
  return checks;
}

/** The checks of a running gateway; it never sends a message (QUIT after MAIL FROM). */
export async function checkSmtp(options: SmtpCheckOptions): Promise<Check[]> {
  const where = `${options.host}:${options.port}`;
  const checks: Check[] = [];
  let conversation: Conversation | undefined;
  const rest = (from: SmtpCheckId): Check[] => SMTP_CHECKS.slice(SMTP_CHECKS.indexOf(from)).map((id) => skipped(id, `${LABELS[id]}: not checked`));
  try {
    let secure: TLSSocket;
    try {
      if (options.tls === 'implicit') {
        secure = await handshake({ host: options.host, port: options.port, ca: options.ca, timeoutMs: options.timeoutMs });
        conversation = new Conversation(secure, options.timeoutMs);
        const greeting = await conversation.read();
        if (greeting.code !== 220) throw new Error(`greeting: ${lastLine(greeting)}`);
      } else {
        conversation = new Conversation(await tcp(options.host, options.port, options.timeoutMs), options.timeoutMs);
        const greeting = await conversation.read();
        if (greeting.code !== 220) throw new Error(`greeting: ${lastLine(greeting)}`);
        const ehlo = await conversation.command('EHLO smtp-gateway-doctor');
        if (ehlo.code !== 250) throw new Error(`EHLO: ${lastLine(ehlo)}`);
        if (!ehlo.lines.some((l) => /^250[- ]STARTTLS\b/i.test(l))) {
          checks.push(failed('smtp:tls', `TLS: ${where} does not offer STARTTLS`, 'is this the STARTTLS port (587)? For implicit TLS (465) use --tls implicit'));
          return [...checks, ...rest('smtp:chain')];
        }
        const go = await conversation.command('STARTTLS');
        if (go.code !== 220) throw new Error(`STARTTLS: ${lastLine(go)}`);
        secure = await conversation.upgrade({ host: options.host, port: options.port, ca: options.ca, timeoutMs: options.timeoutMs });
      }
    } catch (err) {
      checks.push(
        failed(
          'smtp:tls',
          `TLS: could not talk to ${where} (${err instanceof Error ? err.message : String(err)})`,
          `check that the gateway runs and listens on ${where}, and the --tls mode (starttls for 587, implicit for 465)`,
        ),
      );
      return [...checks, ...rest('smtp:chain')];
    }

    const protocol = secure.getProtocol() ?? 'unknown';
    const cipher = secure.getCipher().name;
    checks.push(
      protocol === 'TLSv1.2' || protocol === 'TLSv1.3'
        ? passed('smtp:tls', `TLS: ${protocol} with ${cipher} (${options.tls === 'implicit' ? 'implicit TLS' : 'STARTTLS'} on ${where})`)
        : failed('smtp:tls', `TLS: ${protocol} with ${cipher} is too old`, 'allow TLS 1.2 and 1.3 only'),
    );
    checks.push(...certificateChecks(secure, options.host));

    const ehlo = await conversation.command('EHLO smtp-gateway-doctor');
    if (ehlo.code !== 250) {
      checks.push(failed('smtp:auth', `AUTH: EHLO after TLS answered ${lastLine(ehlo)}`, 'see the gateway log'));
      return [...checks, ...rest('smtp:mail')];
    }
    // the credentials go on the wire only, never into a message or a log line
    const plain = Buffer.from(`\0${options.username}\0${options.password}`, 'utf8').toString('base64');
    const auth = await conversation.command(`AUTH PLAIN ${plain}`);
    if (auth.code !== 235) {
      checks.push(
        failed(
          'smtp:auth',
          `AUTH: the gateway refused ${options.username}: ${lastLine(auth)}`,
          auth.code >= 400 && auth.code < 500
            ? 'a temporary refusal: the gateway could not reach Cakemail or the login is locked out for a while; try again later'
            : 'the gateway asks Cakemail with the same login: see the login check above',
        ),
      );
      return [...checks, ...rest('smtp:mail')];
    }
    checks.push(passed('smtp:auth', `AUTH: ${options.username} logged in (${lastLine(auth)})`));

    if (options.from === undefined) {
      checks.push(skipped('smtp:mail', 'MAIL FROM: not checked (give --from <address>)'));
    } else {
      const mail = await conversation.command(`MAIL FROM:<${options.from}>`);
      checks.push(
        mail.code === 250
          ? passed('smtp:mail', `MAIL FROM:<${options.from}> accepted (${lastLine(mail)})`)
          : failed('smtp:mail', `MAIL FROM:<${options.from}> refused: ${lastLine(mail)}`, 'send from a confirmed sender of the account (see the senders check above)'),
      );
    }
    await conversation.command('QUIT').catch(() => undefined);
    return checks;
  } catch (err) {
    const done = new Set(checks.map((c) => c.id));
    const next = (['smtp:auth', 'smtp:mail'] as const).find((id) => !done.has(id)) ?? 'smtp:mail';
    checks.push(failed(next, `${LABELS[next]}: the conversation with ${where} failed (${err instanceof Error ? err.message : String(err)})`, 'see the gateway log'));
    return checks;
  } finally {
    conversation?.destroy();
  }
}
