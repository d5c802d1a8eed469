import { describe, expect, it } from 'vitest';
import { Replies } from '@cakemail-smtp/smtp-core';
import { CakemailAuthenticator, type TokenApi } from '../src/auth.js';
import type { TokenResult } from '../src/client.js';
import { CakemailError, CakemailMfaError } from '../src/errors.js';
import type { Logger } from '../src/types.js';
import { refused } from './helpers/refused.js';

/** A scripted /token: counts calls, answers per user. */
class FakeTokens implements TokenApi {
  tokenCalls: { username: string; password: string }[] = [];
  refreshCalls: string[] = [];
  mode: 'ok' | 'invalid' | 'mfa' | 'down' | 'slow' = 'ok';
  refreshMode: 'ok' | 'invalid' = 'ok';
  expiresIn = 3600;
  #n = 0;

  async token(username: string, password: string): Promise<TokenResult> {
    this.tokenCalls.push({ username, password });
    if (this.mode === 'slow') await new Promise((r) => setTimeout(r, 50));
    if (this.mode === 'invalid') throw new CakemailError('auth', 'Cakemail POST /token answered 401', { status: 401, reason: 'http' });
    if (this.mode === 'mfa') throw new CakemailMfaError();
    if (this.mode === 'down') throw new CakemailError('temporary', 'Cakemail POST /token answered 503', { status: 503, reason: 'http' });
    return this.#issue();
  }

  async refresh(refreshToken: string): Promise<TokenResult> {
    this.refreshCalls.push(refreshToken);
    if (this.refreshMode === 'invalid') throw new CakemailError('auth', 'refresh refused', { status: 401, reason: 'http' });
    return this.#issue();
  }

  #issue(): TokenResult {
    const n = ++this.#n;
    return { accessToken: `access-${n}`, refreshToken: `refresh-${n}`, expiresIn: this.expiresIn, accounts: [10, 20] };
  }
}

function setup(opts: { failureTtlMs?: number; cacheTtlMs?: number; staleIfUnavailableMs?: number; logger?: Logger } = {}) {
  const api = new FakeTokens();
  const clock = { now: 1_000_000 };
  const auth = new CakemailAuthenticator({ client: api, deadlineMs: 1000, cacheTtlMs: 60_000, now: () => clock.now, ...opts });
  return { api, clock, auth };
}


const deadline = { deadline: Date.now() + 60_000 };

