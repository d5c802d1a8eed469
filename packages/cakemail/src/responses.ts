/**
 * The API's answers checked against the spec (cakemail-openapi.json): a body that is not what
 * the spec says is a temporary failure (`invalid_response`), never trusted.
 */
import { z } from 'zod';
import type { SendResult, TokenResult } from './client.js';
import { CakemailError, CakemailMfaError } from './errors.js';

const tokenSchema = z.object({
  access_token: z.string().min(1),
  token_type: z.string().optional(),
  expires_in: z.number(),
  refresh_token: z.string().min(1),
  accounts: z.array(z.number().int()),
});
const challengeSchema = z.object({ challenge: z.string() });

/** POST /token's MFA answer: `{challenge}`. */
export function isChallenge(body: unknown): boolean {
  return challengeSchema.safeParse(body).success;
}

const pagination = z.object({ page: z.number().optional(), per_page: z.number().optional(), count: z.number().optional() }).optional();
export const sendersSchema = z.object({
  pagination,
  data: z.array(z.object({ id: z.union([z.string(), z.number()]).transform(String), name: z.string().nullish(), email: z.string(), confirmed: z.boolean() })),
});
export const listsSchema = z.object({ pagination, data: z.array(z.object({ id: z.number().int(), name: z.string() })) });
export const createListSchema = z.object({ id: z.number().int() });

/** A `POST /token` answer: `{challenge}` (MFA) throws CakemailMfaError. */
export function parseToken(body: unknown): TokenResult {
  if (isChallenge(body)) throw new CakemailMfaError();
  const t = validate(tokenSchema, body, 'POST /token');
  return { accessToken: t.access_token, refreshToken: t.refresh_token, expiresIn: t.expires_in, accounts: t.accounts };
}

const SEND_STATUSES: ReadonlySet<unknown> = new Set(['queued', 'rejected', 'error']);

/**
 * A `POST /v2/emails` answer, `{data: {id, status}}` (id a string or a number, answered as a
 * string; other keys ignored), else a temporary `invalid_response` error. Checked by hand: it
 * runs once per recipient, and accepts exactly what
 * `z.object({ data: z.object({ id: z.union([z.string(), z.number()]), status: z.enum([...]) }) })`
 * accepts (test/responses.test.ts compares both).
 */
export function parseSendAnswer(body: unknown): SendResult {
  const data = isRecord(body) ? body['data'] : undefined;
  if (isRecord(data)) {
    const { id, status } = data;
    if ((typeof id === 'string' || (typeof id === 'number' && Number.isFinite(id))) && SEND_STATUSES.has(status)) {
      return { id: String(id), status: status as SendResult['status'] };
    }
  }
  throw new CakemailError('temporary', 'Cakemail POST /v2/emails answered with an unexpected body', { reason: 'invalid_response' });
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** `body` as `schema` says, else a temporary `invalid_response` error naming the call. */
export function validate<T>(schema: z.ZodType<T>, body: unknown, name: string): T {
  const r = schema.safeParse(body);
  if (!r.success) {
    throw new CakemailError('temporary', `Cakemail ${name} answered with an unexpected body`, { reason: 'invalid_response' });
  }
  return r.data;
}

/** The JSON of a response text; undefined when empty or not JSON. */
export function parseJson(text: string): unknown {
  if (!text) return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}
