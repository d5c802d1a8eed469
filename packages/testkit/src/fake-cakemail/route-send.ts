// POST /v2/emails: schema, then the account's confirmed sender and list.

import { randomUUID } from 'node:crypto';
import { authorize } from './auth.js';
import { invalid, invalidOne, json, type Reply } from './errors.js';
import { jsonBody, type Call, type Deps } from './request.js';
import { accountQuery, submitEmailBody } from './schemas.js';
import type { SubmitEmailBody, SubmitStatus } from './types.js';
import { validate } from './validate.js';

export interface SendResult {
  reply: Reply;
  accepted?: { id: string; accountId: number; status: SubmitStatus; body: SubmitEmailBody };
}

export function handleSend(call: Call, deps: Deps, status: SubmitStatus = 'queued'): SendResult {
  const auth = authorize(call, deps, accountQuery);
  if (!auth.ok) return { reply: auth.reply };
  const parsed = jsonBody(call);
  if (!parsed.ok) return { reply: parsed.reply };
  const issues = validate(submitEmailBody, parsed.value, ['body']);
  if (issues.length > 0) return { reply: invalid(issues) };

  // The spec makes `email` and `list_id` optional (a contact_id can stand in), but the
  // gateway always sends one recipient address to a list, so the fake requires both.
  const body = parsed.value as Partial<SubmitEmailBody>;
  if (body.email === undefined) {
    const msg = body.contact_id === undefined ? 'field required' : 'field required (the fake does not resolve contact_id)';
    return { reply: invalidOne(['body', 'email'], msg, 'value_error.missing') };
  }
  if (body.list_id === undefined) {
    return { reply: invalidOne(['body', 'list_id'], 'field required (a list is needed to send with the Email API)', 'value_error.missing') };
  }
  const email = body as SubmitEmailBody;

  const sender = deps.store.sendersOf(auth.accountId).find((s) => s.id === email.sender.id);
  if (sender === undefined) {
    return {
      reply: invalidOne(['body', 'sender', 'id'], `Sender ${email.sender.id} not found in account ${auth.accountId}`, 'value_error.not_found'),
    };
  }
  if (!sender.confirmed) {
    return {
      reply: invalidOne(['body', 'sender', 'id'], `Sender ${sender.id} (${sender.email}) is not confirmed`, 'value_error.sender_not_confirmed'),
    };
  }
  if (!deps.store.listsOf(auth.accountId).some((l) => l.id === email.list_id)) {
    return {
      reply: invalidOne(['body', 'list_id'], `List ${email.list_id} not found in account ${auth.accountId}`, 'value_error.not_found'),
    };
  }

  const id = randomUUID();
  return {
    reply: json(201, { email: email.email, object: 'email', submitted: true, data: { id, status } }),
    accepted: { id, accountId: auth.accountId, status, body: email },
  };
}
