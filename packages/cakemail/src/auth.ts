/**
 * The Cakemail authenticator: SMTP AUTH credentials → `POST /token`.
 *
 * - Successful logins are cached, keyed by an HMAC (random key per process) of username and
 *   password: the password itself is never kept, and a repeated AUTH with the same credentials
 *   does not call /token again. A cached login vouches for the password for at most
 *   `cacheTtlMs` after /token checked it, whatever refreshes happened since (a password changed
 *   at Cakemail stops working here within that time), and never past its token's expiry margin.
 * - Refused logins (wrong credentials, MFA) are cached for `failureTtlMs` only, so a client's
 *   retry storm does not hammer /token.
 * - Concurrent logins with the same credentials share one /token call (singleflight).
 * - With `staleIfUnavailableMs` (queue mode only, set by createRelayBackend): when /token is
 *   unavailable (5xx, 429, timeout, connection refused), a login this process holds for the same
 *   username and password, whose refresh Cakemail never refused, stands in for the password for
 *   up to that long after /token last checked it. A refused password (401) never passes, and a
 *   wrong one finds no login to stand in.
 * - A session keeps its `AuthSession`; its access token is refreshed with the refresh token
 *   when it nears expiry or after a 401, again one refresh for all sessions sharing it.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { trimOldest } from './age-ordered.js';
import type { CallOptions, TokenResult } from './client.js';
import { CakemailError, errorLogFields } from './errors.js';
import { loginFailure, type LoginFailure } from './outcomes.js';
import type { Logger } from './types.js';

/** What the authenticator needs of the client. */
export interface TokenApi {
  token(username: string, password: string, accountId: number | undefined, opts: CallOptions): Promise<TokenResult>;
  refresh(refreshToken: string, opts: CallOptions): Promise<TokenResult>;
}

export interface AuthenticatorOptions {
  readonly client: TokenApi;
  /** Budget of one login or refresh, retries included (UPSTREAM_DEADLINE_MS). */
  readonly deadlineMs: number;
  /** A token this close to expiry is refreshed, and no longer served from the cache. Default 60 s. */
  readonly refreshMarginMs?: number;
  /**
   * How long after /token checked a password a cached login may stand in for it (AUTH_CACHE_TTL_MS).
   * Refreshing the token does not extend it. `0`: every AUTH calls /token.
   */
  readonly cacheTtlMs: number;
  /** How long a refused login is remembered. Default 5 s. */
  readonly failureTtlMs?: number;
  /** Most cached logins (oldest dropped first). Default 10 000. */
  readonly maxEntries?: number;
  /**
   * Queue mode only (default 0: off). When /token is temporarily unavailable, a cached login
   * whose password /token checked less than this long ago stands in for it (stale-if-unavailable).
   * Its expired entries are kept for this (bounded by `maxEntries`).
   */
  readonly staleIfUnavailableMs?: number;
  readonly logger?: Logger;
  readonly now?: () => number;
}

/** A login's tokens as they stand: what a queued message keeps instead of the password. */
export interface SessionTokens {
  readonly accessToken: string;
  readonly refreshToken: string;
  /** Epoch ms when the access token expires. */
  readonly expiresAt: number;
}

/** A logged-in Cakemail user as a session holds it. Shared by sessions with the same credentials. */
export class AuthSession {
  #accessToken: string;
  #refreshToken: string;
  #expiresAt: number;
  #lifetimeMs: number;
  #accounts: readonly number[];
  #refreshing: Promise<string> | undefined;
  #dead = false;
  /** When /token last checked the password behind this login (a refresh does not count). */
  readonly #verifiedAt: number;

  constructor(
    token: TokenResult,
    private readonly owner: {
      readonly client: TokenApi;
      /** How long before expiry a token of this lifetime counts as stale. */
      readonly marginFor: (lifetimeMs: number) => number;
      /** How long after the password check the login may stand in for the password. */
      readonly cacheTtlMs: number;
      readonly now: () => number;
      readonly onDead: (s: AuthSession) => void;
    },
  ) {
    this.#accessToken = token.accessToken;
    this.#refreshToken = token.refreshToken;
    this.#lifetimeMs = token.expiresIn * 1000;
    this.#verifiedAt = owner.now();
    this.#expiresAt = this.#verifiedAt + this.#lifetimeMs;
    this.#accounts = [...token.accounts];
  }

  /** The accounts this login may use (the token's `accounts`). */
  get accounts(): readonly number[] {
    return this.#accounts;
  }

  /** The account used when the message names none: the first of the token's accounts. */
  get defaultAccountId(): number | undefined {
    return this.#accounts[0];
  }

