/**
 * Real external clients where a protocol detail matters: swaks and
 * openssl s_client (installed by .ci/run from Debian's packages).
 */
import { execFile } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PASSWORD, USER, startServer, type TestServer } from './helpers.js';

interface Run {
  code: number;
  out: string;
}

function run(cmd: string, args: string[], input = ''): Promise<Run> {
  return new Promise((resolve) => {
    const child = execFile(cmd, args, { timeout: 20_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, out: `${stdout}${stderr}` });
    });
    child.stdin?.end(input);
  });
}

let t: TestServer;
beforeAll(async () => {
  t = await startServer();
});
afterAll(async () => {
  await t.close();
});

const swaksBase = (port: number) => ['--server', '127.0.0.1', '--port', String(port), '--from', 'a@example.test', '--to', 'b@example.test', '--helo', 'swaks.test', '--timeout', '10'];

describe('swaks', () => {
  it('completes STARTTLS and is refused MAIL with 530 without AUTH', async () => {
    const { code, out } = await run('swaks', [...swaksBase(t.port), '-tls']);
    expect(out).toContain('<-  220 2.0.0 Ready to start TLS');
    expect(out).toMatch(/=== TLS started with cipher TLSv1\.3:TLS_\w+/);
    expect(out).toContain('<~* 530 5.7.0 Authentication required');
    expect(code).not.toBe(0);
  });

  it('delivers with STARTTLS and AUTH LOGIN', async () => {
    const before = t.rec.delivered.length;
    const { code, out } = await run('swaks', [...swaksBase(t.port), '-tls', '--auth', 'LOGIN', '--auth-user', USER, '--auth-password', PASSWORD]);
    expect(out).toContain('<~  235 2.7.0 Authentication successful');
    expect(out).toMatch(/<~ {2}250 2\.0\.0 Ok: queued as test-\d+/);
    expect(code).toBe(0);
    expect(t.rec.delivered.length).toBe(before + 1);
  });

  it('delivers over implicit TLS with AUTH PLAIN', async () => {
    const { code, out } = await run('swaks', [...swaksBase(t.securePort), '--tls-on-connect', '--auth', 'PLAIN', '--auth-user', USER, '--auth-password', PASSWORD]);
    expect(out).toMatch(/<~ {2}250 2\.0\.0 Ok: queued as test-\d+/);
    expect(code).toBe(0);
  });

  it('is refused AUTH in plaintext with 530 5.7.0', async () => {
    const { out } = await run('swaks', [...swaksBase(t.port), '--auth', 'PLAIN', '--auth-user', USER, '--auth-password', PASSWORD]);
    // AUTH is not advertised before TLS, so swaks does not even try
    expect(out).toMatch(/Host did not advertise authentication|530 5\.7\.0/);
    expect(t.rec.auths.filter((a) => a.password === PASSWORD && a.mechanism === 'PLAIN').length).toBeLessThanOrEqual(1);
  });
});

describe('openssl s_client', () => {
  const sClient = (port: number, starttls: boolean, extra: string[]) =>
    run('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, ...(starttls ? ['-starttls', 'smtp'] : []), '-brief', ...extra], 'QUIT\r\n');

  for (const [name, starttls] of [['587 STARTTLS', true], ['465 implicit', false]] as const) {
    it(`${name}: TLS 1.2 and 1.3 negotiate, forward-secret AEAD only`, async () => {
      const port = starttls ? t.port : t.securePort;
      const v12 = await sClient(port, starttls, ['-tls1_2']);
      expect(v12.out).toContain('Protocol version: TLSv1.2');
      expect(v12.out).toMatch(/Ciphersuite: ECDHE-RSA-(AES256-GCM-SHA384|CHACHA20-POLY1305|AES128-GCM-SHA256)/);
      const v13 = await sClient(port, starttls, ['-tls1_3']);
      expect(v13.out).toContain('Protocol version: TLSv1.3');
    });

    it(`${name}: TLS 1.1 and a static-RSA suite are refused`, async () => {
      const port = starttls ? t.port : t.securePort;
      const v11 = await sClient(port, starttls, ['-tls1_1', '-cipher', 'DEFAULT@SECLEVEL=0']);
      expect(v11.code).not.toBe(0);
      expect(v11.out).not.toContain('Protocol version: TLSv1.1');
      const rsa = await sClient(port, starttls, ['-tls1_2', '-cipher', 'AES256-GCM-SHA384']);
      expect(rsa.code).not.toBe(0);
      expect(rsa.out).not.toContain('Ciphersuite: AES256-GCM-SHA384');
    });
  }

  it('client-initiated renegotiation is refused', async () => {
    const { out } = await run('openssl', ['s_client', '-connect', `127.0.0.1:${t.securePort}`, '-tls1_2', '-brief'], 'R\n');
    expect(out).toMatch(/RENEGOTIATING/);
    expect(out).toMatch(/no renegotiation|alert|errno|error/i);
  });
});
