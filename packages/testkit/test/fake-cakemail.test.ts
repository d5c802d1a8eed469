import { request as httpRequest } from 'node:http';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  createFakeCakemail,
  DEFAULT_ACCOUNT_ID,
  DEFAULT_SENDER,
  DEFAULT_USER,
  MFA_USER,
  MULTI_ACCOUNT_USER,
  OTHER_ACCOUNT_ID,
  OTHER_ACCOUNT_SENDER,
  UNCONFIRMED_SENDER,
  type FakeCakemail,
  type FakeCakemailOptions,
} from '../src/fake-cakemail/index.js';

// ---- helpers -------------------------------------------------------------------

interface TokenBody {
  access_token: string;
  token_type: string;
  expires_in: number;
  refresh_token: string;
  accounts: number[];
}

interface Detail {
  loc?: (string | number)[];
  msg: string;
  type: string;
  code?: number;
}

interface Answer {
  status: number;
  headers: Headers;
  body: unknown;
}

let fake: FakeCakemail;
let url: string;

async function start(options?: FakeCakemailOptions): Promise<void> {
  fake = createFakeCakemail(options);
  url = await fake.listen();
}

afterEach(async () => {
  await fake.close();
});

async function answer(res: Response): Promise<Answer> {
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text === '' ? undefined : (JSON.parse(text) as unknown) };
}