  /** The tokens as they stand (for a queued message; never for a log line). */
  get tokens(): SessionTokens {
    return { accessToken: this.#accessToken, refreshToken: this.#refreshToken, expiresAt: this.#expiresAt };
  }

  /** Epoch ms when /token last checked the password behind this login. */
  get verifiedAt(): number {
    return this.#verifiedAt;
  }

  /** True once Cakemail refused the refresh token: this login can no longer call the API. */
  get expired(): boolean {
    return this.#dead;
  }

  /** True while the access token is alive and not yet near its expiry. */
  get fresh(): boolean {
    return !this.#dead && this.owner.now() < this.#expiresAt - this.owner.marginFor(this.#lifetimeMs);
  }

  /** The access token while it is fresh (what accessToken() answers without a call), else undefined. */
  get freshToken(): string | undefined {
    return this.fresh ? this.#accessToken : undefined;
  }

  /**
   * True while a new AUTH with the same credentials may reuse this login: the token is fresh and
   * /token checked the password less than `cacheTtlMs` ago.
   */
  get reusable(): boolean {
    return this.fresh && this.owner.now() < this.#verifiedAt + this.owner.cacheTtlMs;
  }

  /** A valid access token, refreshed first when it nears expiry. */
  async accessToken(opts: CallOptions): Promise<string> {
    if (this.fresh) return this.#accessToken;
    return this.#refresh(this.#accessToken, opts);
  }

  /**
   * The API answered 401 with `staleToken`: refresh (once for everyone holding this login) and
   * answer the new access token. If another caller refreshed already, its token is answered.
   * Throws a CakemailError when the refresh fails.
   */
  async refreshAfterUnauthorized(staleToken: string, opts: CallOptions): Promise<string> {
    return this.#refresh(staleToken, opts);
  }

  #refresh(staleToken: string, opts: CallOptions): Promise<string> {
    if (staleToken !== this.#accessToken) return Promise.resolve(this.#accessToken);
    this.#refreshing ??= (async () => {
      try {
        const t = await this.owner.client.refresh(this.#refreshToken, opts);
        this.#accessToken = t.accessToken;
        this.#refreshToken = t.refreshToken;
        this.#lifetimeMs = t.expiresIn * 1000;
        this.#expiresAt = this.owner.now() + this.#lifetimeMs;
        if (t.accounts.length > 0) this.#accounts = [...t.accounts];
        return this.#accessToken;
      } catch (err) {
        // A refused refresh ends this login: the next AUTH logs in again with the password.
        if (err instanceof CakemailError && err.kind === 'auth') {
          this.#dead = true;
          this.owner.onDead(this);
        }
        throw err;
      } finally {
        this.#refreshing = undefined;
      }
    })();
    return this.#refreshing;
  }
}

/** A login: its session, or why it failed. */
export type LoginOutcome = { readonly ok: true; readonly session: AuthSession } | LoginFailure;

export class CakemailAuthenticator {
  readonly #key = randomBytes(32);
  readonly #client: TokenApi;
  readonly #deadlineMs: number;
  readonly #margin: number;
  readonly #cacheTtl: number;
  readonly #failureTtl: number;
  readonly #maxEntries: number;
  readonly #staleMs: number;
  readonly #now: () => number;
  readonly #logger: Logger | undefined;
  readonly #cache = new Map<string, AuthSession>();
  /** The latest login of each username (lower-cased), while alive: see liveLogin(). */
  readonly #byUser = new Map<string, AuthSession>();
  readonly #failures = new Map<string, { readonly failure: LoginFailure; readonly until: number }>();
  readonly #inflight = new Map<string, Promise<LoginOutcome>>();

  constructor(options: AuthenticatorOptions) {
    this.#client = options.client;
    this.#deadlineMs = options.deadlineMs;
    this.#margin = options.refreshMarginMs ?? 60_000;
    this.#cacheTtl = options.cacheTtlMs;
    this.#failureTtl = options.failureTtlMs ?? 5_000;
    this.#maxEntries = options.maxEntries ?? 10_000;
    this.#staleMs = options.staleIfUnavailableMs ?? 0;
    this.#now = options.now ?? Date.now;
    this.#logger = options.logger;
  }

