/**
 * Per-run certificates for localhost, 127.0.0.1 and ::1 (aiosmtpd's trustme
 * pattern): generated once per test process into a temporary folder.
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateSelfSigned } from '@cakemail-smtp/tls';

export interface TestCertificates {
  readonly cert: string;
  readonly key: string;
  /** What a client trusts: the self-signed certificate itself. */
  readonly ca: string;
  readonly dir: string;
  readonly certPath: string;
  readonly keyPath: string;
}

let cached: Promise<TestCertificates> | undefined;

async function make(hostname: string): Promise<TestCertificates> {
  const { cert, key } = await generateSelfSigned({ hostname });
  const dir = await mkdtemp(join(tmpdir(), 'smtp-gateway-certs-'));
  const certPath = join(dir, 'tls.crt');
  const keyPath = join(dir, 'tls.key');
  await writeFile(certPath, cert);
  await writeFile(keyPath, key, { mode: 0o600 });
  return { cert, key, ca: cert, dir, certPath, keyPath };
}

/** The run's certificate for `localhost` (cached per process). */
export function testCertificates(): Promise<TestCertificates> {
  cached ??= make('localhost');
  return cached;
}

/** A fresh certificate, e.g. to test rotation. */
export function freshCertificates(hostname = 'localhost'): Promise<TestCertificates> {
  return make(hostname);
}

/**
 * The gateway's environment for a test or bench run on loopback: every
 * listener on 127.0.0.1 and port 0, the run's certificate.
 */
export function loopbackGatewayEnv(certs: TestCertificates): Record<string, string> {
  return {
    SMTP_HOST: '127.0.0.1',
    SMTP_PORT: '0',
    SMTPS_PORT: '0',
    SMTP_HOSTNAME: 'localhost',
    OPS_HOST: '127.0.0.1',
    OPS_PORT: '0',
    TLS_CERT_PATH: certs.certPath,
    TLS_KEY_PATH: certs.keyPath,
  };
}
