/**
 * Development certificates: a self-signed RSA 2048 / SHA-256 certificate,
 * valid 365 days, not a CA, for the gateway's hostname and the loopback names.
 */
import { mkdir, writeFile, chmod, access } from 'node:fs/promises';
import { dirname } from 'node:path';
import { generate } from 'selfsigned';
import type { CertificatePaths } from './certificate.js';

export interface SelfSignedOptions {
  /** The CN, and a SAN with its wildcard. */
  readonly hostname: string;
  /** Validity in days. Default 365. */
  readonly days?: number;
}

export interface SelfSignedPem {
  readonly cert: string;
  readonly key: string;
}

/** The SAN list: hostname, *.hostname, localhost, 127.0.0.1 and ::1 (deduplicated). */
export function devAltNames(hostname: string): Array<{ type: 2; value: string } | { type: 7; ip: string }> {
  const dns = [...new Set([hostname, `*.${hostname}`, 'localhost'])].filter((name) => name && !isIp(name));
  return [...dns.map((value) => ({ type: 2 as const, value })), { type: 7, ip: '127.0.0.1' }, { type: 7, ip: '::1' }];
}

function isIp(name: string): boolean {
  return /^[\d.]+$/.test(name) || name.includes(':');
}

export async function generateSelfSigned(options: SelfSignedOptions): Promise<SelfSignedPem> {
  const notBeforeDate = new Date(Date.now() - 60_000);
  const notAfterDate = new Date(notBeforeDate.getTime() + (options.days ?? 365) * 86_400_000);
  const pems = await generate([{ name: 'commonName', value: options.hostname }], {
    keyType: 'rsa',
    keySize: 2048,
    algorithm: 'sha256',
    notBeforeDate,
    notAfterDate,
    extensions: [
      { name: 'basicConstraints', cA: false, critical: true },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
      { name: 'extKeyUsage', serverAuth: true },
      { name: 'subjectAltName', altNames: devAltNames(options.hostname) },
    ],
  });
  return { cert: pems.cert, key: pems.private };
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * Makes sure a certificate pair exists at `paths`. When both files exist they
 * are left alone (and checked later by loadCertificatePair). When either is
 * missing a self-signed pair is written, the key with mode 0600, directories
 * created. Returns true when it generated one.
 */
export async function ensureSelfSigned(paths: CertificatePaths, options: SelfSignedOptions): Promise<boolean> {
  const [haveCert, haveKey] = await Promise.all([exists(paths.certPath), exists(paths.keyPath)]);
  if (haveCert && haveKey) return false;
  const pem = await generateSelfSigned(options);
  await mkdir(dirname(paths.keyPath), { recursive: true, mode: 0o700 });
  await mkdir(dirname(paths.certPath), { recursive: true, mode: 0o755 });
  await writeFile(paths.keyPath, pem.key, { mode: 0o600 });
  await chmod(paths.keyPath, 0o600);
  await writeFile(paths.certPath, pem.cert, { mode: 0o644 });
  return true;
}
