// GET /lists (filter, paging) and POST /lists.

import { authorize } from './auth.js';
import { badRequest, invalid, invalidOne, json, type Reply } from './errors.js';
import { paginate } from './paginate.js';
import { jsonBody, type Call, type Deps } from './request.js';
import { accountQuery, createListBody, pagedQuery } from './schemas.js';
import type { ListRecord, SenderRecord } from './types.js';
import { validate } from './validate.js';

const FILTER_TERMS = ['name', 'status'] as const;
type FilterTerm = (typeof FILTER_TERMS)[number];

/** `term==value` joined by `;`, terms `name` and `status`. */
function parseFilter(filter: string): Map<FilterTerm, string> | undefined {
  const out = new Map<FilterTerm, string>();
  for (const part of filter.split(';')) {
    if (part === '') continue;
    const at = part.indexOf('==');
    const term = part.slice(0, at).trim();
    if (at < 0 || !(FILTER_TERMS as readonly string[]).includes(term)) return undefined;
    out.set(term as FilterTerm, part.slice(at + 2));
  }
  return out;
}

function senderOf(list: ListRecord, senders: readonly SenderRecord[]): { name?: string; email?: string } {
  const s = senders.find((x) => x.id === list.defaultSenderId);
  return s === undefined ? {} : { name: s.name, email: s.email };
}

/** ListSummaryResponse. */
const listSummary = (l: ListRecord, senders: readonly SenderRecord[]) => ({
  id: l.id,
  name: l.name,
  status: l.status,
  language: l.language,
  created_on: l.createdOn,
  default_sender: senderOf(l, senders),
});

/** ListFullResponse. */
const listFull = (l: ListRecord, senders: readonly SenderRecord[]) => ({
  ...listSummary(l, senders),
  policy_accepted: false,
  redirections: {},
  pages: {},
  webhook: {},
});

export function handleLists(call: Call, deps: Deps): Reply {
  const auth = authorize(call, deps, pagedQuery);
  if (!auth.ok) return auth.reply;

  let lists = deps.store.listsOf(auth.accountId);
  const filter = call.query['filter'];
  if (filter !== undefined) {
    const terms = parseFilter(filter);
    if (terms === undefined) {
      return badRequest(`Invalid filter: ${filter}; valid terms: name, status; operator: ==`, ['query', 'filter']);
    }
    lists = lists.filter((l) => [...terms].every(([term, value]) => l[term] === value));
  }
  const paged = paginate(lists, call.query, { name: (l) => l.name, created_on: (l) => l.createdOn });
  if (!paged.ok) return paged.reply;
  const senders = deps.store.sendersOf(auth.accountId);
  return json(200, { pagination: paged.page.pagination, data: paged.page.data.map((l) => listSummary(l, senders)) });
}

export function handleCreateList(call: Call, deps: Deps): Reply {
  const auth = authorize(call, deps, accountQuery);
  if (!auth.ok) return auth.reply;
  const body = jsonBody(call);
  if (!body.ok) return body.reply;
  const issues = validate(createListBody, body.value, ['body']);
  if (issues.length > 0) return invalid(issues);

  const input = body.value as { name: string; default_sender: { id: string }; language?: string };
  const senders = deps.store.sendersOf(auth.accountId);
  const senderId = input.default_sender.id;
  const sender = senders.find((s) => s.id === senderId);
  if (sender === undefined) {
    return invalidOne(['body', 'default_sender', 'id'], `Sender ${senderId} not found in account ${auth.accountId}`, 'value_error.not_found');
  }
  if (!sender.confirmed) {
    return invalidOne(['body', 'default_sender', 'id'], `Sender ${senderId} is not confirmed`, 'value_error.sender_not_confirmed');
  }
  const list = deps.store.addList(auth.accountId, {
    name: input.name,
    defaultSenderId: senderId,
    ...(input.language === undefined ? {} : { language: input.language }),
  });
  return json(201, { id: list.id, created: true, data: listFull(list, senders) });
}
