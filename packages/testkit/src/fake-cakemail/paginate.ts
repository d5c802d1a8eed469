// The spec's paging: `page` (default 1), `per_page` (default 50), `with_count` (default false),
// `sort` as `[-|+]term`. Answers `{ pagination: { page, per_page, count? }, data }`.

import { badRequest, type Reply } from './errors.js';
import { parseBool } from './validate.js';

export interface Page<T> {
  pagination: { page: number; per_page: number; count?: number };
  data: T[];
}

/** Sort by a `[-|+]term` (400 for a term not in `terms`), then cut the asked page. */
export function paginate<T>(
  items: readonly T[],
  query: Record<string, string>,
  terms: Readonly<Record<string, (item: T) => string | number | boolean>>,
): { ok: true; page: Page<T> } | { ok: false; reply: Reply } {
  let sorted = items;
  const sort = query['sort'];
  if (sort !== undefined) {
    const m = /^([-+]?)(\w+)$/.exec(sort.trim());
    const key = m?.[2] === undefined ? undefined : terms[m[2]];
    if (m === null || key === undefined) {
      return { ok: false, reply: badRequest(`Invalid sort term: ${sort}; valid terms: ${Object.keys(terms).join(', ')}`, ['query', 'sort']) };
    }
    const sign = m[1] === '-' ? -1 : 1;
    sorted = [...items].sort((a, b) => {
      const x = key(a);
      const y = key(b);
      return x < y ? -sign : x > y ? sign : 0;
    });
  }
  const page = query['page'] === undefined ? 1 : Number(query['page']);
  const perPage = query['per_page'] === undefined ? 50 : Number(query['per_page']);
  const withCount = query['with_count'] !== undefined && parseBool(query['with_count']);
  const data = sorted.slice((page - 1) * perPage, page * perPage);
  return {
    ok: true,
    page: { pagination: { page, per_page: perPage, ...(withCount ? { count: sorted.length } : {}) }, data },
  };
}
