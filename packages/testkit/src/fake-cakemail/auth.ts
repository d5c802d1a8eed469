// Bearer token, query and account checks shared by every route but /token.
// Order as FastAPI resolves it: 401 (token) → 422 (query) → 403 (account).

import { forbidden, invalid, unauthorized, type Reply } from './errors.js';
import type { Call, Deps } from './request.js';
import { validate, type Check } from './validate.js';

export type Authorized = { ok: true; accountId: number } | { ok: false; reply: Reply };

export function authorize(call: Call, deps: Deps, querySchema: Check): Authorized {
  const header = call.headers.authorization;
  const match = header === undefined ? null : /^Bearer\s+(\S+)\s*$/i.exec(header);
  const token = match?.[1];
  if (token === undefined) return { ok: false, reply: unauthorized('Not authenticated') };

  const verified = deps.tokens.verify(token);
  if (!verified.ok) {
    if (deps.tokens.refreshGrant(token) !== undefined) {
      return { ok: false, reply: unauthorized('Refresh tokens cannot be used as access tokens') };
    }
    return { ok: false, reply: unauthorized(verified.reason === 'expired' ? 'Token has expired' : 'Invalid token') };
  }

  const issues = validate(querySchema, call.query, ['query']);
  if (issues.length > 0) return { ok: false, reply: invalid(issues) };

  const grant = verified.grant;
  const asked = call.query['account_id'];
  const accountId = asked === undefined ? grant.defaultAccountId : Number(asked);
  if (!grant.accounts.includes(accountId) || !deps.store.hasAccount(accountId)) {
    return { ok: false, reply: forbidden(`Account ${accountId} is not accessible with this token`) };
  }
  return { ok: true, accountId };
}
