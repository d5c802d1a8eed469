/** The gateway's control headers (`x-sender-id`, `x-account-id`, `x-tags`, …), read and validated. */
import { CakemailReplies, Refusals } from '../replies.js';
import type { EmailTracking, EmailType } from '../types.js';

/** The control headers, validated. */
export interface MessageOptions {
  readonly senderId?: string;
  readonly accountId?: number;
  readonly listId?: number;
  readonly type: EmailType;
  readonly tags?: readonly string[];
  readonly tracking?: EmailTracking;
}

const TAG = /^[a-zA-Z0-9_-]{1,255}$/;
/** The control headers that select one thing (all but `x-tags`, whose values are merged). */
const SINGLE_CONTROL_HEADERS = [
  'x-sender-id',
  'x-account-id',
  'x-list-id',
  'x-email-api-type',
  'x-track-opens',
  'x-track-clicks-html',
  'x-track-clicks-text',
] as const;

/**
 * Reads `x-sender-id`, `x-account-id`, `x-list-id`, `x-email-api-type`, `x-tags` and
 * `x-track-*`. Throws `S554_AMBIGUOUS_HEADER` (one of them but `x-tags` present more than once,
 * empty ones included: the gateway never guesses which one was meant), `S550_BAD_TAG`,
 * `S550_ACCOUNT_NOT_ALLOWED` (not a number) or `S550_BAD_CONTROL_HEADER`. `x-tags` may appear
 * many times: its tags are merged.
 */
export function readControlHeaders(control: ReadonlyMap<string, readonly string[]>, defaultType: EmailType): MessageOptions {
  for (const name of SINGLE_CONTROL_HEADERS) {
    const count = control.get(name)?.length ?? 0;
    if (count > 1) throw Refusals.ambiguousHeader(name, count);
  }
  const one = (name: string): string | undefined => {
    const v = control.get(name)?.[0];
    return v === undefined || v === '' ? undefined : v;
  };
  const bad = (name: string, why: string): never => {
    throw Refusals.badControlHeader(name, why);
  };
  const opts: { -readonly [K in keyof MessageOptions]: MessageOptions[K] } = { type: defaultType };

  const senderId = one('x-sender-id');
  if (senderId !== undefined) opts.senderId = senderId;

  const account = one('x-account-id');
  if (account !== undefined) {
    if (!/^\d{1,15}$/.test(account) || Number(account) < 1) throw CakemailReplies.S550_ACCOUNT_NOT_ALLOWED;
    opts.accountId = Number(account);
  }

  const list = one('x-list-id');
  if (list !== undefined) {
    if (!/^\d{1,15}$/.test(list) || Number(list) < 1) bad('x-list-id', 'expected a list id (a positive number)');
    opts.listId = Number(list);
  }

  const type = one('x-email-api-type')?.toLowerCase();
  if (type !== undefined) {
    if (type !== 'marketing' && type !== 'transactional') bad('x-email-api-type', 'expected marketing or transactional');
    opts.type = type as EmailType;
  }

  const rawTags = control.get('x-tags');
  if (rawTags) {
    const tags = new Set<string>();
    for (const tag of rawTags.flatMap((v) => v.split(',')).map((t) => t.trim())) {
      if (tag === '') continue;
      if (!TAG.test(tag)) {
        throw Refusals.badTag(tag);
      }
      tags.add(tag);
    }
    if (tags.size > 0) opts.tags = [...tags];
  }

  const tracking: { opens?: boolean; clicks_html?: boolean; clicks_text?: boolean } = {};
  for (const [header, field] of [
    ['x-track-opens', 'opens'],
    ['x-track-clicks-html', 'clicks_html'],
    ['x-track-clicks-text', 'clicks_text'],
  ] as const) {
    const v = one(header)?.toLowerCase();
    if (v === undefined) continue;
    if (v !== 'true' && v !== 'false') bad(header, 'expected true or false');
    tracking[field] = v === 'true';
  }
  if (Object.keys(tracking).length > 0) opts.tracking = tracking;
  return opts;
}