describe('CakemailAuthenticator', () => {
  it('caches a login: the same credentials do not call /token again', async () => {
    const { api, auth } = setup();
    const a = await auth.login('u@example.com', 'pw');
    const b = await auth.login('u@example.com', 'pw');
    expect(b).toBe(a);
    expect(a.accounts).toEqual([10, 20]);
    expect(a.defaultAccountId).toBe(10);
    expect(api.tokenCalls).toHaveLength(1);
  });

  it('keys the cache by username and password together', async () => {
    const { api, auth } = setup();
    await auth.login('u@example.com', 'pw');
    await auth.login('u@example.com', 'other');
    await auth.login('v@example.com', 'pw');
    expect(api.tokenCalls).toHaveLength(3);
  });

  it('singleflights concurrent logins with the same credentials', async () => {
    const { api, auth } = setup();
    api.mode = 'slow';
    const sessions = await Promise.all(Array.from({ length: 10 }, () => auth.login('u@example.com', 'pw')));
    expect(api.tokenCalls).toHaveLength(1);
    expect(new Set(sessions).size).toBe(1);
  });

  it('logs in again once the cached token nears expiry', async () => {
    const { api, clock, auth } = setup();
    await auth.login('u@example.com', 'pw');
    clock.now += 3600_000 - 30_000; // 30 s before expiry: inside the 60 s margin
    await auth.login('u@example.com', 'pw');
    expect(api.tokenCalls).toHaveLength(2);
  });

  it('a cached login vouches for the password for at most cacheTtlMs (60 s here), whatever refreshes happened', async () => {
    const { api, clock, auth } = setup();
    const s = await auth.login('u@example.com', 'pw');
    clock.now += 30_000;
    expect(await s.refreshAfterUnauthorized('access-1', deadline)).toBe('access-2');
    // within the TTL: served from the cache, the refresh notwithstanding
    expect(await auth.login('u@example.com', 'pw')).toBe(s);
    expect(api.tokenCalls).toHaveLength(1);
    clock.now += 30_000; // 60 s after /token checked the password
    api.mode = 'invalid'; // the password was changed at Cakemail
    await expect(auth.login('u@example.com', 'pw')).rejects.toBe(Replies.S535_AUTH_INVALID);
    expect(api.tokenCalls).toHaveLength(2);
    // the session that holds the login keeps its token
    expect(await s.accessToken(deadline)).toBe('access-2');
  });

  it('cacheTtlMs 0: every AUTH checks the password with /token', async () => {
    const { api, auth } = setup({ cacheTtlMs: 0 });
    await auth.login('u@example.com', 'pw');
    await auth.login('u@example.com', 'pw');
    expect(api.tokenCalls).toHaveLength(2);
  });

  it('refreshes a session token near expiry, once for concurrent callers', async () => {
    const { api, clock, auth } = setup();
    const s = await auth.login('u@example.com', 'pw');
    expect(await s.accessToken(deadline)).toBe('access-1');
    clock.now += 3600_000 - 10_000;
    const tokens = await Promise.all([s.accessToken(deadline), s.accessToken(deadline), s.accessToken(deadline)]);
    expect(tokens).toEqual(['access-2', 'access-2', 'access-2']);
    expect(api.refreshCalls).toEqual(['refresh-1']);
    expect(api.tokenCalls).toHaveLength(1);
  });

  it('refreshes after a 401, and only once when the token was already replaced', async () => {
    const { api, auth } = setup();
    const s = await auth.login('u@example.com', 'pw');
    expect(await s.refreshAfterUnauthorized('access-1', deadline)).toBe('access-2');
    expect(await s.refreshAfterUnauthorized('access-1', deadline)).toBe('access-2');
    expect(api.refreshCalls).toEqual(['refresh-1']);
  });

  it('a refused refresh drops the cached login', async () => {
    const { api, auth } = setup();
    const s = await auth.login('u@example.com', 'pw');
    api.refreshMode = 'invalid';
    await expect(s.refreshAfterUnauthorized('access-1', deadline)).rejects.toMatchObject({ kind: 'auth' });
    await auth.login('u@example.com', 'pw');
    expect(api.tokenCalls).toHaveLength(2);
  });

  it('wrong credentials → 535, remembered for the failure window only', async () => {
    const { api, clock, auth } = setup({ failureTtlMs: 5000 });
    api.mode = 'invalid';
    expect(await refused(auth.login('u@example.com', 'bad'))).toBe(Replies.S535_AUTH_INVALID);
    expect(await refused(auth.login('u@example.com', 'bad'))).toBe(Replies.S535_AUTH_INVALID);
    expect(api.tokenCalls).toHaveLength(1);
    api.mode = 'ok';
    clock.now += 5001;
    await auth.login('u@example.com', 'bad');
    expect(api.tokenCalls).toHaveLength(2);
  });

  it('a failure does not block other credentials', async () => {
    const { api, auth } = setup();
    api.mode = 'invalid';
    await refused(auth.login('u@example.com', 'bad'));
    api.mode = 'ok';
    await auth.login('u@example.com', 'good');
    expect(api.tokenCalls).toHaveLength(2);
  });

  it('an MFA challenge → 535 with the MFA text', async () => {
    const { api, auth } = setup();
    api.mode = 'mfa';
    const err = await refused(auth.login('mfa@example.com', 'pw'));
    expect(err.line).toBe(
      '535 5.7.8 This Cakemail account uses multi-factor authentication, which SMTP cannot complete; use an account without MFA',
    );
  });

  it('/token unavailable → 454, not cached', async () => {
    const { api, auth } = setup();
    api.mode = 'down';
    expect((await refused(auth.login('u@example.com', 'pw'))).line).toBe('454 4.7.0 Temporary authentication failure, try again later');
    api.mode = 'ok';
    await auth.login('u@example.com', 'pw');
    expect(api.tokenCalls).toHaveLength(2);
  });

  describe('stale-if-unavailable (queue mode: staleIfUnavailableMs)', () => {
    function staleSetup() {
      const warnings: { fields: unknown; msg: string }[] = [];
      const logger: Logger = { debug() {}, info() {}, warn: (fields: unknown, msg?: string) => warnings.push({ fields, msg: msg ?? '' }), error() {}, child: () => logger };
      const { api, clock, auth } = setup({ staleIfUnavailableMs: 3_600_000, logger });
      return { api, clock, auth, warnings };
    }

    it('/token unavailable after the cache TTL: the login verified with the same password stands in, logged without secrets', async () => {
      const { api, clock, auth, warnings } = staleSetup();
      const a = await auth.login('u@example.com', 'pw');
      const verified = new Date(clock.now).toISOString();
      clock.now += 120_000; // past cacheTtlMs (60 s)
      api.mode = 'down';
      expect(await auth.login('u@example.com', 'pw')).toBe(a);
      expect(api.tokenCalls).toHaveLength(2); // /token was asked first
      const line = warnings.find((w) => w.msg.startsWith('Cakemail login unavailable: accepted'));
      expect(line?.msg).toBe(`Cakemail login unavailable: accepted on a password Cakemail verified at ${verified}`);
      expect(JSON.stringify(warnings)).not.toMatch(/pw|access-|refresh-/);
      // Cakemail answers again: the password is checked again (#8), and the new login replaces the old.
      api.mode = 'ok';
      const b = await auth.login('u@example.com', 'pw');
      expect(b).not.toBe(a);
      expect(api.tokenCalls).toHaveLength(3);
    });

    it('a wrong password finds no login to stand in: 454, never a success', async () => {
      const { api, clock, auth } = staleSetup();
      await auth.login('u@example.com', 'pw');
      clock.now += 120_000;
      api.mode = 'down';
      expect((await refused(auth.login('u@example.com', 'wrong'))).line).toBe('454 4.7.0 Temporary authentication failure, try again later');
      expect((await refused(auth.login('v@example.com', 'pw'))).line).toBe('454 4.7.0 Temporary authentication failure, try again later');
    });

    it('a password Cakemail refused (401) is never turned into a success by a later outage', async () => {
      const { api, clock, auth } = staleSetup();
      await auth.login('u@example.com', 'pw');
      clock.now += 120_000;
      api.mode = 'invalid'; // the password was changed at Cakemail
      expect((await refused(auth.login('u@example.com', 'pw'))).line).toBe(Replies.S535_AUTH_INVALID.line);
      clock.now += 10_000; // past failureTtlMs
      api.mode = 'down';
      expect((await refused(auth.login('u@example.com', 'pw'))).line).toBe('454 4.7.0 Temporary authentication failure, try again later');
    });

    it('a login whose refresh Cakemail refused does not stand in', async () => {
      const { api, clock, auth } = staleSetup();
      const a = await auth.login('u@example.com', 'pw');
      api.refreshMode = 'invalid';
      await expect(a.refreshAfterUnauthorized((await a.accessToken(deadline)), deadline)).rejects.toBeInstanceOf(CakemailError);
      clock.now += 120_000;
      api.mode = 'down';
      expect((await refused(auth.login('u@example.com', 'pw'))).line).toBe('454 4.7.0 Temporary authentication failure, try again later');
    });

    it('stands in for at most staleIfUnavailableMs after /token checked the password', async () => {
      const { api, clock, auth } = staleSetup();
      const a = await auth.login('u@example.com', 'pw');
      api.mode = 'down';
      clock.now += 3_600_000 - 1_000;
      expect(await auth.login('u@example.com', 'pw')).toBe(a);
      clock.now += 1_000;
      expect((await refused(auth.login('u@example.com', 'pw'))).line).toBe('454 4.7.0 Temporary authentication failure, try again later');
    });

    it('without staleIfUnavailableMs (no queue): /token unavailable after the cache TTL → 454', async () => {
      const { api, clock, auth } = setup();
      await auth.login('u@example.com', 'pw');
      clock.now += 120_000;
      api.mode = 'down';
      expect((await refused(auth.login('u@example.com', 'pw'))).line).toBe('454 4.7.0 Temporary authentication failure, try again later');
    });

    it('expired logins kept for it stay bounded by maxEntries', async () => {
      const api = new FakeTokens();
      const clock = { now: 1_000_000 };
      const auth = new CakemailAuthenticator({ client: api, deadlineMs: 1000, cacheTtlMs: 1_000, staleIfUnavailableMs: 3_600_000, maxEntries: 3, now: () => clock.now });
      for (let i = 0; i < 5; i++) {
        await auth.login(`u${i}@example.com`, 'pw');
        clock.now += 2_000;
      }
      expect(auth.size).toBe(3);
    });
  });

  it('bounds the cache', async () => {
    const api = new FakeTokens();
    const auth = new CakemailAuthenticator({ client: api, deadlineMs: 1000, cacheTtlMs: 60_000, maxEntries: 3 });
    for (let i = 0; i < 5; i++) await auth.login(`u${i}@example.com`, 'pw');
    expect(auth.size).toBe(3);
  });
});
