// The fault switches over HTTP: POST /_fake/faults (arm one), GET (list), DELETE (clear).

import { SUBMIT_STATUSES } from '../enums.js';
import { json, type Reply } from '../errors.js';
import type { Fault, FaultSwitches, RouteKey } from '../types.js';

export const FAULT_ROUTES: readonly RouteKey[] = ['send', 'token', 'senders', 'lists', 'createList'];

const FIELDS = new Set(['route', 'status', 'body', 'headers', 'retryAfter', 'delayMs', 'reset', 'hang', 'sendStatus', 'times', 'match']);

/** Longest delay accepted over HTTP: ten minutes. */
const MAX_DELAY_MS = 600_000;

export class FaultInputError extends Error {}

/** Reads `{route, status, delayMs, reset, hang, times, …}`; throws FaultInputError naming the bad field. */
export function parseFaultInput(input: unknown): { route: RouteKey; fault: Fault } {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) throw new FaultInputError('expected a JSON object');
  const o = input as Record<string, unknown>;
  const unknown = Object.keys(o).filter((k) => !FIELDS.has(k));
  if (unknown.length > 0) throw new FaultInputError(`unknown field ${JSON.stringify(unknown[0])}; known: ${[...FIELDS].join(', ')}`);
  const route = o['route'];
  if (typeof route !== 'string' || !(FAULT_ROUTES as readonly string[]).includes(route)) {
    throw new FaultInputError(`route must be one of ${FAULT_ROUTES.join(', ')}`);
  }
  const fault: Fault = {};
  const int = (name: string, min: number, max: number): number | undefined => {
    const v = o[name];
    if (v === undefined) return undefined;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
      throw new FaultInputError(`${name} must be an integer from ${min} to ${max}`);
    }
    return v;
  };
  const bool = (name: string): boolean | undefined => {
    const v = o[name];
    if (v === undefined) return undefined;
    if (typeof v !== 'boolean') throw new FaultInputError(`${name} must be true or false`);
    return v;
  };
  const status = int('status', 100, 599);
  if (status !== undefined) fault.status = status;
  const retryAfter = int('retryAfter', 0, 86_400);
  if (retryAfter !== undefined) fault.retryAfter = retryAfter;
  const delayMs = int('delayMs', 0, MAX_DELAY_MS);
  if (delayMs !== undefined) fault.delayMs = delayMs;
  const times = int('times', 1, 1_000_000);
  if (times !== undefined) fault.times = times;
  if (bool('reset') === true) fault.reset = true;
  if (bool('hang') === true) fault.hang = true;
  if (o['body'] !== undefined) fault.body = o['body'];
  const headers = o['headers'];
  if (headers !== undefined) {
    if (typeof headers !== 'object' || headers === null || Array.isArray(headers) || Object.values(headers).some((v) => typeof v !== 'string')) {
      throw new FaultInputError('headers must be an object of strings');
    }
    fault.headers = headers as Record<string, string>;
  }
  const sendStatus = o['sendStatus'];
  if (sendStatus !== undefined) {
    if (sendStatus !== 'rejected' && sendStatus !== 'error') {
      throw new FaultInputError(`sendStatus must be one of ${SUBMIT_STATUSES.filter((s) => s !== 'queued').join(', ')}`);
    }
    fault.sendStatus = sendStatus;
  }
  const match = o['match'];
  if (match !== undefined) {
    const email = (match as { email?: unknown } | null)?.email;
    if (typeof match !== 'object' || match === null || typeof email !== 'string' || Object.keys(match).length !== 1) {
      throw new FaultInputError('match must be {"email": "<recipient>"}');
    }
    fault.match = { email };
  }
  if (fault.retryAfter !== undefined && fault.status === undefined) throw new FaultInputError('retryAfter needs a status');
  return { route: route as RouteKey, fault };
}

/** The answer to one /_fake/faults call; `changed` when the armed switches changed. */
export function faultsEndpoint(
  faults: FaultSwitches,
  method: string,
  params: URLSearchParams,
  body: unknown,
): { reply: Reply; changed: boolean } {
  const listed = (): unknown => ({ faults: faults.list() });
  if (method === 'GET') return { reply: json(200, listed()), changed: false };
  if (method === 'DELETE') {
    const route = params.get('route');
    if (route !== null && !(FAULT_ROUTES as readonly string[]).includes(route)) {
      return { reply: badInput(`route must be one of ${FAULT_ROUTES.join(', ')}`), changed: false };
    }
    faults.clear(route === null ? undefined : (route as RouteKey));
    return { reply: json(200, listed()), changed: true };
  }
  if (method === 'POST') {
    try {
      const { route, fault } = parseFaultInput(body);
      faults.add(route, fault);
    } catch (err) {
      // Faults' own checks (one action, sendStatus on send only) throw plain Errors
      const msg = err instanceof Error ? err.message.replace(/^fake-cakemail: /, '') : String(err);
      return { reply: badInput(msg), changed: false };
    }
    return { reply: json(201, listed()), changed: true };
  }
  return { reply: { status: 405, body: { detail: [{ msg: 'use GET, POST or DELETE', type: 'method_not_allowed' }] }, headers: { allow: 'GET, POST, DELETE' } }, changed: false };
}

function badInput(msg: string): Reply {
  return json(400, { detail: [{ msg: `bad fault: ${msg}`, type: 'bad_request' }] });
}
