// The hand check of `POST /v2/emails` answers against the zod schema it stands for.
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { parseSendAnswer } from '../src/responses.js';

/** What the check stands for (the spec's EmailResponse, as the client reads it). */
const sendSchema = z.object({
  data: z.object({ id: z.union([z.string(), z.number()]).transform(String), status: z.enum(['queued', 'rejected', 'error']) }),
});

const ids: unknown[] = ['uuid-1', '', 7, 0, -1.5, Number.NaN, Number.POSITIVE_INFINITY, null, undefined, true, {}, [], ['x'], 12n];
const statuses: unknown[] = ['queued', 'rejected', 'error', 'QUEUED', 'sent', '', null, undefined, 1, ['queued']];
const corpus: unknown[] = [
  undefined,
  null,
  'queued',
  42,
  [],
  [{ data: { id: 'a', status: 'queued' } }],
  {},
  { data: null },
  { data: [] },
  { data: 'x' },
  { data: [{ id: 'a', status: 'queued' }] },
  { data: { id: 'a', status: 'queued', extra: 1 }, more: true },
  { data: { status: 'queued' } },
  { data: { id: 'a' } },
  Object.assign(Object.create(null) as object, { data: { id: 'a', status: 'queued' } }),
  JSON.parse('{"data":{"id":"a","status":"queued","__proto__":{"x":1}}}') as unknown,
];
for (const id of ids) for (const status of statuses) corpus.push({ data: { id, status } });

describe('parseSendAnswer', () => {
  it.each(corpus.map((body) => [body]))('agrees with the zod schema on %o', (body) => {
    const expected = sendSchema.safeParse(body);
    if (expected.success) {
      expect(parseSendAnswer(body)).toEqual({ id: expected.data.data.id, status: expected.data.data.status });
    } else {
      expect(() => parseSendAnswer(body)).toThrow(expect.objectContaining({ kind: 'temporary', reason: 'invalid_response' }));
    }
  });
});
