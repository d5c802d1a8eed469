import { X509Certificate, createPrivateKey } from 'node:crypto';
import { mkdtemp, readFile, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadCertificatePair, CertificateError } from '../src/certificate.js';
import { ensureSelfSigned } from '../src/index.js';

async function tempPaths() {
  const dir = await mkdtemp(join(tmpdir(), 'tls-test-'));
  return { dir, certPath: join(dir, 'nested', 'tls.crt'), keyPath: join(dir, 'nested', 'private', 'tls.key') };
}

describe('ensureSelfSigned', () => {
  it('writes an RSA 2048 SHA-256 leaf for the hostname and loopback names, key 0600', async () => {
    const paths = await tempPaths();
    expect(await ensureSelfSigned(paths, { hostname: 'mail.example.test' })).toBe(true);

    const cert = new X509Certificate(await readFile(paths.certPath));
    expect(cert.subject).toBe('CN=mail.example.test');
    expect(cert.ca).toBe(false);
    expect(cert.subjectAltName).toBe(
      'DNS:mail.example.test, DNS:*.mail.example.test, DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1',
    );
    const days = (Date.parse(cert.validTo) - Date.parse(cert.validFrom)) / 86_400_000;
    expect(days).toBe(365);
    expect(cert.checkHost('localhost')).toBe('localhost');
    expect(cert.checkIP('127.0.0.1')).toBe('127.0.0.1');
    expect(cert.checkIP('::1')).toBe('::1');
    const key = createPrivateKey(await readFile(paths.keyPath));
    expect(key.asymmetricKeyType).toBe('rsa');
    expect(key.asymmetricKeyDetails?.modulusLength).toBe(2048);
    expect(cert.publicKey.asymmetricKeyDetails?.modulusLength).toBe(2048);
    // SHA-256 with RSA: OID 1.2.840.113549.1.1.11 in the DER.
    expect(cert.raw.includes(Buffer.from('2a864886f70d01010b', 'hex'))).toBe(true);
    expect((await stat(paths.keyPath)).mode & 0o777).toBe(0o600);
  });

  it('reuses existing files', async () => {
    const paths = await tempPaths();
    await ensureSelfSigned(paths, { hostname: 'a.test' });
    const before = await readFile(paths.certPath, 'utf8');
    expect(await ensureSelfSigned(paths, { hostname: 'b.test' })).toBe(false);
    expect(await readFile(paths.certPath, 'utf8')).toBe(before);
  });
});

describe('loadCertificatePair', () => {
  it('loads a good pair and exposes its expiry', async () => {
    const paths = await tempPaths();
    await ensureSelfSigned(paths, { hostname: 'a.test' });
    const pair = await loadCertificatePair(paths);
    expect(pair.notAfter.getTime()).toBeGreaterThan(Date.now() + 364 * 86_400_000);
  });

  it('names the key path when the key does not match the certificate', async () => {
    const a = await tempPaths();
    const b = await tempPaths();
    await ensureSelfSigned(a, { hostname: 'a.test' });
    await ensureSelfSigned(b, { hostname: 'b.test' });
    const err = await loadCertificatePair({ certPath: a.certPath, keyPath: b.keyPath }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CertificateError);
    expect((err as Error).message).toContain(b.keyPath);
    expect((err as Error).message).toContain('does not match');
  });

  it('names the path of a missing or garbage file', async () => {
    const paths = await tempPaths();
    const missing = await loadCertificatePair(paths).catch((e: unknown) => e);
    expect((missing as Error).message).toMatch(/cannot read TLS (certificate|key) at .*ENOENT/);

    await ensureSelfSigned(paths, { hostname: 'a.test' });
    await writeFile(paths.certPath, 'not a certificate');
    const garbage = await loadCertificatePair(paths).catch((e: unknown) => e);
    expect((garbage as CertificateError).path).toBe(paths.certPath);
    expect((garbage as Error).message).toContain(paths.certPath);
  });
});
