// A small stateful Cakemail stand-in on the HTTP stub: users, tokens, senders, lists and sends,
// with per-recipient fault scripts. Enough for the relay tests.
import { okToken, startStub, type Stub, type StubAnswer, type StubRequest } from './stub-api.js';

export interface MiniUser {
  readonly username: string;
  readonly password: string;
  readonly accounts: number[];
  readonly mfa?: boolean;
}

export interface MiniCakemail {
  readonly stub: Stub;
  readonly url: string;
  readonly sends: { accountId: number; token: string; body: Record<string, unknown> }[];
  readonly lists: Map<number, { id: number; name: string }[]>;
  /** Scripted answers for the next sends to a recipient (consumed in order). */
  readonly faults: Map<string, StubAnswer[]>;
  maxInFlight: number;
  /** Tokens the API treats as expired (401). */
  readonly revoked: Set<string>;
  count(path: string, method?: string): number;
  close(): Promise<void>;
}

export const USER: MiniUser = { username: 'user@example.com', password: 'correct horse', accounts: [101, 202] };
export const SENDERS: Record<number, { id: string; name: string; email: string; confirmed: boolean }[]> = {
  101: [
    { id: 'snd-a', name: 'Alice', email: 'Alice@Example.com', confirmed: true },
    { id: 'snd-u', name: 'Unconfirmed', email: 'pending@example.com', confirmed: false },
  ],
  202: [{ id: 'snd-b', name: 'Bob', email: 'bob@example.org', confirmed: true }],
};

export async function startMiniCakemail(users: MiniUser[] = [USER]): Promise<MiniCakemail> {
  const tokens = new Map<string, number[]>();
  let issued = 0;
  let inFlight = 0;
  let nextId = 0;
  let nextList = 500;
  const mini: MiniCakemail = {
    stub: undefined as unknown as Stub,
    url: '',
    sends: [],
    lists: new Map(),
    faults: new Map(),
    maxInFlight: 0,
    revoked: new Set(),
    count: (path, method) => mini.stub.calls.filter((c) => c.path === path && (!method || c.method === method)).length,
    close: () => mini.stub.close(),
  };
  const issue = (accounts: number[]): StubAnswer => {
    const access = `tok-${++issued}`;
    tokens.set(access, accounts);
    return okToken(accounts, access);
  };
  const authz = (req: StubRequest): number[] | undefined => {
    const t = /^Bearer (.+)$/.exec(req.headers['authorization'] ?? '')?.[1];
    if (t === undefined || mini.revoked.has(t)) return undefined;
    return tokens.get(t);
  };
  const unauthorized: StubAnswer = { status: 401, json: { detail: [{ code: 401, msg: 'Token expired', type: 'unauthorized' }] } };

  const handler = async (req: StubRequest): Promise<StubAnswer> => {
    if (req.path === '/token') {
      const f = req.form();
      if (f.get('grant_type') === 'refresh_token') {
        const access = f.get('refresh_token')?.replace(/^refresh-/, '') ?? '';
        const accounts = tokens.get(access);
        return accounts ? issue(accounts) : unauthorized;
      }
      const user = users.find((u) => u.username === f.get('username') && u.password === f.get('password'));
      if (!user) return { status: 401, json: { detail: [{ code: 401, msg: 'Invalid credentials', type: 'unauthorized' }] } };
      if (user.mfa) return { status: 200, json: { challenge: 'c-1' } };
      return issue(user.accounts);
    }
    const accounts = authz(req);
    if (!accounts) return unauthorized;
    const accountId = Number(req.query.get('account_id'));
    if (!accounts.includes(accountId)) return { status: 403, json: { detail: [{ code: 403, msg: 'Forbidden account', type: 'forbidden' }] } };
    if (req.path === '/brands/default/senders') {
      return { status: 200, json: { pagination: { page: 1, per_page: 100, count: 0 }, data: SENDERS[accountId] ?? [] } };
    }
    if (req.path === '/lists' && req.method === 'GET') {
      const name = req.query.get('filter')?.replace(/^name==/, '');
      return { status: 200, json: { pagination: {}, data: (mini.lists.get(accountId) ?? []).filter((l) => l.name === name) } };
    }
    if (req.path === '/lists' && req.method === 'POST') {
      const { name } = req.json<{ name: string }>();
      const list = { id: ++nextList, name };
      mini.lists.set(accountId, [...(mini.lists.get(accountId) ?? []), list]);
      return { status: 201, json: { id: list.id, created: true, data: list } };
    }
    if (req.path === '/v2/emails') {
      const body = req.json<Record<string, unknown>>();
      const email = String(body['email']);
      inFlight++;
      mini.maxInFlight = Math.max(mini.maxInFlight, inFlight);
      await new Promise((r) => setTimeout(r, 5));
      inFlight--;
      const scripted = mini.faults.get(email)?.shift();
      if (scripted) return scripted;
      mini.sends.push({ accountId, token: req.headers['authorization'] ?? '', body });
      return { status: 201, json: { email, object: 'email', submitted: true, data: { id: `cm-${++nextId}`, status: 'queued' } } };
    }
    return { status: 404, json: { detail: [{ msg: 'not found' }] } };
  };
  const stub = await startStub(handler);
  Object.assign(mini, { stub, url: stub.url });
  return mini;
}
