/**
 * Encryption at rest: AES-256-GCM with a key ring. The first key seals, every
 * key opens, so a key is rotated by putting the new one first and keeping the
 * old one until no queued message names it (`list()` shows each message's key id).
 */
import { createCipheriv, createDecipheriv, createHash, randomFillSync } from 'node:crypto';

export interface QueueKey {
  readonly id: string;
  readonly key: Buffer;
}

export interface KeyRing {
  /** The key that seals new data. */
  readonly current: QueueKey;
  readonly byId: ReadonlyMap<string, QueueKey>;
}

export class KeyRingError extends Error {
  override readonly name = 'KeyRingError';
}

const KEY_ID = /^[A-Za-z0-9_-]{1,32}$/;
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

/** The key id of a key given without one: the first 8 hex digits of its SHA-256. */
export function fingerprint(key: Buffer): string {
  return createHash('sha256').update(key).digest('hex').slice(0, 8);
}

function parseKey(entry: string, position: number): QueueKey {
  const colon = entry.indexOf(':');
  const id = colon === -1 ? undefined : entry.slice(0, colon).trim();
  const material = (colon === -1 ? entry : entry.slice(colon + 1)).trim();
  if (id !== undefined && !KEY_ID.test(id)) {
    throw new KeyRingError(`key ${position}: the key id must be 1-32 characters of A-Z a-z 0-9 _ -`);
  }
  const key = BASE64.test(material) ? Buffer.from(material, 'base64') : Buffer.alloc(0);
  if (key.length !== 32) {
    throw new KeyRingError(`key ${position}: must be 32 bytes in base64 (openssl rand -base64 32)`);
  }
  return { id: id ?? fingerprint(key), key };
}

/**
 * Parses `QUEUE_ENCRYPTION_KEY`: one or more comma-separated keys, each
 * `<base64>` or `<id>:<base64>`; the first one seals. The error names the
 * position of a bad key, never its material.
 */
export function parseKeyRing(value: string): KeyRing {
  const entries = value.split(',').map((e) => e.trim()).filter((e) => e !== '');
  if (entries.length === 0) throw new KeyRingError('no key given');
  const keys = entries.map((e, i) => parseKey(e, i + 1));
  const byId = new Map<string, QueueKey>();
  for (const k of keys) {
    if (byId.has(k.id)) throw new KeyRingError(`key id ${k.id} appears twice`);
    byId.set(k.id, k);
  }
  return { current: keys[0] as QueueKey, byId };
}

const VERSION = 'v1';

/**
 * Random bytes for IVs and queue ids, cut from a pool filled 4 KiB at a time: each `randomBytes()`
 * call into OpenSSL cost the gateway tens of µs a message under load (the profile of
 * `pnpm bench --only Q`). Every byte is handed out once (a pool is replaced, never refilled in
 * place), as Node's own `randomUUID()` cache does.
 */
const POOL_BYTES = 4096;
let pool = Buffer.alloc(0);
let poolAt = 0;

export function pooledRandomBytes(size: number): Buffer {
  if (size > POOL_BYTES) return randomFillSync(Buffer.allocUnsafe(size));
  if (poolAt + size > pool.length) {
    pool = randomFillSync(Buffer.allocUnsafeSlow(POOL_BYTES));
    poolAt = 0;
  }
  const bytes = pool.subarray(poolAt, poolAt + size);
  poolAt += size;
  return bytes;
}

/**
 * Seals bytes: `v1.<key id>.<iv>.<tag>.<ciphertext>` in base64url.
 * `context` (the queue id) is authenticated, so a sealed value cannot be
 * moved to another message.
 */
export function seal(ring: KeyRing, plain: Buffer, context: string): string {
  const { id, key } = ring.current;
  const iv = pooledRandomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(Buffer.from(`${VERSION}.${id}.${context}`));
  const ciphertext = Buffer.concat([cipher.update(plain), cipher.final()]);
  const tag = cipher.getAuthTag();
  return [VERSION, id, iv.toString('base64url'), tag.toString('base64url'), ciphertext.toString('base64url')].join('.');
}

/** The key id a sealed value names. */
export function sealedKeyId(sealed: string): string | undefined {
  const parts = sealed.split('.');
  return parts[0] === VERSION ? parts[1] : undefined;
}

export class UnsealError extends Error {
  override readonly name = 'UnsealError';
}

export function unseal(ring: KeyRing, sealed: string, context: string): Buffer {
  const [version, id, iv, tag, ciphertext] = sealed.split('.');
  if (version !== VERSION || id === undefined || iv === undefined || tag === undefined || ciphertext === undefined) {
    throw new UnsealError('not a sealed value');
  }
  const entry = ring.byId.get(id);
  if (!entry) throw new UnsealError(`sealed with key id ${id}, which QUEUE_ENCRYPTION_KEY does not hold`);
  try {
    const decipher = createDecipheriv('aes-256-gcm', entry.key, Buffer.from(iv, 'base64url'));
    decipher.setAAD(Buffer.from(`${version}.${id}.${context}`));
    decipher.setAuthTag(Buffer.from(tag, 'base64url'));
    return Buffer.concat([decipher.update(Buffer.from(ciphertext, 'base64url')), decipher.final()]);
  } catch {
    throw new UnsealError(`cannot open the value sealed with key id ${id} (wrong key or altered data)`);
  }
}
