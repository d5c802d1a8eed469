/**
 * Reading and checking a PEM certificate/key pair. Every error names the path,
 * so an operator knows which mounted file is wrong.
 */
import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createSecureContext, type SecureContext } from 'node:tls';
import { serverTlsSettings } from './settings.js';

export interface CertificatePaths {
  readonly certPath: string;
  readonly keyPath: string;
}

/** A checked pair, ready to serve. */
export interface CertificatePair extends CertificatePaths {
  readonly cert: string;
  readonly key: string;
  /** The leaf certificate's expiry. */
  readonly notAfter: Date;
  readonly subject: string;
  readonly fingerprint256: string;
  /** A secure context built with the server's TLS settings. */
  readonly context: SecureContext;
}

export class CertificateError extends Error {
  override readonly name = 'CertificateError';
  constructor(
    message: string,
    readonly path: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

async function readPem(path: string, what: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'unknown error';
    throw new CertificateError(`cannot read TLS ${what} at ${path}: ${code}`, path, { cause: err });
  }
}

/** Checks PEM text and builds the pair; throws CertificateError naming the path at fault. */
export function parseCertificatePair(paths: CertificatePaths, cert: string, key: string): CertificatePair {
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(cert);
  } catch (err) {
    throw new CertificateError(`TLS certificate at ${paths.certPath} is not a valid PEM certificate`, paths.certPath, {
      cause: err,
    });
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(key);
  } catch (err) {
    throw new CertificateError(`TLS key at ${paths.keyPath} is not a valid PEM private key`, paths.keyPath, {
      cause: err,
    });
  }
  if (!leaf.checkPrivateKey(privateKey)) {
    throw new CertificateError(
      `TLS key at ${paths.keyPath} does not match the certificate at ${paths.certPath}`,
      paths.keyPath,
    );
  }
  let context: SecureContext;
  try {
    context = createSecureContext({ ...serverTlsSettings, cert, key });
  } catch (err) {
    throw new CertificateError(`TLS pair at ${paths.certPath} cannot be used: ${(err as Error).message}`, paths.certPath, {
      cause: err,
    });
  }
  return {
    certPath: paths.certPath,
    keyPath: paths.keyPath,
    cert,
    key,
    notAfter: new Date(leaf.validTo),
    subject: leaf.subject,
    fingerprint256: leaf.fingerprint256,
    context,
  };
}

/** Reads both files and checks that they form a usable pair. */
export async function loadCertificatePair(paths: CertificatePaths): Promise<CertificatePair> {
  const [cert, key] = await Promise.all([readPem(paths.certPath, 'certificate'), readPem(paths.keyPath, 'key')]);
  return parseCertificatePair(paths, cert, key);
}
