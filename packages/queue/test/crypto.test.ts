import { randomBytes } from 'node:crypto';
import { constants, deflateRawSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { fingerprint, parseKeyRing, pooledRandomBytes, seal, sealedKeyId, unseal } from '../src/crypto.js';
import { sealSecret, unsealSecret } from '../src/secret.js';

const k1 = randomBytes(32).toString('base64');
const k2 = randomBytes(32).toString('base64');

describe('parseKeyRing', () => {
  it('takes a bare key and names it by its fingerprint', () => {
    const ring = parseKeyRing(k1);
    expect(ring.current.id).toBe(fingerprint(Buffer.from(k1, 'base64')));
    expect(ring.byId.size).toBe(1);
  });

  it('takes id:key pairs, the first one sealing', () => {
    const ring = parseKeyRing(`new:${k2}, old:${k1}`);
    expect(ring.current.id).toBe('new');
    expect([...ring.byId.keys()]).toEqual(['new', 'old']);
  });

  it.each([
    ['', 'no key given'],
    ['c2hvcnQ=', 'key 1: must be 32 bytes'],
    [`a:${k1},b:not base64!`, 'key 2: must be 32 bytes'],
    [`a:${k1},a:${k2}`, 'key id a appears twice'],
    [`bad id:${k1}`, 'key 1: the key id must be'],
  ])('refuses %j naming the problem, never the key', (value, message) => {
    let error: Error | undefined;
    try {
      parseKeyRing(value);
    } catch (err) {
      error = err as Error;
    }
    expect(error?.message).toContain(message);
    expect(error?.message).not.toContain(k1);
  });
});

describe('seal / unseal', () => {
  const value = Buffer.from(JSON.stringify({ subject: 'Hello Bob', html: '<p>secret text</p>', accessToken: 'at-123' }));

  it('round-trips and hides the plain text', () => {
    const ring = parseKeyRing(`one:${k1}`);
    const sealed = seal(ring, value, 'job1');
    expect(sealed).not.toContain('Hello');
    expect(Buffer.from(sealed.split('.')[4] as string, 'base64url').toString()).not.toContain('secret text');
    expect(sealedKeyId(sealed)).toBe('one');
    expect(unseal(ring, sealed, 'job1')).toEqual(value);
  });

  it('opens an old key after rotation, seals with the new one', () => {
    const sealedOld = seal(parseKeyRing(`one:${k1}`), value, 'job1');
    const rotated = parseKeyRing(`two:${k2},one:${k1}`);
    expect(unseal(rotated, sealedOld, 'job1')).toEqual(value);
    expect(sealedKeyId(seal(rotated, value, 'job2'))).toBe('two');
  });

  it('refuses a value moved to another job, altered, or sealed with a key it lacks', () => {
    const ring = parseKeyRing(`one:${k1}`);
    const sealed = seal(ring, value, 'job1');
    expect(() => unseal(ring, sealed, 'job2')).toThrow(/wrong key or altered/);
    const parts = sealed.split('.');
    const ct = Buffer.from(parts[4] as string, 'base64url');
    ct[0] = (ct[0] as number) ^ 1;
    parts[4] = ct.toString('base64url');
    expect(() => unseal(ring, parts.join('.'), 'job1')).toThrow(/wrong key or altered/);
    expect(() => unseal(parseKeyRing(`two:${k2}`), sealed, 'job1')).toThrow(/key id one, which QUEUE_ENCRYPTION_KEY does not hold/);
  });
});

describe('sealSecret / unsealSecret', () => {
  it('round-trips the body and the session, the body compressed', async () => {
    const ring = parseKeyRing(k1);
    const secret = { body: { text: 'the same line again\n'.repeat(2000) }, session: { accessToken: 'a', refreshToken: 'r' } };
    const sealed = await sealSecret(ring, secret, 'job1');
    expect(await unsealSecret(ring, sealed, 'job1')).toEqual(secret);
    expect(sealed.length).toBeLessThan(JSON.stringify(secret).length / 10);
  });

  it.each([
    ['a small body (on the event loop)', 2_000],
    ['a large body (the thread pool)', 200_000],
  ])('deflates %s at the fastest level, and opens what older builds deflated at the default level', async (_name, size) => {
    const ring = parseKeyRing(k1);
    const words = ['invoice', 'order', 'shipped', 'Thank you', 'account', 'password', 'reset', 'link', 'today', '\n'];
    let text = '';
    for (let i = 0; text.length < size; i++) text += `${words[(i * 7 + (i >> 3)) % words.length] as string} ${i % 97} `;
    const body = { text };
    const session = { accessToken: 'a', refreshToken: 'r' };
    const json = Buffer.from(JSON.stringify(body));
    const plain = unseal(ring, await sealSecret(ring, { body, session }, 'job3'), 'job3');
    const deflated = plain.subarray(4 + plain.readUInt32BE(0));
    expect(deflated.equals(deflateRawSync(json, { level: constants.Z_BEST_SPEED }))).toBe(true);
    // A value sealed the way earlier builds sealed it (default level) opens the same.
    const older = deflateRawSync(json);
    expect(older.equals(deflated)).toBe(false);
    const sessionJson = Buffer.from(JSON.stringify(session));
    const length = Buffer.alloc(4);
    length.writeUInt32BE(sessionJson.length);
    const sealedByOlder = seal(ring, Buffer.concat([length, sessionJson, older]), 'job3');
    expect(await unsealSecret(ring, sealedByOlder, 'job3')).toEqual({ body, session });
  });

  it.each([
    ['a small body (compressed on the event loop)', randomBytes(600).toString('base64')],
    ['a large body that compresses to a large one (the thread pool both ways)', randomBytes(300_000).toString('base64')],
    ['a large body that compresses to a small one', 'x'.repeat(3_000_000)],
  ])('round-trips %s', async (_name, text) => {
    const ring = parseKeyRing(k1);
    const secret = { body: { text }, session: { accessToken: 'a', refreshToken: 'r' } };
    expect(await unsealSecret(ring, await sealSecret(ring, secret, 'job2'), 'job2')).toEqual(secret);
  });
});

describe('pooledRandomBytes', () => {
  it('hands every byte out once: values never repeat, and a handed-out slice never changes when the pool is replaced', () => {
    const first = Array.from({ length: 2000 }, () => pooledRandomBytes(12)); // 24,000 bytes: several pools
    const copies = first.map((b) => Buffer.from(b));
    const seen = new Set(first.map((b) => b.toString('hex')));
    expect(seen.size).toBe(2000);
    for (let i = 0; i < 5000; i++) pooledRandomBytes(10);
    expect(first.every((b, i) => b.equals(copies[i] as Buffer))).toBe(true);
    expect(pooledRandomBytes(5000)).toHaveLength(5000); // larger than a pool: its own bytes
  });

  it('gives IVs that differ: the same message sealed twice differs', () => {
    const ring = parseKeyRing(randomBytes(32).toString('base64'));
    const plain = Buffer.from('the same message');
    const a = seal(ring, plain, 'id');
    const b = seal(ring, plain, 'id');
    expect(a).not.toBe(b);
    expect(a.split('.')[2]).not.toBe(b.split('.')[2]);
  });
});
