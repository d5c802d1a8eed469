import { describe, expect, it } from 'vitest';
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

  it('sweeps expired entries on put', async () => {
    const clock = { now: 0 };
    const store = new MemoryAcceptedStore({ now: () => clock.now });
    await store.put('old', 'x', 10);
    clock.now = 20;
    await store.put('new', 'y', 10);
    expect(store.size).toBe(1);
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
