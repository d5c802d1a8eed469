import { mkdtemp, mkdir, rename, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createCertificateReloader, generateSelfSigned, type CertificateReloader, type Logger } from '../src/index.js';

/** Lays out a Secret volume the way kubelet does: files are symlinks through `..data`. */
async function secretVolume() {
  const root = await mkdtemp(join(tmpdir(), 'secret-'));
  let generation = 0;
  async function publish(cert: string, key: string) {
    const dir = join(root, `..gen${++generation}`);
    await mkdir(dir);
    await writeFile(join(dir, 'tls.crt'), cert);
    await writeFile(join(dir, 'tls.key'), key, { mode: 0o600 });
    await symlink(`..gen${generation}`, join(root, '..data_tmp'));
    await rename(join(root, '..data_tmp'), join(root, '..data')); // atomic swap
  }
  return { root, publish, certPath: join(root, 'tls.crt'), keyPath: join(root, 'tls.key') };
}

const logs: Array<{ level: string; msg: string }> = [];
const logger: Logger = {
  child: () => logger,
  debug: (_: object, msg?: string) => logs.push({ level: 'debug', msg: msg ?? '' }),
  info: (_: object, msg?: string) => logs.push({ level: 'info', msg: msg ?? '' }),
  warn: (_: object, msg?: string) => logs.push({ level: 'warn', msg: msg ?? '' }),
  error: (_: object, msg?: string) => logs.push({ level: 'error', msg: msg ?? '' }),
};

let reloader: CertificateReloader | undefined;
afterEach(() => {
  reloader?.close();
  logs.length = 0;
});

describe('createCertificateReloader', () => {
  it('takes a renewed pair swapped in through the ..data symlink', async () => {
    const vol = await secretVolume();
    const first = await generateSelfSigned({ hostname: 'one.test' });
    await vol.publish(first.cert, first.key);
    await symlink('..data/tls.crt', vol.certPath);
    await symlink('..data/tls.key', vol.keyPath);

    reloader = await createCertificateReloader({ ...vol, pollIntervalMs: 0, logger });
    expect(reloader.current().subject).toBe('CN=one.test');
    const changed = new Promise((resolve) => reloader?.onChange(resolve));

    const second = await generateSelfSigned({ hostname: 'two.test' });
    await vol.publish(second.cert, second.key);
    await changed; // the directory watcher saw the swap
    expect(reloader.current().subject).toBe('CN=two.test');
    expect(logs).toContainEqual({ level: 'info', msg: 'TLS certificate reloaded' });
  });

  it('refuses a broken new pair and keeps serving the old one', async () => {
    const vol = await secretVolume();
    const good = await generateSelfSigned({ hostname: 'good.test' });
    const other = await generateSelfSigned({ hostname: 'other.test' });
    await vol.publish(good.cert, good.key);
    await symlink('..data/tls.crt', vol.certPath);
    await symlink('..data/tls.key', vol.keyPath);
    reloader = await createCertificateReloader({ ...vol, pollIntervalMs: 0, logger });

    await vol.publish(good.cert, other.key); // mismatched
    expect(await reloader.check()).toBe(false);
    expect(reloader.current().subject).toBe('CN=good.test');
    expect(logs.filter((l) => l.level === 'error')).toHaveLength(1);
    expect(await reloader.check()).toBe(false);
    expect(logs.filter((l) => l.level === 'error')).toHaveLength(1); // logged once, not at every poll

    // the directory watcher may pick the good pair up before this check does: either way it is served
    const changed = new Promise((resolve) => reloader?.onChange(resolve));
    await vol.publish(other.cert, other.key);
    await reloader.check();
    await changed;
    expect(reloader.current().subject).toBe('CN=other.test');
  });

  it('polls when no watcher event arrives', async () => {
    const vol = await secretVolume();
    const first = await generateSelfSigned({ hostname: 'one.test' });
    await writeFile(vol.certPath, first.cert);
    await writeFile(vol.keyPath, first.key);
    reloader = await createCertificateReloader({ ...vol, pollIntervalMs: 50, logger });
    const second = await generateSelfSigned({ hostname: 'two.test' });
    const changed = new Promise((resolve) => reloader?.onChange(resolve));
    await writeFile(vol.keyPath, second.key);
    await writeFile(vol.certPath, second.cert);
    await changed;
    expect(reloader.current().subject).toBe('CN=two.test');
  });
});