  /** Logs in, or reuses a cached login: the session, or why not (`loginFailure()`, outcomes.ts). */
  async authenticate(username: string, password: string): Promise<LoginOutcome> {
    const key = this.#keyOf(username, password);
    const now = this.#now();
    const failed = this.#failures.get(key);
    if (failed) {
      if (failed.until > now) return failed.failure;
      this.#failures.delete(key);
    }
    const cached = this.#cache.get(key);
    if (cached) {
      if (cached.reusable) return { ok: true, session: cached };
      // Kept while it may still stand in for the password when /token is unavailable.
      if (cached.expired || now >= cached.verifiedAt + this.#staleMs) this.#cache.delete(key);
    }
    let pending = this.#inflight.get(key);
    if (!pending) {
      pending = this.#login(key, username, password).finally(() => this.#inflight.delete(key));
      this.#inflight.set(key, pending);
    }
    return pending;
  }

  /** `authenticate()`, throwing the failure's reply. */
  async login(username: string, password: string): Promise<AuthSession> {
    const outcome = await this.authenticate(username, password);
    if (!outcome.ok) throw outcome.reply;
    return outcome.session;
  }

  /**
   * A login restored from a queued message's tokens: it refreshes like any other (near expiry
   * or after a 401), is not cached, and stands for no password.
   */
  restore(tokens: SessionTokens, accounts: readonly number[]): AuthSession {
    const now = this.#now();
    return new AuthSession(
      { accessToken: tokens.accessToken, refreshToken: tokens.refreshToken, expiresIn: (tokens.expiresAt - now) / 1000, accounts },
      { client: this.#client, marginFor: (ms) => this.#marginFor(ms), cacheTtlMs: 0, now: this.#now, onDead: () => {} },
    );
  }

  /**
   * The latest login of `username` in this process that is still alive and may use `accountId`:
   * what a queued message's bounce uses when the message's own session expired past refresh.
   */
  liveLogin(username: string, accountId: number): AuthSession | undefined {
    const found = this.#byUser.get(username.toLowerCase());
    return found !== undefined && !found.expired && found.accounts.includes(accountId) ? found : undefined;
  }

  /** Number of cached logins (for metrics and tests). */
  get size(): number {
    return this.#cache.size;
  }

  async #login(key: string, username: string, password: string): Promise<LoginOutcome> {
    let token: TokenResult;
    try {
      token = await this.#client.token(username, password, undefined, { deadline: this.#now() + this.#deadlineMs });
    } catch (err) {
      const failure = loginFailure(err);
      if (failure.reason !== 'unavailable') {
        // Cakemail refused this password: no login of it stands in for it any more.
        this.#cache.delete(key);
        return this.#remember(key, failure);
      }
      const stale = this.#cache.get(key);
      if (stale !== undefined && !stale.expired && this.#now() < stale.verifiedAt + this.#staleMs) {
        const verified = new Date(stale.verifiedAt).toISOString();
        this.#logger?.warn({ err: errorLogFields(err), verifiedAt: verified }, `Cakemail login unavailable: accepted on a password Cakemail verified at ${verified}`);
        return { ok: true, session: stale };
      }
      this.#logger?.warn({ err: errorLogFields(err) }, 'Cakemail login unavailable');
      return failure;
    }
    const user = username.toLowerCase();
    const session = new AuthSession(token, {
      client: this.#client,
      marginFor: (ms) => this.#marginFor(ms),
      cacheTtlMs: this.#cacheTtl,
      now: this.#now,
      onDead: (s) => {
        if (this.#cache.get(key) === s) this.#cache.delete(key);
        if (this.#byUser.get(user) === s) this.#byUser.delete(user);
      },
    });
    this.#cache.delete(key); // re-insert: Map order is age order (a stale login may still be there)
    this.#cache.set(key, session);
    this.#byUser.delete(user); // re-insert: Map order is age order
    this.#byUser.set(user, session);
    this.#evict();
    return { ok: true, session };
  }

  #marginFor(lifetimeMs: number): number {
    // Short-lived tokens: stale at half their life rather than stale from the start.
    return Math.min(this.#margin, Math.max(0, lifetimeMs) / 2);
  }

  #remember(key: string, failure: LoginFailure): LoginFailure {
    if (this.#failureTtl > 0) {
      this.#failures.set(key, { failure, until: this.#now() + this.#failureTtl });
      trimOldest(this.#failures, this.#maxEntries);
    }
    return failure;
  }

  #evict(): void {
    trimOldest(this.#cache, this.#maxEntries);
    trimOldest(this.#byUser, this.#maxEntries);
  }

  #keyOf(username: string, password: string): string {
    const h = createHmac('sha256', this.#key);
    h.update(`${Buffer.byteLength(username)}:`);
    h.update(username);
    h.update('\0');
    h.update(password);
    return h.digest('base64url');
  }
}
