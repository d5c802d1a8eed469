/**
 * The API's answers checked against the spec (cakemail-openapi.json): a body that is not what
 * the spec says is a temporary failure (`invalid_response`), never trusted.
 */
import { z } from 'zod';
import type { TokenResult } from './client.js';
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
export const sendSchema = z.object({ data: z.object({ id: z.union([z.string(), z.number()]).transform(String), status: z.enum(['queued', 'rejected', 'error']) }) });

/** A `POST /token` answer: `{challenge}` (MFA) throws CakemailMfaError. */
export function parseToken(body: unknown): TokenResult {
  if (isChallenge(body)) throw new CakemailMfaError();
  const t = validate(tokenSchema, body, 'POST /token');
  return { accessToken: t.access_token, refreshToken: t.refresh_token, expiresIn: t.expires_in, accounts: t.accounts };
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
