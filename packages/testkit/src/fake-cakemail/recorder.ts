// What the fake remembers: calls (full mode), counts per route (always) and accepted emails.

import type { IncomingHttpHeaders } from 'node:http';
import type { CountKey, RecordedCall, SentEmail } from './types.js';

const SECRET_FIELDS = ['password', 'refresh_token', 'access_token'];

const zeroCounts = (): Record<CountKey, number> => ({
  token: 0,
  senders: 0,
  lists: 0,
  createList: 0,
  send: 0,
  other: 0,
});

export class Recorder {
  readonly calls: RecordedCall[] = [];
  readonly sentEmails: SentEmail[] = [];
  private countsByRoute = zeroCounts();
  private seq = 0;

  constructor(readonly full: boolean) {}

  count(route: CountKey): void {
    this.countsByRoute[route] += 1;
  }

  counts(): Record<CountKey, number> {
    return { ...this.countsByRoute };
  }

  nextSeq(): number {
    this.seq += 1;
    return this.seq;
  }

  /** Callers skip building the call at all in counts mode. */
  record(call: RecordedCall): void {
    this.calls.push(call);
  }

  sent(email: SentEmail): void {
    if (this.full) this.sentEmails.push(email);
  }

  /** Clears in place, so arrays handed out earlier stay live. */
  reset(): void {
    this.calls.length = 0;
    this.sentEmails.length = 0;
    this.countsByRoute = zeroCounts();
    this.seq = 0;
  }
}

export function redactHeaders(headers: IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    out[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  const auth = out['authorization'];
  if (auth !== undefined) out['authorization'] = /^bearer\s/i.test(auth) ? 'Bearer ***' : '***';
  return out;
}

export function redactBody(body: unknown): unknown {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return body;
  const copy: Record<string, unknown> = { ...(body as Record<string, unknown>) };
  for (const field of SECRET_FIELDS) if (field in copy) copy[field] = '***';
  return copy;
}