function tokenCall(fields: Record<string, string>): Promise<Answer> {
  return fetch(`${url}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(fields).toString(),
  }).then(answer);
}

async function login(user: { email: string; password: string } = DEFAULT_USER, extra: Record<string, string> = {}): Promise<TokenBody> {
  const res = await tokenCall({ grant_type: 'password', username: user.email, password: user.password, ...extra });
  expect(res.status).toBe(200);
  return res.body as TokenBody;
}

interface ApiInit {
  token?: string;
  json?: unknown;
  rawBody?: string;
  contentType?: string;
  signal?: AbortSignal;
}

function api(method: string, path: string, init: ApiInit = {}): Promise<Answer> {
  const headers: Record<string, string> = {};
  if (init.token !== undefined) headers['authorization'] = `Bearer ${init.token}`;
  let body: string | undefined;
  if (init.json !== undefined) body = JSON.stringify(init.json);
  if (init.rawBody !== undefined) body = init.rawBody;
  if (body !== undefined) headers['content-type'] = init.contentType ?? 'application/json';
  return fetch(`${url}${path}`, {
    method,
    headers,
    ...(body === undefined ? {} : { body }),
    ...(init.signal === undefined ? {} : { signal: init.signal }),
  }).then(answer);
}

const details = (body: unknown): Detail[] => (body as { detail: Detail[] }).detail;

const data = <T>(body: unknown): T[] => (body as { data: T[] }).data;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

function validEmail(listId: number, recipient = 'rcpt@example.test'): Record<string, unknown> {
  return {
    sender: { id: DEFAULT_SENDER.id, name: 'Dev' },
    email: recipient,
    list_id: listId,
    content: { type: 'transactional', subject: 'Hello', text: 'Hi', html: '<p>Hi</p>', encoding: 'utf-8' },
  };
}

/** Ready to send: a logged-in token and a list in the default account. */
async function ready(): Promise<{ token: string; listId: number }> {
  const listId = fake.addList(DEFAULT_ACCOUNT_ID, { name: 'SMTP Gateway', defaultSenderId: DEFAULT_SENDER.id }).id;
  return { token: (await login()).access_token, listId };
}

// ---- POST /token ---------------------------------------------------------------

describe('POST /token', () => {
  beforeEach(() => start());

  it('grants a bearer token and a distinct refresh token for the seeded user', async () => {
    const res = await tokenCall({ grant_type: 'password', username: DEFAULT_USER.email, password: DEFAULT_USER.password });
    expect(res.status).toBe(200);
    const body = res.body as TokenBody;
    expect(body).toEqual({
      access_token: expect.any(String),
      token_type: 'bearer',
      expires_in: 3600,
      refresh_token: expect.any(String),
      accounts: [DEFAULT_ACCOUNT_ID],
    });
    expect(body.refresh_token).not.toBe(body.access_token);
  });

  it('honours expiration_seconds', async () => {
    expect((await login(DEFAULT_USER, { expiration_seconds: '600' })).expires_in).toBe(600);
  });

  it('treats a missing grant_type as password and the username case-insensitively', async () => {
    const res = await tokenCall({ username: 'DEV@Example.com', password: DEFAULT_USER.password });
    expect(res.status).toBe(200);
  });

  it.each([
    ['wrong password', { username: DEFAULT_USER.email, password: 'nope' }],
    ['unknown user', { username: 'nobody@example.com', password: DEFAULT_USER.password }],
  ])('answers 401 {detail:[{code,msg,type}]} for a %s', async (_name, fields) => {
    const res = await tokenCall({ grant_type: 'password', ...fields });
    expect(res.status).toBe(401);
    expect(res.body).toEqual({ detail: [{ code: 401, msg: 'Incorrect username or password', type: 'unauthorized' }] });
  });

  it.each([
    ['missing username', { password: 'x' }, ['body', 'username'], 'value_error.missing'],
    ['missing password', { username: DEFAULT_USER.email }, ['body', 'password'], 'value_error.missing'],
    ['username not an email', { username: 'dev', password: 'x' }, ['body', 'username'], 'value_error.email'],
    ['expiration_seconds < 600', { username: DEFAULT_USER.email, password: 'x', expiration_seconds: '599' }, ['body', 'expiration_seconds'], 'value_error.number.not_ge'],
    ['expiration_seconds not an integer', { username: DEFAULT_USER.email, password: 'x', expiration_seconds: 'soon' }, ['body', 'expiration_seconds'], 'type_error.integer'],
    ['unknown scope', { username: DEFAULT_USER.email, password: 'x', scopes: 'user,root' }, ['body', 'scopes'], 'value_error.str.regex'],
    ['unknown grant_type', { grant_type: 'client_credentials', username: DEFAULT_USER.email, password: 'x' }, ['body', 'grant_type'], 'type_error.enum'],
    ['account_id not an integer', { username: DEFAULT_USER.email, password: 'x', account_id: 'one' }, ['body', 'account_id'], 'type_error.integer'],
    ['refresh grant without refresh_token', { grant_type: 'refresh_token' }, ['body', 'refresh_token'], 'value_error.missing'],
  ])('answers 422 {detail:[{loc,msg,type}]} for %s', async (_name, fields, loc, type) => {
    const res = await tokenCall(fields);
    expect(res.status).toBe(422);
    expect(details(res.body)).toContainEqual({ loc, msg: expect.any(String), type });
  });

  it('reads form fields only: a JSON body is missing username and password', async () => {
    const res = await api('POST', '/token', { json: { username: DEFAULT_USER.email, password: DEFAULT_USER.password } });
    expect(res.status).toBe(422);
    expect(details(res.body).map((d) => d.loc)).toEqual([
      ['body', 'username'],
      ['body', 'password'],
    ]);
  });

  it('answers an MFA user with 200 {challenge} and no token', async () => {
    const res = await tokenCall({ username: MFA_USER.email, password: MFA_USER.password });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ challenge: expect.stringMatching(UUID) });
  });

  it('still answers 401 to an MFA user with a wrong password', async () => {
    expect((await tokenCall({ username: MFA_USER.email, password: 'nope' })).status).toBe(401);
  });

  it('answers 403 when account_id is not one of the user’s accounts', async () => {
    const res = await tokenCall({ username: DEFAULT_USER.email, password: DEFAULT_USER.password, account_id: String(OTHER_ACCOUNT_ID) });
    expect(res.status).toBe(403);
    expect(details(res.body)[0]).toMatchObject({ code: 403, type: 'forbidden' });
  });

  it('refreshes: a new access token that works, the same refresh token', async () => {
    const first = await login();
    const res = await tokenCall({ grant_type: 'refresh_token', refresh_token: first.refresh_token });
    expect(res.status).toBe(200);
    const second = res.body as TokenBody;
    expect(second.access_token).not.toBe(first.access_token);
    expect(second.refresh_token).toBe(first.refresh_token);
    expect(second.accounts).toEqual([DEFAULT_ACCOUNT_ID]);
    expect((await api('GET', '/brands/default/senders', { token: second.access_token })).status).toBe(200);
  });

  it('refuses an access token as a refresh token, and a refresh token as a bearer token', async () => {
    const t = await login();
    const refresh = await tokenCall({ grant_type: 'refresh_token', refresh_token: t.access_token });
    expect(refresh.status).toBe(401);
    expect(details(refresh.body)[0]).toMatchObject({ msg: 'Invalid refresh token', type: 'unauthorized' });
    const bearer = await api('GET', '/brands/default/senders', { token: t.refresh_token });
    expect(bearer.status).toBe(401);
    expect(details(bearer.body)[0]?.msg).toBe('Refresh tokens cannot be used as access tokens');
  });
});

describe('token expiry', () => {
  it('answers 401 once the access token is older than tokenTtlSeconds; refresh still works', async () => {
    let clock = 1_700_000_000_000;
    await start({ tokenTtlSeconds: 60, now: () => clock });
    const t = await login();
    expect(t.expires_in).toBe(60);
    clock += 59_000;
    expect((await api('GET', '/lists', { token: t.access_token })).status).toBe(200);
    clock += 1_000;
    const expired = await api('GET', '/lists', { token: t.access_token });
    expect(expired.status).toBe(401);
    expect(expired.body).toEqual({ detail: [{ code: 401, msg: 'Token has expired', type: 'unauthorized' }] });
    const refreshed = await tokenCall({ grant_type: 'refresh_token', refresh_token: t.refresh_token });
    expect((await api('GET', '/lists', { token: (refreshed.body as TokenBody).access_token })).status).toBe(200);
  });

  it('expireTokens() expires every access token issued so far', async () => {
    await start();
    const t = await login();
    fake.expireTokens();
    expect((await api('GET', '/lists', { token: t.access_token })).status).toBe(401);
    expect((await api('GET', '/lists', { token: (await login()).access_token })).status).toBe(200);
  });

  it('setPassword() changes a password at run time: the old one gets 401, the new one a token, issued tokens stay valid', async () => {
    await start();
    const before = await login();
    fake.setPassword(DEFAULT_USER.email.toUpperCase(), 'a-new-password');
    const old = await tokenCall({ grant_type: 'password', username: DEFAULT_USER.email, password: DEFAULT_USER.password });
    expect(old.status).toBe(401);
    expect(old.body).toEqual({ detail: [{ code: 401, msg: 'Incorrect username or password', type: 'unauthorized' }] });
    await login({ email: DEFAULT_USER.email, password: 'a-new-password' });
    expect((await api('GET', '/lists', { token: before.access_token })).status).toBe(200);
    expect((await tokenCall({ grant_type: 'refresh_token', refresh_token: before.refresh_token })).status).toBe(200);
    expect(() => fake.setPassword('nobody@example.com', 'x')).toThrow(/no user/);
  });

  it("revokeTokens() revokes one user's tokens: refresh and bearer get the spec's 401, other users keep theirs", async () => {
    await start();
    const mine = await login();
    const other = await login(MULTI_ACCOUNT_USER);
    expect(fake.revokeTokens(DEFAULT_USER.email)).toBe(1);
    const refresh = await tokenCall({ grant_type: 'refresh_token', refresh_token: mine.refresh_token });
    expect(refresh.status).toBe(401);
    expect(refresh.headers.get('www-authenticate')).toBe('Bearer');
    expect(refresh.body).toEqual({ detail: [{ code: 401, msg: 'Invalid refresh token', type: 'unauthorized' }] });
    const bearer = await api('GET', '/lists', { token: mine.access_token });
    expect(bearer.body).toEqual({ detail: [{ code: 401, msg: 'Invalid token', type: 'unauthorized' }] });
    expect((await api('GET', '/lists', { token: other.access_token })).status).toBe(200);
    expect((await tokenCall({ grant_type: 'refresh_token', refresh_token: other.refresh_token })).status).toBe(200);
    // the password still works: a new login gets new tokens
    expect((await api('GET', '/lists', { token: (await login()).access_token })).status).toBe(200);
  });

  it('answers the spec’s 401 challenge status when mfaChallengeStatus is 401', async () => {
    await start({ mfaChallengeStatus: 401 });
    const res = await tokenCall({ username: MFA_USER.email, password: MFA_USER.password });
    expect(res.status).toBe(401);
    expect(res.body).toEqual({ challenge: expect.any(String) });
  });
});

// ---- bearer and account checks ------------------------------------------------

describe('authorization on every route but /token', () => {
  beforeEach(() => start());

  const routes: [string, string, unknown][] = [
    ['GET', '/brands/default/senders', undefined],
    ['GET', '/lists', undefined],
    ['POST', '/lists', { name: 'x', default_sender: { id: '1' } }],
    ['POST', '/v2/emails', {}],
  ];

  it.each(routes)('%s %s answers 401 without a bearer token', async (method, path, json) => {
    const res = await api(method, path, { json });
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toBe('Bearer');
    expect(res.body).toEqual({ detail: [{ code: 401, msg: 'Not authenticated', type: 'unauthorized' }] });
  });

  it.each(routes)('%s %s answers 401 to an unknown token', async (method, path, json) => {
    const res = await api(method, path, { json, token: 'fake-at-made-up' });
    expect(res.status).toBe(401);
    expect(details(res.body)[0]?.msg).toBe('Invalid token');
  });

  it.each(routes)('%s %s answers 403 for an account the token does not cover', async (method, path, json) => {
    const t = await login();
    const res = await api(method, `${path}?account_id=${OTHER_ACCOUNT_ID}`, { json, token: t.access_token });
    expect(res.status).toBe(403);
    expect(res.body).toEqual({
      detail: [{ code: 403, msg: `Account ${OTHER_ACCOUNT_ID} is not accessible with this token`, type: 'forbidden' }],
    });
  });

  it('answers 422 for an account_id below 1', async () => {
    const t = await login();
    const res = await api('GET', '/lists?account_id=0', { token: t.access_token });
    expect(res.status).toBe(422);
    expect(details(res.body)[0]).toMatchObject({ loc: ['query', 'account_id'], type: 'value_error.number.not_ge' });
  });

  it('lets a user with two accounts pick one; without account_id the token’s default account is used', async () => {
    const t = await login(MULTI_ACCOUNT_USER);
    expect(t.accounts).toEqual([DEFAULT_ACCOUNT_ID, OTHER_ACCOUNT_ID]);
    const other = await api('GET', `/brands/default/senders?account_id=${OTHER_ACCOUNT_ID}`, { token: t.access_token });
    expect(data<{ email: string }>(other.body).map((s) => s.email)).toEqual([OTHER_ACCOUNT_SENDER.email]);
    const byDefault = await api('GET', '/brands/default/senders', { token: t.access_token });
    expect(data<{ email: string }>(byDefault.body).map((s) => s.email)).toEqual([DEFAULT_SENDER.email, UNCONFIRMED_SENDER.email]);

    const t2 = await login(MULTI_ACCOUNT_USER, { account_id: String(OTHER_ACCOUNT_ID) });
    const chosen = await api('GET', '/brands/default/senders', { token: t2.access_token });
    expect(data<{ email: string }>(chosen.body).map((s) => s.email)).toEqual([OTHER_ACCOUNT_SENDER.email]);
  });
});

// ---- senders -------------------------------------------------------------------

describe('GET /brands/default/senders', () => {
  beforeEach(() => start());

  it('lists the seeded senders in the spec shape', async () => {
    const t = await login();
    const res = await api('GET', `/brands/default/senders?account_id=${DEFAULT_ACCOUNT_ID}`, { token: t.access_token });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      pagination: { page: 1, per_page: 50 },
      data: [
        { id: '1', name: DEFAULT_SENDER.name, email: DEFAULT_SENDER.email, confirmed: true, confirmed_on: expect.any(Number), language: 'en_US' },
        { id: '2', name: UNCONFIRMED_SENDER.name, email: UNCONFIRMED_SENDER.email, confirmed: false, language: 'en_US' },
      ],
    });
  });

  it.each([
    ['page=1&per_page=3', ['1', '2', '4']],
    ['page=2&per_page=3', ['5', '6', '7']],
    ['page=3&per_page=3', ['8']],
    ['page=4&per_page=3', []],
    ['per_page=50', ['1', '2', '4', '5', '6', '7', '8']],
  ])('honours %s', async (qs, ids) => {
    for (let i = 0; i < 5; i++) fake.addSender(DEFAULT_ACCOUNT_ID, { name: `S${i}`, email: `s${i}@example.com`, confirmed: true });
    const t = await login();
    const res = await api('GET', `/brands/default/senders?${qs}`, { token: t.access_token });
    expect(data<{ id: string }>(res.body).map((s) => s.id)).toEqual(ids);
  });

  it('adds count with with_count=true', async () => {
    const t = await login();
    const res = await api('GET', '/brands/default/senders?with_count=true&per_page=1', { token: t.access_token });
    expect((res.body as { pagination: unknown }).pagination).toEqual({ page: 1, per_page: 1, count: 2 });
  });

  it('sorts by a [-|+]term and refuses an unknown term with 400', async () => {
    const t = await login();
    const sorted = await api('GET', '/brands/default/senders?sort=-email', { token: t.access_token });
    expect(data<{ email: string }>(sorted.body).map((s) => s.email)).toEqual([UNCONFIRMED_SENDER.email, DEFAULT_SENDER.email]);
    const bad = await api('GET', '/brands/default/senders?sort=created_on', { token: t.access_token });
    expect(bad.status).toBe(400);
    expect(details(bad.body)[0]).toMatchObject({ loc: ['query', 'sort'], type: 'bad_request' });
  });

  it.each([
    ['page=0', ['query', 'page'], 'value_error.number.not_ge'],
    ['per_page=lots', ['query', 'per_page'], 'type_error.integer'],
    ['with_count=maybe', ['query', 'with_count'], 'type_error.bool'],
  ])('answers 422 for %s', async (qs, loc, type) => {
    const t = await login();
    const res = await api('GET', `/brands/default/senders?${qs}`, { token: t.access_token });
    expect(res.status).toBe(422);
    expect(details(res.body)).toEqual([{ loc, msg: expect.any(String), type }]);
  });

  it('shows a sender confirmed at runtime', async () => {
    fake.confirmSender(DEFAULT_ACCOUNT_ID, UNCONFIRMED_SENDER.id);
    const t = await login();
    const res = await api('GET', '/brands/default/senders', { token: t.access_token });
    expect(data<{ confirmed: boolean }>(res.body).map((s) => s.confirmed)).toEqual([true, true]);
  });
});

// ---- lists ---------------------------------------------------------------------

describe('lists', () => {
  beforeEach(() => start());

  it('starts with no lists, creates one (201 spec shape) and finds it by name', async () => {
    const t = await login();
    const empty = await api('GET', '/lists', { token: t.access_token });
    expect(empty.body).toEqual({ pagination: { page: 1, per_page: 50 }, data: [] });

    const created = await api('POST', `/lists?account_id=${DEFAULT_ACCOUNT_ID}`, {
      token: t.access_token,
      json: { name: 'SMTP Gateway', default_sender: { id: DEFAULT_SENDER.id }, language: 'fr_CA' },
    });
    expect(created.status).toBe(201);
    const id = (created.body as { id: number }).id;
    expect(created.body).toEqual({
      id,
      created: true,
      data: {
        id,
        name: 'SMTP Gateway',
        status: 'active',
        policy_accepted: false,
        language: 'fr_CA',
        created_on: expect.any(Number),
        default_sender: { name: DEFAULT_SENDER.name, email: DEFAULT_SENDER.email },
        redirections: {},
        pages: {},
        webhook: {},
      },
    });
    expect(fake.lists(DEFAULT_ACCOUNT_ID).map((l) => l.name)).toEqual(['SMTP Gateway']);

    fake.addList(DEFAULT_ACCOUNT_ID, { name: 'Newsletter' });
    const found = await api('GET', `/lists?filter=${encodeURIComponent('name==SMTP Gateway')}`, { token: t.access_token });
    expect(data<{ id: number; name: string }>(found.body)).toEqual([
      { id, name: 'SMTP Gateway', status: 'active', language: 'fr_CA', created_on: expect.any(Number), default_sender: expect.any(Object) },
    ]);
    const raw = await api('GET', '/lists?filter=name==Newsletter;status==active', { token: t.access_token });
    expect(data<{ name: string }>(raw.body).map((l) => l.name)).toEqual(['Newsletter']);
    const none = await api('GET', '/lists?filter=name==smtp gateway', { token: t.access_token });
    expect(data(none.body)).toEqual([]);
  });

  it('keeps lists per account', async () => {
    fake.addList(OTHER_ACCOUNT_ID, { name: 'SMTP Gateway' });
    const t = await login(MULTI_ACCOUNT_USER);
    const mine = await api('GET', `/lists?account_id=${DEFAULT_ACCOUNT_ID}`, { token: t.access_token });
    const other = await api('GET', `/lists?account_id=${OTHER_ACCOUNT_ID}`, { token: t.access_token });
    expect(data(mine.body)).toHaveLength(0);
    expect(data(other.body)).toHaveLength(1);
  });

  it('pages lists', async () => {
    for (let i = 1; i <= 5; i++) fake.addList(DEFAULT_ACCOUNT_ID, { name: `L${i}` });
    const t = await login();
    const res = await api('GET', '/lists?page=2&per_page=2&with_count=1', { token: t.access_token });
    expect(res.body).toMatchObject({ pagination: { page: 2, per_page: 2, count: 5 } });
    expect(data<{ name: string }>(res.body).map((l) => l.name)).toEqual(['L3', 'L4']);
  });

  it('answers 400 to an unknown filter term', async () => {
    const t = await login();
    const res = await api('GET', '/lists?filter=owner==me', { token: t.access_token });
    expect(res.status).toBe(400);
    expect(details(res.body)[0]).toMatchObject({ loc: ['query', 'filter'], type: 'bad_request' });
  });

  it.each([
    ['no name', { default_sender: { id: '1' } }, ['body', 'name'], 'value_error.missing'],
    ['empty name', { name: '', default_sender: { id: '1' } }, ['body', 'name'], 'value_error.any_str.min_length'],
    ['no default_sender', { name: 'L' }, ['body', 'default_sender'], 'value_error.missing'],
    ['default_sender without id', { name: 'L', default_sender: {} }, ['body', 'default_sender', 'id'], 'value_error.missing'],
    ['numeric sender id', { name: 'L', default_sender: { id: 1 } }, ['body', 'default_sender', 'id'], 'type_error.str'],
    ['unknown sender', { name: 'L', default_sender: { id: '99' } }, ['body', 'default_sender', 'id'], 'value_error.not_found'],
    ['another account’s sender', { name: 'L', default_sender: { id: OTHER_ACCOUNT_SENDER.id } }, ['body', 'default_sender', 'id'], 'value_error.not_found'],
    ['unconfirmed sender', { name: 'L', default_sender: { id: UNCONFIRMED_SENDER.id } }, ['body', 'default_sender', 'id'], 'value_error.sender_not_confirmed'],
    ['unknown language', { name: 'L', default_sender: { id: '1' }, language: 'klingon' }, ['body', 'language'], 'type_error.enum'],
    ['not an object', ['L'], ['body'], 'type_error.dict'],
  ])('refuses a list with %s (422)', async (_name, json, loc, type) => {
    const t = await login();
    const res = await api('POST', '/lists', { token: t.access_token, json });
    expect(res.status).toBe(422);
    expect(details(res.body)).toEqual([{ loc, msg: expect.any(String), type }]);
    expect(fake.lists(DEFAULT_ACCOUNT_ID)).toHaveLength(0);
  });
});

// ---- POST /v2/emails -----------------------------------------------------------

describe('POST /v2/emails', () => {
  beforeEach(() => start());

  it('accepts a valid email: 201 {email, object, submitted, data:{id, status}} and records it', async () => {
    const { token, listId } = await ready();
    const body = validEmail(listId);
    const res = await api('POST', `/v2/emails?account_id=${DEFAULT_ACCOUNT_ID}`, { token, json: body });
    expect(res.status).toBe(201);
    expect(res.body).toEqual({ email: 'rcpt@example.test', object: 'email', submitted: true, data: { id: expect.stringMatching(UUID), status: 'queued' } });
    const sent = fake.sent();
    expect(sent).toEqual([
      { id: (res.body as { data: { id: string } }).data.id, accountId: DEFAULT_ACCOUNT_ID, status: 'queued', body, time: expect.any(String) },
    ]);
  });

  const mutate = (f: (b: Record<string, unknown>, c: Record<string, unknown>) => void) => (listId: number) => {
    const b = validEmail(listId);
    f(b, b['content'] as Record<string, unknown>);
    return b;
  };

  it.each([
    ['single attachment object', mutate((b) => (b['attachment'] = { filename: 'invite.ics', type: 'calendar', content: 'QUJD' }))],
    ['attachment list', mutate((b) => (b['attachment'] = [{ filename: 'a_b-1.pdf', type: 'pdf', content: 'QUI=' }, { filename: 'x.png', type: 'png', content: '' }]))],
    ['tags, tracking and headers', mutate((b) => {
      b['tags'] = ['smtp', 'a-b_C9', 'x'.repeat(255)];
      b['tracking'] = { opens: false, clicks_html: true, clicks_text: false };
      b['additional_headers'] = [{ name: 'Reply-To', value: 'r@example.test' }];
    })],
    ['marketing without html', mutate((_b, c) => {
      c['type'] = 'marketing';
      delete c['html'];
    })],
    ['unknown top-level field (the spec sets no additionalProperties)', mutate((b) => (b['unexpected'] = true))],
    ['sender without a name', mutate((b) => (b['sender'] = { id: '1' }))],
  ])('accepts %s', async (_name, make) => {
    const { token, listId } = await ready();
    const res = await api('POST', '/v2/emails', { token, json: make(listId) });
    expect(details(res.status === 201 ? { detail: [] } : res.body)).toEqual([]);
    expect(res.status).toBe(201);
  });

  it.each([
    ['no sender', mutate((b) => delete b['sender']), ['body', 'sender'], 'value_error.missing'],
    ['empty sender id', mutate((b) => (b['sender'] = { id: '' })), ['body', 'sender', 'id'], 'value_error.any_str.min_length'],
    ['numeric sender id', mutate((b) => (b['sender'] = { id: 1 })), ['body', 'sender', 'id'], 'type_error.str'],
    ['empty sender name', mutate((b) => (b['sender'] = { id: '1', name: '' })), ['body', 'sender', 'name'], 'value_error.any_str.min_length'],
    ['unknown sender', mutate((b) => (b['sender'] = { id: '99' })), ['body', 'sender', 'id'], 'value_error.not_found'],
    ['another account’s sender', mutate((b) => (b['sender'] = { id: OTHER_ACCOUNT_SENDER.id })), ['body', 'sender', 'id'], 'value_error.not_found'],
    ['unconfirmed sender', mutate((b) => (b['sender'] = { id: UNCONFIRMED_SENDER.id })), ['body', 'sender', 'id'], 'value_error.sender_not_confirmed'],
    ['no content', mutate((b) => delete b['content']), ['body', 'content'], 'value_error.missing'],
    ['no content type', mutate((_b, c) => delete c['type']), ['body', 'content', 'type'], 'value_error.missing'],
    ['content type newsletter', mutate((_b, c) => (c['type'] = 'newsletter')), ['body', 'content', 'type'], 'type_error.enum'],
    ['no subject', mutate((_b, c) => delete c['subject']), ['body', 'content', 'subject'], 'value_error.missing'],
    ['empty subject', mutate((_b, c) => (c['subject'] = '')), ['body', 'content', 'subject'], 'value_error.any_str.min_length'],
    ['empty html', mutate((_b, c) => (c['html'] = '')), ['body', 'content', 'html'], 'value_error.any_str.min_length'],
    ['empty text', mutate((_b, c) => (c['text'] = '')), ['body', 'content', 'text'], 'value_error.any_str.min_length'],
    ['encoding utf8', mutate((_b, c) => (c['encoding'] = 'utf8')), ['body', 'content', 'encoding'], 'type_error.enum'],
    ['no email', mutate((b) => delete b['email']), ['body', 'email'], 'value_error.missing'],
    ['email without @', mutate((b) => (b['email'] = 'rcpt.example.test')), ['body', 'email'], 'value_error.email'],
    ['email without a dot in the domain', mutate((b) => (b['email'] = 'rcpt@localhost')), ['body', 'email'], 'value_error.email'],
    ['two recipients in email', mutate((b) => (b['email'] = 'a@example.test, b@example.test')), ['body', 'email'], 'value_error.email'],
    ['no list_id', mutate((b) => delete b['list_id']), ['body', 'list_id'], 'value_error.missing'],
    ['list_id 0', mutate((b) => (b['list_id'] = 0)), ['body', 'list_id'], 'value_error.number.not_ge'],
    ['list_id as a string', mutate((b) => (b['list_id'] = '1')), ['body', 'list_id'], 'type_error.integer'],
    ['unknown list_id', mutate((b) => (b['list_id'] = 999)), ['body', 'list_id'], 'value_error.not_found'],
    ['tags not a list', mutate((b) => (b['tags'] = 'a,b')), ['body', 'tags'], 'type_error.list'],
    ['tag with a space', mutate((b) => (b['tags'] = ['ok', 'not ok'])), ['body', 'tags', 1], 'value_error.str.regex'],
    ['tag with a dot', mutate((b) => (b['tags'] = ['v1.2'])), ['body', 'tags', 0], 'value_error.str.regex'],
    ['empty tag', mutate((b) => (b['tags'] = [''])), ['body', 'tags', 0], 'value_error.any_str.min_length'],
    ['tag of 256 chars', mutate((b) => (b['tags'] = ['x'.repeat(256)])), ['body', 'tags', 0], 'value_error.any_str.max_length'],
    ['tracking opens as a string', mutate((b) => (b['tracking'] = { opens: 'yes' })), ['body', 'tracking', 'opens'], 'type_error.bool'],
    ['header without value', mutate((b) => (b['additional_headers'] = [{ name: 'X-A' }])), ['body', 'additional_headers', 0, 'value'], 'value_error.missing'],
    ['headers as an object', mutate((b) => (b['additional_headers'] = { 'X-A': '1' })), ['body', 'additional_headers'], 'type_error.list'],
    ['attachment .txt', mutate((b) => (b['attachment'] = { filename: 'notes.txt', type: 'pdf', content: 'QUJD' })), ['body', 'attachment', 'filename'], 'value_error.str.regex'],
    ['attachment .jpg', mutate((b) => (b['attachment'] = [{ filename: 'photo.jpg', type: 'jpeg', content: 'QUJD' }])), ['body', 'attachment', 0, 'filename'], 'value_error.str.regex'],
    ['attachment name with a space', mutate((b) => (b['attachment'] = [{ filename: 'my file.pdf', type: 'pdf', content: 'QUJD' }])), ['body', 'attachment', 0, 'filename'], 'value_error.str.regex'],
    ['attachment type ics', mutate((b) => (b['attachment'] = [{ filename: 'a.ics', type: 'ics', content: 'QUJD' }])), ['body', 'attachment', 0, 'type'], 'type_error.enum'],
    ['attachment content not base64', mutate((b) => (b['attachment'] = [{ filename: 'a.pdf', type: 'pdf', content: 'QUJD\n' }])), ['body', 'attachment', 0, 'content'], 'value_error.str.regex'],
    ['attachment base64 of a wrong length', mutate((b) => (b['attachment'] = [{ filename: 'a.pdf', type: 'pdf', content: 'QUJDR' }])), ['body', 'attachment', 0, 'content'], 'value_error.str.regex'],
    ['attachment without content', mutate((b) => (b['attachment'] = [{ filename: 'a.pdf', type: 'pdf' }])), ['body', 'attachment', 0, 'content'], 'value_error.missing'],
    ['body as a list', () => [], ['body'], 'type_error.dict'],
  ])('refuses %s with 422 at the right loc', async (_name, make, loc, type) => {
    const { token, listId } = await ready();
    const res = await api('POST', '/v2/emails', { token, json: make(listId) });
    expect(res.status).toBe(422);
    expect(details(res.body)).toEqual([{ loc, msg: expect.any(String), type }]);
    expect(fake.sent()).toEqual([]);
  });

  it('accepts a 20 MB attachment (its base64 is checked without a backtracking regex)', async () => {
    const { token, listId } = await ready();
    const content = Buffer.alloc(20 * 1024 * 1024, 7).toString('base64');
    const res = await api('POST', '/v2/emails', { token, json: { ...validEmail(listId), attachment: [{ filename: 'big.pdf', type: 'pdf', content }] } });
    expect(res.status).toBe(201);
    expect(fake.sent()).toHaveLength(1);
  });

  it('names the unconfirmed sender in the message', async () => {
    const { token, listId } = await ready();
    const res = await api('POST', '/v2/emails', { token, json: { ...validEmail(listId), sender: { id: UNCONFIRMED_SENDER.id } } });
    expect(details(res.body)[0]?.msg).toBe(`Sender 2 (${UNCONFIRMED_SENDER.email}) is not confirmed`);
  });

  it('reports every schema violation at once', async () => {
    const { token } = await ready();
    const res = await api('POST', '/v2/emails', { token, json: { email: 'x', content: { subject: '' } } });
    expect(details(res.body).map((d) => d.loc)).toEqual([
      ['body', 'sender'],
      ['body', 'content', 'type'],
      ['body', 'content', 'subject'],
      ['body', 'email'],
    ]);
  });

  it.each([
    ['malformed JSON', '{"sender":', 'application/json', ['body', 0], 'value_error.jsondecode'],
    ['an empty body', '', 'application/json', ['body'], 'value_error.missing'],
    ['a text/plain body', 'hello', 'text/plain', ['body'], 'type_error.dict'],
  ])('answers 422 for %s', async (_name, rawBody, contentType, loc, type) => {
    const { token } = await ready();
    const res = await api('POST', '/v2/emails', { token, rawBody, contentType });
    expect(res.status).toBe(422);
    expect(details(res.body)).toEqual([{ loc, msg: expect.any(String), type }]);
  });
});

// ---- fault switches ------------------------------------------------------------

describe('fault switches', () => {
  beforeEach(() => start());

  it.each([
    [500, { detail: [{ msg: 'Fault injected: Internal Server Error', type: 'server_error' }] }],
    [503, { detail: [{ msg: 'Fault injected: Service Unavailable', type: 'server_error' }] }],
    [429, { detail: [{ msg: 'Fault injected: Too Many Requests', type: 'rate_limited' }] }],
    [400, { detail: [{ msg: 'Fault injected: bad request', type: 'bad_request' }] }],
    [401, { detail: [{ code: 401, msg: 'Fault injected: unauthorized', type: 'unauthorized' }] }],
    [403, { detail: [{ code: 403, msg: 'Fault injected: forbidden', type: 'forbidden' }] }],
    [422, { detail: [{ loc: ['body'], msg: 'Fault injected: validation error', type: 'value_error' }] }],
  ])('forces status %i with a spec-shaped body', async (status, body) => {
    const { token, listId } = await ready();
    fake.faults.set('send', { status });
    const res = await api('POST', '/v2/emails', { token, json: validEmail(listId) });
    expect(res.status).toBe(status);
    expect(res.body).toEqual(body);
    expect(fake.sent()).toEqual([]);
    expect(fake.callsTo('send')[0]).toMatchObject({ status, fault: 'status' });
  });

  it('sends Retry-After with a 429, and a custom body and headers', async () => {
    const { token } = await ready();
    fake.faults.set('lists', { status: 429, retryAfter: 2 });
    const limited = await api('GET', '/lists', { token });
    expect(limited.headers.get('retry-after')).toBe('2');
    fake.faults.set('lists', { status: 502, body: { oops: true }, headers: { 'x-fault': 'yes' } });
    const custom = await api('GET', '/lists', { token });
    expect(custom).toMatchObject({ status: 502, body: { oops: true } });
    expect(custom.headers.get('x-fault')).toBe('yes');
  });

  it('fails N times then succeeds', async () => {
    fake.faults.set('token', { status: 503, times: 2 });
    const statuses = [];
    for (let i = 0; i < 3; i++) statuses.push((await tokenCall({ username: DEFAULT_USER.email, password: DEFAULT_USER.password })).status);
    expect(statuses).toEqual([503, 503, 200]);
    expect(fake.faults.list()).toEqual([]);
  });

  it('fails only the matching recipient (one temporary failure, the other accepted)', async () => {
    const { token, listId } = await ready();
    fake.faults.set('send', { status: 503, times: 1, match: { email: 'B@x.test' } });
    const a = await api('POST', '/v2/emails', { token, json: validEmail(listId, 'a@x.test') });
    const b1 = await api('POST', '/v2/emails', { token, json: validEmail(listId, 'b@x.test') });
    const b2 = await api('POST', '/v2/emails', { token, json: validEmail(listId, 'b@x.test') });
    expect([a.status, b1.status, b2.status]).toEqual([201, 503, 201]);
    expect(fake.sent().map((s) => s.body.email)).toEqual(['a@x.test', 'b@x.test']);
  });

  it.each(['rejected', 'error'] as const)('answers 201 with status %s', async (sendStatus) => {
    const { token, listId } = await ready();
    fake.faults.set('send', { sendStatus, times: 1 });
    const res = await api('POST', '/v2/emails', { token, json: validEmail(listId) });
    expect(res.status).toBe(201);
    expect((res.body as { data: { status: string } }).data.status).toBe(sendStatus);
    const next = await api('POST', '/v2/emails', { token, json: validEmail(listId) });
    expect((next.body as { data: { status: string } }).data.status).toBe('queued');
    expect(fake.sent().map((s) => s.status)).toEqual([sendStatus, 'queued']);
  });

  it('still validates when sendStatus is set', async () => {
    const { token, listId } = await ready();
    fake.faults.set('send', { sendStatus: 'rejected' });
    const res = await api('POST', '/v2/emails', { token, json: { ...validEmail(listId), email: 'nope' } });
    expect(res.status).toBe(422);
  });

  it('delays an answer', async () => {
    const { token } = await ready();
    fake.faults.set('senders', { delayMs: 250 });
    const started = performance.now();
    const res = await api('GET', '/brands/default/senders', { token });
    expect(performance.now() - started).toBeGreaterThanOrEqual(240);
    expect(res.status).toBe(200);
    expect(fake.callsTo('senders')[0]?.fault).toBe('delay');
  });

  it('resets the connection without an answer', async () => {
    const { token, listId } = await ready();
    fake.faults.set('send', { reset: true, times: 1 });
    await expect(api('POST', '/v2/emails', { token, json: validEmail(listId) })).rejects.toThrow();
    expect(fake.callsTo('send')[0]).toMatchObject({ status: null, fault: 'reset' });
    expect((await api('POST', '/v2/emails', { token, json: validEmail(listId) })).status).toBe(201);
  });

  it('hangs until the client gives up, and close() still returns promptly', async () => {
    const { token, listId } = await ready();
    fake.faults.set('send', { hang: true });
    await expect(api('POST', '/v2/emails', { token, json: validEmail(listId), signal: AbortSignal.timeout(200) })).rejects.toThrow(
      /aborted|timeout/i,
    );
    const pending = api('POST', '/v2/emails', { token, json: validEmail(listId) });
    pending.catch(() => undefined);
    await until(() => fake.callsTo('send').length === 2);
    expect(fake.callsTo('send').map((c) => c.fault)).toEqual(['hang', 'hang']);
    const started = performance.now();
    await fake.close();
    expect(performance.now() - started).toBeLessThan(1000);
    await expect(pending).rejects.toThrow();
  });

  it('applies to its route only, and clear() switches everything off', async () => {
    const { token, listId } = await ready();
    fake.faults.set('send', { status: 500 });
    fake.faults.add('lists', { status: 500 });
    expect(fake.faults.list().map((f) => f.route)).toEqual(['lists', 'send']);
    expect((await api('GET', '/brands/default/senders', { token })).status).toBe(200);
    fake.faults.clear('lists');
    expect((await api('GET', '/lists', { token })).status).toBe(200);
    expect((await api('POST', '/v2/emails', { token, json: validEmail(listId) })).status).toBe(500);
    expect(fake.faults.list()).toEqual([{ route: 'send', fault: { status: 500 }, remaining: undefined, hits: 1 }]);
    fake.faults.clear();
    expect((await api('POST', '/v2/emails', { token, json: validEmail(listId) })).status).toBe(201);
  });

  it('uses the first applicable fault when several are added', async () => {
    const { token, listId } = await ready();
    fake.faults.add('send', { status: 429, times: 1 });
    fake.faults.add('send', { status: 503, times: 1 });
    const statuses = [];
    for (let i = 0; i < 3; i++) statuses.push((await api('POST', '/v2/emails', { token, json: validEmail(listId) })).status);
    expect(statuses).toEqual([429, 503, 201]);
  });

  it.each([
    ['two actions', 'send', { status: 500, reset: true }],
    ['no action', 'send', {}],
    ['sendStatus off the send route', 'token', { sendStatus: 'error' }],
    ['match off the send route', 'lists', { status: 500, match: { email: 'a@x.test' } }],
    ['times 0', 'send', { status: 500, times: 0 }],
    ['status 99', 'send', { status: 99 }],
  ] as const)('refuses a fault with %s', (_name, route, fault) => {
    expect(() => fake.faults.set(route, fault)).toThrow(/fake-cakemail/);
  });
});

async function until(condition: () => boolean, timeoutMs = 2000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

// ---- recording -----------------------------------------------------------------

describe('recording', () => {
  beforeEach(() => start());

  it('records every call with secrets redacted', async () => {
    const t = await login();
    await api('GET', '/lists?filter=name==x&page=1', { token: t.access_token });
    const [tokenCallRecord, listsCall] = fake.calls;
    expect(tokenCallRecord).toMatchObject({
      seq: 1,
      route: 'token',
      method: 'POST',
      path: '/token',
      body: { grant_type: 'password', username: DEFAULT_USER.email, password: '***' },
      status: 200,
      response: { access_token: '***', refresh_token: '***', token_type: 'bearer' },
    });
    expect(listsCall).toMatchObject({
      seq: 2,
      route: 'lists',
      method: 'GET',
      path: '/lists',
      query: { filter: 'name==x', page: '1' },
      status: 200,
      response: { data: [] },
    });
    expect(listsCall?.headers['authorization']).toBe('Bearer ***');
    expect(JSON.stringify(fake.calls)).not.toContain(t.access_token);
    expect(JSON.stringify(fake.calls)).not.toContain(DEFAULT_USER.password);
    expect(Date.parse(listsCall?.time ?? '')).not.toBeNaN();
  });

  it('serves the record at GET /_fake/calls (optionally per route) without recording itself, and health', async () => {
    await login();
    await api('GET', '/nowhere');
    const all = await api('GET', '/_fake/calls');
    expect((all.body as { route: string }[]).map((c) => c.route)).toEqual(['token', 'other']);
    const onlyToken = await api('GET', '/_fake/calls?route=token');
    expect(onlyToken.body).toHaveLength(1);
    expect(await api('GET', '/_fake/health')).toMatchObject({ status: 200, body: { status: 'ok', record: 'full' } });
    expect(await api('GET', '/_fake/counts')).toMatchObject({ body: { token: 1, other: 1 } });
    expect(fake.calls).toHaveLength(2);
  });

  it('reset() forgets calls, counts, sent emails and faults, but keeps tokens and data', async () => {
    const { token, listId } = await ready();
    await api('POST', '/v2/emails', { token, json: validEmail(listId) });
    fake.faults.set('lists', { status: 500 });
    const calls = fake.calls;
    fake.reset();
    expect(calls).toHaveLength(0);
    expect(fake.sent()).toEqual([]);
    expect(fake.counts().send).toBe(0);
    expect(fake.faults.list()).toEqual([]);
    expect((await api('GET', '/lists', { token })).status).toBe(200);
    expect(fake.calls[0]?.seq).toBe(1);
    expect(fake.lists(DEFAULT_ACCOUNT_ID)).toHaveLength(1);
  });

  it('answers 404 and 405 for paths and methods it does not serve', async () => {
    expect((await api('GET', '/v2/emails/123')).status).toBe(404);
    expect((await api('DELETE', '/lists')).status).toBe(405);
    expect(fake.counts().other).toBe(2);
  });
});

describe("record: 'counts'", () => {
  it('counts calls per route and keeps no bodies', async () => {
    await start({ record: 'counts' });
    const { token, listId } = await ready();
    for (let i = 0; i < 3; i++) expect((await api('POST', '/v2/emails', { token, json: validEmail(listId) })).status).toBe(201);
    await api('GET', '/lists', { token });
    await api('GET', '/nowhere');
    expect(fake.counts()).toEqual({ token: 1, senders: 0, lists: 1, createList: 0, send: 3, other: 1 });
    expect(fake.calls).toEqual([]);
    expect(fake.sent()).toEqual([]);
    expect((await api('GET', '/_fake/health')).body).toEqual({ status: 'ok', record: 'counts' });
  });
});

// ---- robustness ----------------------------------------------------------------

describe('request size and malformed input', () => {
  it('answers 413 to a body over the cap (declared length) and keeps serving', async () => {
    await start({ maxBodyBytes: 1024 });
    const { token } = await ready();
    const res = await api('POST', '/v2/emails', { token, rawBody: 'x'.repeat(2048) });
    expect(res.status).toBe(413);
    expect(details(res.body)[0]).toMatchObject({ type: 'bad_request' });
    expect((await api('GET', '/lists', { token })).status).toBe(200);
  });

  it('answers 413 from Content-Length alone, before reading the body', async () => {
    await start({ maxBodyBytes: 1024 });
    const { token } = await ready();
    const status = await new Promise<number>((resolve, reject) => {
      const req = httpRequest(`${url}/v2/emails`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'content-length': String(64 * 1024 * 1024) },
        signal: AbortSignal.timeout(2000),
      });
      req.on('response', (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
        req.destroy();
      });
      req.on('error', reject);
      req.flushHeaders();
    });
    expect(status).toBe(413);
  });

  it('answers 413 to a chunked body that grows over the cap', async () => {
    await start({ maxBodyBytes: 1024 });
    const { token } = await ready();
    const status = await new Promise<number>((resolve, reject) => {
      const req = httpRequest(`${url}/v2/emails`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'transfer-encoding': 'chunked' },
      });
      req.on('response', (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.write('x'.repeat(800));
      req.write('x'.repeat(800));
      req.end();
    });
    expect(status).toBe(413);
    expect(fake.callsTo('send')[0]?.status).toBe(413);
  });

  it('answers 422 to a urlencoded token body of garbage', async () => {
    await start();
    const res = await api('POST', '/token', { rawBody: '%%%&&&===', contentType: 'application/x-www-form-urlencoded' });
    expect(res.status).toBe(422);
  });
});

// ---- seeding -------------------------------------------------------------------

describe('seeding', () => {
  it('takes custom users and accounts, and data added at runtime', async () => {
    await start({
      accounts: [{ id: 7, senders: [{ id: 's-1', name: 'Seven', email: 'seven@example.test', confirmed: true }], lists: [{ id: 70, name: 'Main' }] }],
      users: [{ email: 'seven@example.test', password: 'pw', accounts: [7] }],
    });
    expect((await tokenCall({ username: DEFAULT_USER.email, password: DEFAULT_USER.password })).status).toBe(401);
    const t = await login({ email: 'seven@example.test', password: 'pw' });
    expect(t.accounts).toEqual([7]);
    const res = await api('POST', '/v2/emails', { token: t.access_token, json: { ...validEmail(70), sender: { id: 's-1' } } });
    expect(res.status).toBe(201);

    fake.addAccount({ id: 8 });
    fake.addUser({ email: 'eight@example.test', password: 'pw8', accounts: [8], mfa: true });
    expect((await tokenCall({ username: 'eight@example.test', password: 'pw8' })).body).toHaveProperty('challenge');
    expect(fake.addSender(8, { name: 'E', email: 'e@example.test', confirmed: false })).toMatchObject({ id: '1', confirmed: false });
    expect(fake.addList(8, { name: 'L' }).id).toBe(71);
  });

  it('refuses inconsistent seed data', () => {
    expect(() => createFakeCakemail({ users: [{ email: 'x@example.test', password: 'p', accounts: [42] }] })).toThrow(/no account 42/);
    expect(() => createFakeCakemail({ accounts: [{ id: 1 }, { id: 1 }] })).toThrow(/already exists/);
    fake = createFakeCakemail();
    expect(() => fake.addSender(DEFAULT_ACCOUNT_ID, { id: '1', name: 'dup', email: 'd@example.test', confirmed: true })).toThrow(/already exists/);
  });

  it('throws on url before listen()', () => {
    fake = createFakeCakemail();
    expect(() => fake.url).toThrow(/listen/);
  });
});
