// GET /brands/default/senders

import { authorize } from './auth.js';
import { json, type Reply } from './errors.js';
import { paginate } from './paginate.js';
import type { Call, Deps } from './request.js';
import { pagedQuery } from './schemas.js';
import type { SenderRecord } from './types.js';

/** SenderFullResponse; `confirmed_on` only once confirmed. */
export const senderJson = (s: SenderRecord) => ({
  id: s.id,
  name: s.name,
  email: s.email,
  confirmed: s.confirmed,
  ...(s.confirmedOn === undefined ? {} : { confirmed_on: s.confirmedOn }),
  language: s.language,
});

export function handleSenders(call: Call, deps: Deps): Reply {
  const auth = authorize(call, deps, pagedQuery);
  if (!auth.ok) return auth.reply;
  const paged = paginate(deps.store.sendersOf(auth.accountId), call.query, {
    name: (s) => s.name,
    email: (s) => s.email,
    confirmed: (s) => s.confirmed,
  });
  if (!paged.ok) return paged.reply;
  return json(200, { pagination: paged.page.pagination, data: paged.page.data.map(senderJson) });
}
