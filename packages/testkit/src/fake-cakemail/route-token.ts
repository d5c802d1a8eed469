// POST /token: password and refresh_token grants, MFA challenge.

import { randomUUID } from 'node:crypto';
import { forbidden, invalid, invalidOne, json, unauthorized, type Reply } from './errors.js';
import type { Call, Deps } from './request.js';
import { tokenForm } from './schemas.js';
import { validate } from './validate.js';

export function handleToken(call: Call, deps: Deps): Reply {
  // Form fields only; a JSON body leaves every field missing, as FastAPI's Form() does.
  const form = call.body.kind === 'form' ? call.body.value : {};
  const issues = validate(tokenForm, form, ['body']);
  if (issues.length > 0) return invalid(issues);

  const ttlSeconds = form['expiration_seconds'] === undefined ? deps.tokenTtlSeconds : Number(form['expiration_seconds']);

  if ((form['grant_type'] ?? 'password') === 'refresh_token') {
    const refreshToken = form['refresh_token'];
    if (refreshToken === undefined) return invalidOne(['body', 'refresh_token'], 'field required', 'value_error.missing');
    const grant = deps.tokens.refreshGrant(refreshToken);
    if (grant === undefined) return unauthorized('Invalid refresh token');
    return json(200, deps.tokens.issue({ ...grant, ttlSeconds }, refreshToken));
  }

  const username = form['username'];
  const password = form['password'];
  const missing = [
    ...(username === undefined ? ['username'] : []),
    ...(password === undefined ? ['password'] : []),
  ].map((field) => ({ loc: ['body', field], msg: 'field required', type: 'value_error.missing' }));
  if (username === undefined || password === undefined) return invalid(missing);

  const user = deps.store.user(username);
  if (user === undefined || user.password !== password) return unauthorized('Incorrect username or password');
  if (user.mfa === true) return json(deps.mfaChallengeStatus, { challenge: randomUUID() });

  const asked = form['account_id'];
  const defaultAccountId = asked === undefined ? user.accounts[0] : Number(asked);
  if (defaultAccountId === undefined || !user.accounts.includes(defaultAccountId)) {
    return forbidden(`Account ${asked ?? ''} is not accessible by this user`);
  }
  return json(200, deps.tokens.issue({ userEmail: user.email, accounts: user.accounts, defaultAccountId, ttlSeconds }));
}
