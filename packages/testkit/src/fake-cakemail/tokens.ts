// Access and refresh tokens. They live in separate maps, so neither can stand in for the other.

import { randomBytes } from 'node:crypto';

export interface Grant {
  userEmail: string;
  accounts: readonly number[];
  /** The account used when a call gives no `account_id`. */
  defaultAccountId: number;
  ttlSeconds: number;
}

interface AccessToken extends Grant {
  expiresAt: number;
}

export interface IssuedToken {
  access_token: string;
  token_type: 'bearer';
  expires_in: number;
  refresh_token: string;
  accounts: number[];
}

export type Verified = { ok: true; grant: Grant } | { ok: false; reason: 'unknown' | 'expired' };

export class Tokens {
  private readonly access = new Map<string, AccessToken>();
  private readonly refresh = new Map<string, Grant>();

  constructor(private readonly now: () => number) {}

  /** A new access token plus a refresh token (the given one is kept when refreshing). */
  issue(grant: Grant, refreshToken?: string): IssuedToken {
    const accessToken = `fake-at-${randomBytes(18).toString('base64url')}`;
    this.access.set(accessToken, { ...grant, expiresAt: this.now() + grant.ttlSeconds * 1000 });
    const refresh = refreshToken ?? `fake-rt-${randomBytes(18).toString('base64url')}`;
    this.refresh.set(refresh, grant);
    return {
      access_token: accessToken,
      token_type: 'bearer',
      expires_in: grant.ttlSeconds,
      refresh_token: refresh,
      accounts: [...grant.accounts],
    };
  }

  verify(accessToken: string): Verified {
    const found = this.access.get(accessToken);
    if (found === undefined) return { ok: false, reason: 'unknown' };
    if (this.now() >= found.expiresAt) return { ok: false, reason: 'expired' };
    return { ok: true, grant: found };
  }

  refreshGrant(refreshToken: string): Grant | undefined {
    return this.refresh.get(refreshToken);
  }

  expireAll(): void {
    const past = this.now() - 1;
    for (const token of this.access.values()) token.expiresAt = past;
  }

  /** Forgets every access and refresh token issued to this user; answers how many refresh tokens went. */
  revokeUser(email: string): number {
    const user = email.toLowerCase();
    let revoked = 0;
    for (const [token, grant] of this.access) if (grant.userEmail.toLowerCase() === user) this.access.delete(token);
    for (const [token, grant] of this.refresh) {
      if (grant.userEmail.toLowerCase() !== user) continue;
      this.refresh.delete(token);
      revoked += 1;
    }
    return revoked;
  }
}
