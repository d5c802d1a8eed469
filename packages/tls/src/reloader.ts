/**
 * Serves the current certificate pair and picks up new files without a
 * restart. cert-manager renews a Secret mounted as a volume by swapping the
 * `..data` symlink, so the directory is watched and, as a backstop (watchers
 * miss events on some volume types), polled. A new pair is checked before it is
 * used: a broken one is logged and refused, and the old pair keeps serving.
 * Sessions already open keep the context they negotiated.
 */
import { watch, type FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { loadCertificatePair, parseCertificatePair, type CertificatePair, type CertificatePaths } from './certificate.js';
import { silentLogger, type Logger } from './logger.js';

export interface CertificateReloaderOptions extends CertificatePaths {
  /** Backstop poll interval. Default 10 s; 0 turns polling off. */
  readonly pollIntervalMs?: number;
  readonly logger?: Logger;
}

export interface CertificateReloader {
  /** The pair new connections get. */
  current(): CertificatePair;
  /** Called with each new pair once it has been checked. Returns an unsubscribe function. */
  onChange(listener: (pair: CertificatePair) => void): () => void;
  /** Re-reads the files now. Resolves true when a new pair was taken. */
  check(): Promise<boolean>;
  close(): void;
}

/** Loads the pair (throwing CertificateError if it is unusable) and starts watching it. */
export async function createCertificateReloader(options: CertificateReloaderOptions): Promise<CertificateReloader> {
  const logger = options.logger ?? silentLogger;
  const paths: CertificatePaths = { certPath: options.certPath, keyPath: options.keyPath };
  let pair = await loadCertificatePair(paths);
  let refused = ''; // the last broken content, so it is logged once, not at every poll
  const listeners = new Set<(pair: CertificatePair) => void>();
  let checking: Promise<boolean> | undefined;
  let closed = false;

  async function readBoth(): Promise<[string, string] | undefined> {
    try {
      return await Promise.all([readFile(paths.certPath, 'utf8'), readFile(paths.keyPath, 'utf8')]);
    } catch (err) {
      // Mid-swap, or the Secret is gone: keep serving what we have.
      const code = (err as NodeJS.ErrnoException).code;
      if (refused !== `missing:${code}`) {
        refused = `missing:${code}`;
        logger.error({ certPath: paths.certPath, keyPath: paths.keyPath, code }, 'TLS files unreadable, keeping the current certificate');
      }
      return undefined;
    }
  }

  async function doCheck(): Promise<boolean> {
    const files = await readBoth();
    if (!files || closed) return false;
    const [cert, key] = files;
    if (cert === pair.cert && key === pair.key) return false;
    if (cert + key === refused) return false;
    let next: CertificatePair;
    try {
      next = parseCertificatePair(paths, cert, key);
    } catch (err) {
      refused = cert + key;
      logger.error(
        { certPath: paths.certPath, keyPath: paths.keyPath, reason: (err as Error).message },
        'new TLS certificate refused, keeping the current one',
      );
      return false;
    }
    refused = '';
    pair = next;
    logger.info(
      { subject: next.subject, notAfter: next.notAfter.toISOString(), fingerprint256: next.fingerprint256 },
      'TLS certificate reloaded',
    );
    for (const listener of listeners) listener(next);
    return true;
  }

  function check(): Promise<boolean> {
    checking ??= doCheck().finally(() => {
      checking = undefined;
    });
    return checking;
  }

  let debounce: NodeJS.Timeout | undefined;
  const trigger = (): void => {
    clearTimeout(debounce);
    debounce = setTimeout(() => void check(), 100);
    debounce.unref();
  };

  const watchers: FSWatcher[] = [];
  for (const dir of new Set([dirname(paths.certPath), dirname(paths.keyPath)])) {
    try {
      const watcher = watch(dir, { persistent: false }, trigger);
      watcher.on('error', () => watcher.close());
      watchers.push(watcher);
    } catch {
      // Polling covers directories that cannot be watched.
    }
  }
  const pollMs = options.pollIntervalMs ?? 10_000;
  const poll = pollMs > 0 ? setInterval(() => void check(), pollMs) : undefined;
  poll?.unref();

  return {
    current: () => pair,
    onChange(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    check,
    close() {
      closed = true;
      clearInterval(poll);
      clearTimeout(debounce);
      for (const watcher of watchers) watcher.close();
      listeners.clear();
    },
  };
}
