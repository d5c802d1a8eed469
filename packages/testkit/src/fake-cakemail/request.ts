// The request as the route handlers see it, and what they share.

import type { IncomingHttpHeaders } from 'node:http';
import { invalidOne, type Reply } from './errors.js';
import type { Store } from './store.js';
import type { Tokens } from './tokens.js';

export type Body =
  | { kind: 'none' }
  | { kind: 'json'; value: unknown }
  | { kind: 'form'; value: Record<string, string> }
  | { kind: 'bad-json'; error: string; text: string }
  | { kind: 'other'; contentType: string };

export interface Call {
  query: Record<string, string>;
  headers: IncomingHttpHeaders;
  body: Body;
}

export interface Deps {
  store: Store;
  tokens: Tokens;
  tokenTtlSeconds: number;
  mfaChallengeStatus: 200 | 401;
  nowSeconds: () => number;
}

/** Parse a body by its content type; never throws. */
export function parseBody(raw: Buffer, contentType: string | undefined): Body {
  if (raw.length === 0) return { kind: 'none' };
  const type = (contentType ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
  const text = raw.toString('utf8');
  if (type === 'application/x-www-form-urlencoded') {
    return { kind: 'form', value: Object.fromEntries(new URLSearchParams(text)) };
  }
  if (type === 'application/json' || type.endsWith('+json')) {
    try {
      return { kind: 'json', value: JSON.parse(text) as unknown };
    } catch (err) {
      return { kind: 'bad-json', error: err instanceof Error ? err.message : String(err), text };
    }
  }
  return { kind: 'other', contentType: type };
}

/** The JSON body of a call, or the 422 FastAPI answers when there is none. */
export function jsonBody(call: Call): { ok: true; value: unknown } | { ok: false; reply: Reply } {
  const body = call.body;
  switch (body.kind) {
    case 'json':
      return { ok: true, value: body.value };
    case 'none':
      return { ok: false, reply: invalidOne(['body'], 'field required', 'value_error.missing') };
    case 'bad-json':
      return { ok: false, reply: invalidOne(['body', 0], `Invalid JSON: ${body.error}`, 'value_error.jsondecode') };
    default:
      return { ok: false, reply: invalidOne(['body'], 'value is not a valid dict (send application/json)', 'type_error.dict') };
  }
}
