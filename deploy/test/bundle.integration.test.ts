/**
 * The container image's bundle, without Docker: scripts/bundle.sh builds it with
 * the Dockerfile's steps, and it is started as the image starts it: the image's
 * Node, an unprivileged user, a read-only root filesystem with only the TLS
 * folder writable (an emptyDir). It relays a message into a fake Cakemail API
 * run from the workspace, and holds no test tooling.
 */
import { execFile } from 'node:child_process';
import { chmod, chown, mkdtemp, readFile, readdir, readlink, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createFakeCakemail, createMailer, DEFAULT_SENDER, DEFAULT_USER, type FakeCakemail } from '@cakemail-smtp/testkit';
import { readyLine, root, run } from './helpers.js';

const exec = promisify(execFile);
const NOBODY = 65534;

let dir: string;
let bundle: string;
let node: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gw-bundle-'));
  // readable by anyone, as /app is in the image; writable by root only
  await chmod(dir, 0o755);
  await exec('bash', [join(root, 'scripts/bundle.sh'), dir], { cwd: root, maxBuffer: 16 << 20 });
  bundle = join(dir, 'bundle');
  node = join(dir, 'node/bin/node');
}, 600_000);

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** Every package folder in the bundle: `name` for each `node_modules/<name>` link or folder, at any depth of .pnpm. */
async function packagesIn(modules: string): Promise<Map<string, string[]>> {
  // name -> the packages that hold it in their node_modules
  const holders = new Map<string, string[]>();
  const add = (name: string, holder: string): void => {
    holders.set(name, [...(holders.get(name) ?? []), holder]);
  };
  const list = async (nm: string, holder: string): Promise<void> => {
    for (const entry of await readdir(nm, { withFileTypes: true })) {
      if (entry.name.startsWith('.')) continue;
      if (entry.name.startsWith('@')) {
        for (const scoped of await readdir(join(nm, entry.name))) add(`${entry.name}/${scoped}`, holder);
      } else add(entry.name, holder);
    }
  };
  await list(modules, '(top level)');
  for (const store of await readdir(join(modules, '.pnpm'))) {
    if (store === 'node_modules' || store === 'lock.yaml') continue;
    // e.g. smtp-server@3.21.6 or @cakemail-smtp+tls@file+...
    const owner = store.startsWith('@') ? store.slice(0, store.indexOf('@', 1)).replace('+', '/') : store.slice(0, store.indexOf('@'));
    await list(join(modules, '.pnpm', store, 'node_modules'), owner);
  }
  return holders;
}

describe('the production bundle', () => {
  it('holds the gateway and its production dependencies, and no test tooling', async () => {
    const pkg = JSON.parse(await readFile(join(bundle, 'package.json'), 'utf8')) as { name: string; dependencies: Record<string, string> };
    expect(pkg.name).toBe('@cakemail-smtp/gateway');
    const holders = await packagesIn(join(bundle, 'node_modules'));
    expect([...holders.keys()]).toContain('smtp-server');
    expect(holders.get('@cakemail-smtp/smtp-core')).toBeDefined();
    for (const tooling of ['@cakemail-smtp/testkit', 'vitest', 'vite', 'typescript', 'eslint', 'turbo', '@types/nodemailer']) {
      expect(holders.get(tooling), tooling).toBeUndefined();
    }
    // nodemailer is smtp-server's and mailparser's own dependency (they share its
    // address and MIME code); nothing of ours, and nothing at the top, pulls it in
    const nodemailerHolders = new Set((holders.get('nodemailer') ?? []).filter((h) => h !== 'nodemailer'));
    expect([...nodemailerHolders].sort()).toEqual(['mailparser', 'smtp-server']);
    expect(await readlink(join(bundle, 'node_modules/nodemailer')).catch(() => 'absent')).toBe('absent');
  });

  it('starts with the image Node as an unprivileged user on a read-only root, and relays a message', async () => {
    const version = (await exec(node, ['--version'])).stdout.trim();
    const dockerfile = await readFile(join(root, 'Dockerfile'), 'utf8');
    expect(dockerfile).toContain(`ARG NODE_VERSION=${version.slice(1)}`);

    const fake: FakeCakemail = createFakeCakemail();
    await fake.listen(0, '127.0.0.1');
    // the TLS folder: writable by the gateway's user, as an emptyDir would be
    const tls = join(dir, 'tls');
    await exec('mkdir', ['-p', tls]);
    await chown(tls, NOBODY, NOBODY);
    const script = [
      // a mount namespace of its own: the TLS folder stays writable, the rest read-only
      `mount --bind "$TLS_DIR" "$TLS_DIR"`,
      'mount -o remount,bind,ro /',
      'cd "$BUNDLE"',
      'exec setpriv --reuid=nobody --regid=nogroup --clear-groups "$NODE_BIN" --enable-source-maps dist/main.js start',
    ].join(' && ');
    const gateway = run('unshare', ['--mount', 'bash', '-c', script], {
      env: {
        PATH: process.env['PATH'] ?? '',
        TLS_DIR: tls,
        BUNDLE: bundle,
        NODE_BIN: node,
        NODE_ENV: 'production',
        SMTP_HOST: '127.0.0.1',
        OPS_HOST: '127.0.0.1',
        SMTP_PORT: '0',
        SMTPS_PORT: '0',
        OPS_PORT: '0',
        SMTP_HOSTNAME: 'localhost',
        TLS_CERT_PATH: join(tls, 'tls.crt'),
        TLS_KEY_PATH: join(tls, 'tls.key'),
        CAKEMAIL_API_URL: fake.url,
      },
    });
    try {
      const ready = await gateway.waitFor(readyLine);
      expect(ready.upstream).toBe(fake.url);
      // unshare, bash and setpriv exec one another: the process is the gateway itself
      const ps = (await exec('ps', ['-o', 'user=,args=', '-p', String(gateway.child.pid)])).stdout.trim();
      expect(ps.split(/\s+/)).toEqual(['nobody', node, '--enable-source-maps', 'dist/main.js', 'start']);
      const health = await fetch(`http://127.0.0.1:${ready.opsPort}/health/ready`);
      expect(health.status).toBe(200);

      const ca = await readFile(join(tls, 'tls.crt'), 'utf8');
      const mailer = createMailer({ port: ready.smtpPort, host: '127.0.0.1', ca, auth: { user: DEFAULT_USER.email, pass: DEFAULT_USER.password } });
      const info = await mailer.sendMail({ from: DEFAULT_SENDER.email, to: 'someone@example.net', subject: 'from the bundle', text: 'Hello.' });
      mailer.close();
      expect(info.response).toMatch(/^250 2\.0\.0 /);
      expect(fake.sent().map((s) => s.body.content.subject)).toEqual(['from the bundle']);

      expect(await gateway.stop()).toBe(0);
      for (const line of gateway.stdout().trim().split('\n')) expect(() => JSON.parse(line), line).not.toThrow();
    } finally {
      await gateway.stop();
      await fake.close();
    }
  });

  it('refuses `dev` without CAKEMAIL_API_URL, since the fake Cakemail API is not in it', async () => {
    const dev = run(node, [join(bundle, 'dist/main.js'), 'dev'], {
      cwd: dir,
      env: { PATH: process.env['PATH'] ?? '', SMTP_PORT: '0', SMTPS_PORT: '0', OPS_PORT: '0' },
    });
    expect(await dev.exited).toBe(1);
    expect(dev.output()).toContain('development mode embeds the fake Cakemail API from @cakemail-smtp/testkit, which this install leaves out');
    expect(dev.output()).not.toMatch(/\n\s+at /);
  });
});
