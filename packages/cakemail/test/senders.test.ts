import { describe, expect, it } from 'vitest';
import type { SenderInfo } from '../src/client.js';
import { CakemailError } from '../src/errors.js';
import { pickSender, pickSenderId, SenderDirectory, senderWithAddress, type SenderApi } from '../src/senders.js';
import type { Logger } from '../src/types.js';

/** A scripted `GET /brands/default/senders`: counts walks, answers or fails as told. */
class FakeSenders implements SenderApi {
  calls = 0;
  mode: 'ok' | 'down' | 'unauthorized' = 'ok';
  senders: SenderInfo[] = [
    { id: 's1', name: 'Ops', email: 'ops@example.com', confirmed: true },
    { id: 's2', name: 'New', email: 'new@example.com', confirmed: false },
  ];

  async listSenders(): Promise<SenderInfo[]> {
    this.calls++;
    await new Promise((r) => setTimeout(r, 5));
    if (this.mode === 'down') throw new CakemailError('temporary', 'Cakemail GET /brands/default/senders answered 503', { status: 503, reason: 'http' });
    if (this.mode === 'unauthorized') throw new CakemailError('auth', 'Cakemail GET /brands/default/senders answered 401', { status: 401, reason: 'http' });
    return this.senders;
  }
}

function setup(staleIfUnavailableMs?: number) {
  const api = new FakeSenders();
  const clock = { now: 1_000_000 };
  const warnings: string[] = [];
  const logger: Logger = { debug() {}, info() {}, warn: (_fields: unknown, msg?: string) => warnings.push(msg ?? ''), error() {}, child: () => logger };
  const dir = new SenderDirectory({
    client: api,
    ttlMs: 60_000,
    logger,
    now: () => clock.now,
    ...(staleIfUnavailableMs === undefined ? {} : { staleIfUnavailableMs }),
  });
  return { api, clock, dir, warnings };
}

const opts = { deadline: Date.now() + 60_000 };

describe('SenderDirectory stale-if-unavailable (queue mode)', () => {
  it('a walk failing temporarily after the TTL answers the last list, logged once for the callers sharing it', async () => {
    const { api, clock, dir, warnings } = setup(3_600_000);
    expect((await dir.checkSender('t', 10, 'ops@example.com', opts)).id).toBe('s1');
    const fetched = new Date(clock.now).toISOString();
    clock.now += 120_000;
    api.mode = 'down';
    const found = await Promise.all([1, 2, 3].map(() => dir.checkSender('t', 10, 'OPS@example.com', opts)));
    expect(found.map((s) => s.id)).toEqual(['s1', 's1', 's1']);
    expect(api.calls).toBe(2);
    expect(warnings).toEqual([`Cakemail senders unavailable: using the confirmed senders fetched at ${fetched}`]);
    // The next check walks again (one more attempt, one more line).
    await dir.checkSender('t', 10, 'ops@example.com', opts);
    expect(api.calls).toBe(3);
    expect(warnings).toHaveLength(2);
  });

  it('a sender unknown (or unconfirmed) in the last list stays unknown: 553', async () => {
    const { api, clock, dir } = setup(3_600_000);
    await dir.confirmed('t', 10, opts);
    clock.now += 120_000;
    api.mode = 'down';
    await expect(dir.checkSender('t', 10, 'new@example.com', opts)).rejects.toMatchObject({ code: 553 });
    await expect(dir.checkSender('t', 10, 'other@example.com', opts)).rejects.toMatchObject({ code: 553 });
  });

  it('no last list, a refusal that is not temporary, or a list older than the bound: the failure', async () => {
    const { api, clock, dir } = setup(3_600_000);
    api.mode = 'down';
    await expect(dir.confirmed('t', 10, opts)).rejects.toMatchObject({ kind: 'temporary' });
    api.mode = 'ok';
    await dir.confirmed('t', 10, opts);
    clock.now += 120_000;
    api.mode = 'unauthorized';
    await expect(dir.confirmed('t', 10, opts)).rejects.toMatchObject({ kind: 'auth' });
    clock.now += 3_600_000;
    api.mode = 'down';
    await expect(dir.confirmed('t', 10, opts)).rejects.toMatchObject({ kind: 'temporary' });
  });

  it('without staleIfUnavailableMs (no queue): a failed walk after the TTL is the failure', async () => {
    const { api, clock, dir, warnings } = setup();
    await dir.confirmed('t', 10, opts);
    clock.now += 120_000;
    api.mode = 'down';
    await expect(dir.confirmed('t', 10, opts)).rejects.toMatchObject({ kind: 'temporary' });
    expect(warnings).toEqual([]);
  });
});

describe('SenderDirectory.cached (the session answers from it without a promise)', () => {
  it('holds what confirmed() answers without a call: nothing before the first walk or after the TTL', async () => {
    const { api, clock, dir } = setup();
    expect(dir.cached(10)).toBeUndefined();
    const walked = await dir.confirmed('t', 10, opts);
    expect(dir.cached(10)).toBe(walked);
    expect(dir.cached(11)).toBeUndefined();
    clock.now += 59_999;
    expect(dir.cached(10)).toBe(walked);
    clock.now += 1;
    expect(dir.cached(10)).toBeUndefined();
    expect(api.calls).toBe(1);
  });

  it('pickSender / pickSenderId / senderWithAddress answer as checkSender / checkSenderId / findSender', async () => {
    const { dir } = setup();
    const list = await dir.confirmed('t', 10, opts);
    for (const address of ['ops@example.com', ' OPS@Example.com ', 'new@example.com', 'other@example.com', '', '  ']) {
      expect(senderWithAddress(list, address)).toEqual(await dir.findSender('t', 10, address, opts));
      expect(outcome(() => pickSender(list, address))).toEqual(await dir.checkSender('t', 10, address, opts).catch((err: unknown) => err));
    }
    for (const id of ['s1', 's2', 'nope']) {
      expect(outcome(() => pickSenderId(list, id))).toEqual(await dir.checkSenderId('t', 10, id, opts).catch((err: unknown) => err));
    }
  });
});

/** What `fn` returns, or what it throws: a synchronous call's outcome, as `.catch((err) => err)` gives an async one's. */
function outcome<T>(fn: () => T): T | unknown {
  try {
    return fn();
  } catch (err) {
    return err;
  }
}
