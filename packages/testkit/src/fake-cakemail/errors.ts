// Spec-shaped error answers: every error body is `{ detail: [...] }`.
//   401 UnauthorizedMessage {code?, msg, type: "unauthorized"}
//   403 ForbiddenMessage    {code?, msg, type: "forbidden"}
//   400 BadRequestMessage   {loc?, msg, type: "bad_request"}
//   422 ValidationError     {loc, msg, type}

import type { Issue, Loc } from './validate.js';

export interface Reply {
  status: number;
  body: unknown;
  headers?: Readonly<Record<string, string>>;
}

export const json = (status: number, body: unknown): Reply => ({ status, body });

export const unauthorized = (msg: string): Reply => ({
  status: 401,
  body: { detail: [{ code: 401, msg, type: 'unauthorized' }] },
  headers: { 'www-authenticate': 'Bearer' },
});

export const forbidden = (msg: string): Reply => json(403, { detail: [{ code: 403, msg, type: 'forbidden' }] });

export const badRequest = (msg: string, loc?: Loc): Reply =>
  json(400, { detail: [{ ...(loc === undefined ? {} : { loc }), msg, type: 'bad_request' }] });

export const invalid = (issues: Issue[]): Reply => json(422, { detail: issues });

export const invalidOne = (loc: Loc, msg: string, type: string): Reply => invalid([{ loc, msg, type }]);

const STATUS_TEXT: Readonly<Record<number, string>> = {
  400: 'Bad Request',
  404: 'Not Found',
  405: 'Method Not Allowed',
  413: 'Request body too large',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
};

/** The body a fault answers when it names only a status. */
export function defaultFaultReply(status: number): Reply {
  const text = STATUS_TEXT[status] ?? `HTTP ${status}`;
  if (status === 401) return unauthorized('Fault injected: unauthorized');
  if (status === 403) return forbidden('Fault injected: forbidden');
  if (status === 400) return badRequest('Fault injected: bad request');
  if (status === 422) return invalidOne(['body'], 'Fault injected: validation error', 'value_error');
  return json(status, { detail: [{ msg: `Fault injected: ${text}`, type: status === 429 ? 'rate_limited' : 'server_error' }] });
}

export const notFound = (): Reply => json(404, { detail: [{ msg: 'Not Found', type: 'not_found' }] });

export const methodNotAllowed = (): Reply => json(405, { detail: [{ msg: 'Method Not Allowed', type: 'method_not_allowed' }] });

export const tooLarge = (max: number): Reply =>
  json(413, { detail: [{ msg: `Request body too large (limit ${max} bytes)`, type: 'bad_request' }] });
