import { describe, expect, it } from 'vitest';
import { trimOldest } from '../src/age-ordered.js';
import { ACCEPTED_TTL_MS, MemoryAcceptedStore, acceptedKey } from '../src/relay/accepted-store.js';

describe('MemoryAcceptedStore', () => {
  it('remembers ids until their TTL ends', async () => {
    const clock = { now: 0 };
    const store = new MemoryAcceptedStore({ now: () => clock.now });
    await store.put('k', 'id-1', ACCEPTED_TTL_MS);
    expect(await store.get('k')).toBe('id-1');
    clock.now = ACCEPTED_TTL_MS - 1;
    expect(await store.get('k')).toBe('id-1');
    clock.now = ACCEPTED_TTL_MS;
    expect(await store.get('k')).toBeUndefined();
    expect(store.size).toBe(0);
  });

  it('defaults to 24 hours', async () => {
    expect(ACCEPTED_TTL_MS).toBe(86_400_000);
  });

  it('is bounded: the oldest entries go first', async () => {
    const store = new MemoryAcceptedStore({ maxEntries: 3 });
    for (const k of ['a', 'b', 'c', 'd']) await store.put(k, `id-${k}`, 60_000);
    expect(store.size).toBe(3);
    expect(await store.get('a')).toBeUndefined();
    expect(await store.get('d')).toBe('id-d');
  });

  it('sweeps expired entries on put, at most once a second, never answering one meanwhile', async () => {
    const clock = { now: 0 };
    const store = new MemoryAcceptedStore({ now: () => clock.now });
    await store.put('old', 'x', 10);
    clock.now = 20;
    await store.put('new', 'y', 60_000);
    expect(store.size).toBe(2); // swept at 0, next at 1000
    clock.now = 1000;
    await store.put('newer', 'z', 60_000);
    expect(store.size).toBe(2);
    expect(await store.get('new')).toBe('y');
    clock.now = 1500;
    await store.put('short', 'w', 10);
    clock.now = 1600;
    expect(await store.get('short')).toBeUndefined();
  });

  it('trims its oldest entries in batches: past the bound, down to 15/16 of it', async () => {
    const store = new MemoryAcceptedStore({ maxEntries: 64 });
    for (let i = 0; i < 64; i++) await store.put(`k${i}`, `id-${i}`, 60_000);
    expect(store.size).toBe(64);
    await store.put('k64', 'id-64', 60_000);
    expect(store.size).toBe(60);
    for (let i = 0; i < 5; i++) expect(await store.get(`k${i}`)).toBeUndefined();
    expect(await store.get('k5')).toBe('id-5');
    expect(await store.get('k64')).toBe('id-64');
  });

  it('keeps a key written again as the newest', async () => {
    const store = new MemoryAcceptedStore({ maxEntries: 3 });
    for (const k of ['a', 'b', 'c']) await store.put(k, `id-${k}`, 60_000);
    await store.put('a', 'id-a2', 60_000);
    await store.put('d', 'id-d', 60_000);
    expect(await store.get('a')).toBe('id-a2');
    expect(await store.get('b')).toBeUndefined();
  });
});

describe('trimOldest', () => {
  it('leaves a map within its bound alone, and trims one past it to 15/16 of the bound, oldest first', () => {
    const map = new Map<number, number>();
    for (let i = 0; i < 1000; i++) map.set(i, i);
    trimOldest(map, 1000);
    expect(map.size).toBe(1000);
    map.set(1000, 1000);
    trimOldest(map, 1000);
    expect(map.size).toBe(1000 - 62);
    expect([...map.keys()][0]).toBe(63);
    expect(map.has(1000)).toBe(true);
  });

  it('trims a small map to its bound exactly', () => {
    const map = new Map([
      ['a', 1],
      ['b', 2],
      ['c', 3],
    ]);
    trimOldest(map, 2);
    expect([...map.keys()]).toEqual(['b', 'c']);
  });
});

describe('acceptedKey', () => {
  it('depends on account, fingerprint and recipient (case-insensitively)', () => {
    const k = acceptedKey(1, 'fp', 'Bob@Example.com');
    expect(k).toBe(acceptedKey(1, 'fp', 'bob@example.com'));
    expect(k).not.toBe(acceptedKey(2, 'fp', 'bob@example.com'));
    expect(k).not.toBe(acceptedKey(1, 'fq', 'bob@example.com'));
    expect(k).not.toBe(acceptedKey(1, 'fp', 'rob@example.com'));
    expect(k).not.toContain('bob');
  });
});
