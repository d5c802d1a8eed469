import { afterEach, describe, expect, it } from 'vitest';
import { CakemailClient, timerFor, type UpstreamAttempt } from '../src/client.js';
import { CakemailError, isMfaChallenge, parseRetryAfter } from '../src/errors.js';
import { okToken, startStub, type Stub, type StubAnswer, type StubRequest } from './helpers/stub-api.js';

let stub: Stub | undefined;
let client: CakemailClient | undefined;
afterEach(async () => {
  await client?.close();
  await stub?.close();
  client = undefined;
  stub = undefined;
});

async function setup(
  handler: (req: StubRequest, n: number) => StubAnswer | Promise<StubAnswer>,
  opts: {
    timeoutMs?: number;
    random?: () => number;
    baseDelayMs?: number;
    maxAttempts?: number;
    connections?: number;
    onAttempt?: (attempt: UpstreamAttempt) => void;
  } = {},
): Promise<{ stub: Stub; client: CakemailClient }> {
  let n = 0;
  stub = await startStub((req) => handler(req, n++));
  client = new CakemailClient({
    apiUrl: stub.url,
    timeoutMs: opts.timeoutMs ?? 2000,
    connections: opts.connections ?? 8,
    random: opts.random ?? (() => 0),
    retry: { baseDelayMs: opts.baseDelayMs ?? 10, maxAttempts: opts.maxAttempts ?? 6 },
    ...(opts.onAttempt === undefined ? {} : { onAttempt: opts.onAttempt }),
  });
  return { stub, client };
}

const soon = (ms = 5000) => ({ deadline: Date.now() + ms });
const queued = (id = 'id-1'): StubAnswer => ({ status: 201, json: { email: 'x@y', object: 'email', submitted: true, data: { id, status: 'queued' } } });

async function failure(p: Promise<unknown>): Promise<CakemailError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof CakemailError) return err;
    throw err;
  }
  throw new Error('expected a CakemailError');
}

describe('POST /token', () => {
  it('logs in with a form body and no Authorization header', async () => {
    const { stub, client } = await setup(() => okToken([5, 6], 'tok'));
    const t = await client.token('user@example.com', 'p@ss w0rd', 5, soon());
    expect(t).toEqual({ accessToken: 'tok', refreshToken: 'refresh-tok', expiresIn: 3600, accounts: [5, 6] });
    const req = stub.calls[0];
    expect(req?.path).toBe('/token');
    expect(req?.headers['content-type']).toBe('application/x-www-form-urlencoded');
    expect(req?.headers['authorization']).toBeUndefined();
    expect(Object.fromEntries(req?.form() ?? [])).toEqual({ grant_type: 'password', username: 'user@example.com', password: 'p@ss w0rd', account_id: '5' });
  });

  it('refreshes with grant_type=refresh_token', async () => {
    const { stub, client } = await setup(() => okToken([1], 'tok2'));
    await client.refresh('r-1', soon());
    expect(Object.fromEntries(stub.calls[0]?.form() ?? [])).toEqual({ grant_type: 'refresh_token', refresh_token: 'r-1' });
  });

  it('an MFA challenge is its own error', async () => {
    const { client } = await setup(() => ({ status: 200, json: { challenge: 'abc' } }));
    const err = await failure(client.token('u@example.com', 'pw', undefined, soon()));
    expect(isMfaChallenge(err)).toBe(true);
    expect(err.kind).toBe('auth');
  });

  it.each([401, 403])('%i is an auth error with the API msg and no secret in the message', async (status) => {
    const { stub, client } = await setup(() => ({ status, json: { detail: [{ code: 1, msg: 'Invalid credentials', type: 'unauthorized' }] } }));
    const err = await failure(client.token('u@example.com', 'SECRET-PW', undefined, soon()));
    expect(err).toMatchObject({ kind: 'auth', status, apiMessage: 'Invalid credentials' });
    expect(err.message).not.toContain('SECRET-PW');
    expect(stub.calls).toHaveLength(1);
  });

  it('422 is permanent, not retried, msg texts joined', async () => {
    const { stub, client } = await setup(() => ({
      status: 422,
      json: { detail: [{ loc: ['body', 'username'], msg: 'not an email', type: 'x' }, { loc: [], msg: 'second', type: 'y' }] },
    }));
    const err = await failure(client.token('bad', 'pw', undefined, soon()));
    expect(err).toMatchObject({ kind: 'permanent', status: 422, apiMessage: 'not an email; second' });
    expect(stub.calls).toHaveLength(1);
  });
});

describe('retries', () => {
  it('retries the idempotent calls on 5xx and connection resets, then succeeds', async () => {
    const { stub, client } = await setup((_r, n) => (n === 0 ? { status: 500, json: {} } : n === 1 ? { status: 0, reset: true } : { status: 200, json: { pagination: { page: 1, per_page: 100 }, data: [] } }));
    expect(await client.listSenders('tok', 1, soon())).toEqual([]);
    expect(stub.calls).toHaveLength(3);
  });

  const email = { sender: { id: 's' }, email: 'a@b.c', list_id: 1, content: { type: 'transactional' as const, subject: 's', encoding: 'utf-8' as const } };

  it('retries a send only when Cakemail certainly did not process it (503, 429)', async () => {
    const { stub, client } = await setup((_r, n) => (n === 0 ? { status: 503, json: {} } : n === 1 ? { status: 429, json: {} } : queued('ok')));
    expect(await client.sendEmail('tok', 1, email, soon())).toEqual({ id: 'ok', status: 'queued' });
    expect(stub.calls).toHaveLength(3);
  });

  it.each([
    ['a 500', { status: 500, json: {} }],
    ['a 502', { status: 502, json: {} }],
    ['a connection reset', { status: 0, reset: true }],
  ] as const)('does not repeat a send after %s, which Cakemail may have processed: temporary error', async (_name, first) => {
    const { stub, client } = await setup((_r, n) => (n === 0 ? first : queued('twice')));
    const err = await failure(client.sendEmail('tok', 1, email, soon()));
    expect(err).toMatchObject({ kind: 'temporary' });
    expect(stub.calls).toHaveLength(1);
  });

  it('gives up after maxAttempts with a temporary error', async () => {
    const { stub, client } = await setup(() => ({ status: 502, json: { detail: 'bad gateway' } }), { maxAttempts: 3 });
    const err = await failure(client.listSenders('tok', 1, soon()));
    expect(err).toMatchObject({ kind: 'temporary', status: 502, apiMessage: 'bad gateway' });
    expect(stub.calls).toHaveLength(3);
  });

  it('backs off exponentially with full jitter', async () => {
    // random() = 0.5: waits 20, 40, 80 ms (half of 40·2^n)
    const { stub, client } = await setup(() => ({ status: 500, json: {} }), { random: () => 0.5, baseDelayMs: 40, maxAttempts: 4 });
    const t0 = Date.now();
    await failure(client.listSenders('tok', 1, soon()));
    const elapsed = Date.now() - t0;
    expect(stub.calls).toHaveLength(4);
    expect(elapsed).toBeGreaterThanOrEqual(135);
    expect(elapsed).toBeLessThan(1000);
  });

  it('honours Retry-After in seconds on 429', async () => {
    const { stub, client } = await setup((_r, n) => (n === 0 ? { status: 429, json: {}, headers: { 'retry-after': '1' } } : queued()));
    const t0 = Date.now();
    await client.sendEmail('tok', 1, { chunks: [Buffer.from('{}')], length: 2 }, soon());
    expect(Date.now() - t0).toBeGreaterThanOrEqual(950);
    expect(stub.calls).toHaveLength(2);
  });

  it('honours Retry-After as an HTTP date', async () => {
    const { client } = await setup((_r, n) =>
      n === 0 ? { status: 429, json: {}, headers: { 'retry-after': new Date(Date.now() + 2000).toUTCString() } } : queued(),
    );
    const t0 = Date.now();
    await client.sendEmail('tok', 1, { chunks: [Buffer.from('{}')], length: 2 }, soon());
    expect(Date.now() - t0).toBeGreaterThanOrEqual(900); // second resolution of HTTP dates
  });

  it('never sleeps past the deadline: a Retry-After beyond it gives up at once', async () => {
    const { stub, client } = await setup(() => ({ status: 429, json: { detail: [{ msg: 'slow down' }] }, headers: { 'retry-after': '30' } }));
    const t0 = Date.now();
    const err = await failure(client.sendEmail('tok', 1, { chunks: [Buffer.from('{}')], length: 2 }, soon(3000)));
    expect(Date.now() - t0).toBeLessThan(500);
    expect(err).toMatchObject({ kind: 'temporary', status: 429, retryAfterMs: 30_000, apiMessage: 'slow down' });
    expect(stub.calls).toHaveLength(1);
  });

  it('never sleeps past the deadline: a backoff beyond it gives up at once', async () => {
    const { stub, client } = await setup(() => ({ status: 500, json: {} }), { random: () => 0.99, baseDelayMs: 5000 });
    const t0 = Date.now();
    const err = await failure(client.listSenders('tok', 1, soon(1000)));
    expect(Date.now() - t0).toBeLessThan(500);
    expect(err.kind).toBe('temporary');
    expect(stub.calls).toHaveLength(1);
  });

  it('times out slow attempts and stops at the deadline', async () => {
    // Each answer would take 5 s: only the 150 ms attempt timeout and the 500 ms deadline can end
    // the call well before that (the bound leaves room for a loaded machine).
    const { stub, client } = await setup(() => ({ status: 200, json: { pagination: {}, data: [] }, delayMs: 5000 }), { timeoutMs: 150 });
    const t0 = Date.now();
    const err = await failure(client.listSenders('tok', 1, soon(500)));
    const elapsed = Date.now() - t0;
    expect(err.kind).toBe('temporary');
    expect(['timeout', 'deadline']).toContain(err.reason);
    expect(elapsed).toBeGreaterThanOrEqual(450);
    expect(elapsed).toBeLessThan(2500);
    expect(stub.calls.length).toBeGreaterThanOrEqual(3);
  });

  it('times out an attempt still waiting for a free connection, without waiting for one', async () => {
    // One connection, held 3 s by a send; the listing behind it has 150 ms attempts and 400 ms.
    const { stub, client } = await setup((req) => (req.method === 'POST' ? { ...queued(), delayMs: 3000 } : { status: 200, json: { pagination: {}, data: [] } }), {
      timeoutMs: 150,
      connections: 1,
    });
    const send = client.sendEmail('tok', 1, { email: 'a@b' } as never, soon(10_000));
    await new Promise((resolve) => setTimeout(resolve, 100));
    const t0 = Date.now();
    const err = await failure(client.listSenders('tok', 1, soon(400)));
    expect(Date.now() - t0).toBeLessThan(1500);
    expect(['timeout', 'deadline']).toContain(err.reason);
    expect(stub.calls).toHaveLength(1);
    expect((await send).id).toBe('id-1');
  });

  it('does not retry permanent errors or 401', async () => {
    const { stub, client } = await setup((_r, n) => (n === 0 ? { status: 400, json: { detail: [{ msg: 'bad' }] } } : { status: 401, json: {} }));
    expect((await failure(client.listSenders('tok', 1, soon()))).kind).toBe('permanent');
    expect((await failure(client.listSenders('tok', 1, soon()))).kind).toBe('auth');
    expect(stub.calls).toHaveLength(2);
  });

  it.each([
    ['an unexpected body', { nope: true }],
    ['no body', undefined],
  ])('treats a 2xx with %s as temporary, without sending again', async (_name, json) => {
    const { stub, client } = await setup(() => ({ status: 201, json }));
    const err = await failure(client.sendEmail('tok', 1, { chunks: [Buffer.from('{}')], length: 2 }, soon()));
    expect(err).toMatchObject({ kind: 'temporary', reason: 'invalid_response' });
    expect(stub.calls).toHaveLength(1);
  });
});

describe('resources', () => {
  it('walks every page of senders with the bearer token', async () => {
    const all = Array.from({ length: 230 }, (_, i) => ({ id: `s${i}`, name: `n${i}`, email: `s${i}@example.com`, confirmed: i % 2 === 0 }));
    const { stub, client } = await setup((req) => {
      const page = Number(req.query.get('page'));
      const per = Number(req.query.get('per_page'));
      return { status: 200, json: { pagination: { page, per_page: per, count: 230 }, data: all.slice((page - 1) * per, page * per) } };
    });
    const senders = await client.listSenders('tok-9', 42, soon());
    expect(senders).toHaveLength(230);
    expect(senders[229]).toEqual({ id: 's229', name: 'n229', email: 's229@example.com', confirmed: false });
    expect(stub.calls.map((c) => c.query.get('page'))).toEqual(['1', '2', '3']);
    expect(stub.calls.every((c) => c.headers['authorization'] === 'Bearer tok-9' && c.query.get('account_id') === '42')).toBe(true);
  });

  it('finds a list by exact name and creates one', async () => {
    const { stub, client } = await setup((req) =>
      req.method === 'GET'
        ? { status: 200, json: { pagination: {}, data: [{ id: 3, name: 'SMTP Gateway copy' }, { id: 4, name: 'SMTP Gateway' }] } }
        : { status: 201, json: { id: 99, created: true, data: { id: 99, name: 'SMTP Gateway' } } },
    );
    expect(await client.findListByName('tok', 1, 'SMTP Gateway', soon())).toEqual({ id: 4, name: 'SMTP Gateway' });
    expect(stub.calls[0]?.query.get('filter')).toBe('name==SMTP Gateway');
    expect(await client.createList('tok', 1, { name: 'SMTP Gateway', senderId: 's1' }, soon())).toBe(99);
    expect(stub.calls[1]?.json()).toEqual({ name: 'SMTP Gateway', default_sender: { id: 's1' } });
  });

  it('sends a pre-encoded body with its length', async () => {
    const { stub, client } = await setup(() => queued('u-1'));
    const chunks = [Buffer.from('{"email":"a@b.c",'), Buffer.from('"list_id":1}')];
    await client.sendEmail('tok', 7, { chunks, length: chunks[0]!.length + chunks[1]!.length }, soon());
    expect(stub.calls[0]?.json()).toEqual({ email: 'a@b.c', list_id: 1 });
    expect(stub.calls[0]?.headers['content-length']).toBe(String(Buffer.concat(chunks).length));
    expect(stub.calls[0]?.query.get('account_id')).toBe('7');
  });

  it('sends a large pre-encoded body (streamed from its chunks) byte for byte', async () => {
    const { stub, client } = await setup(() => queued('u-2'));
    const text = 'x'.repeat(200 * 1024);
    const chunks = [Buffer.from('{"email":"a@b.c",'), Buffer.from(`"text":"${text}",`), Buffer.from(`"html":"${text}"}`)];
    const length = chunks.reduce((n, c) => n + c.length, 0);
    expect(length).toBeGreaterThan(256 * 1024);
    expect(await client.sendEmail('tok', 7, { chunks, length }, soon())).toEqual({ id: 'u-2', status: 'queued' });
    expect(stub.calls[0]?.json()).toEqual({ email: 'a@b.c', text, html: text });
    expect(stub.calls[0]?.headers['content-length']).toBe(String(length));
  });
});

describe('parseRetryAfter', () => {
  it.each([
    ['5', 5000],
    [' 0 ', 0],
    ['Thu, 01 Jan 1970 00:00:10 GMT', 9000],
    ['Thu, 01 Jan 1970 00:00:00 GMT', 0],
    ['soon', undefined],
    [undefined, undefined],
  ])('%s → %s', (value, ms) => {
    expect(parseRetryAfter(value, 1000)).toBe(ms);
  });
});

describe('a caller\'s signal (a queue worker shutting down)', () => {
  it('cuts a send in flight at once with a temporary aborted error, and starts none after', async () => {
    const { stub, client } = await setup(() => ({ ...queued(), delayMs: 10_000 }));
    const controller = new AbortController();
    const started = Date.now();
    setTimeout(() => controller.abort(), 100);
    const err = await failure(client.sendEmail('tok', 1, { email: 'a@b' } as never, { deadline: Date.now() + 20_000, signal: controller.signal }));
    expect(err).toMatchObject({ kind: 'temporary', reason: 'aborted' });
    expect(Date.now() - started).toBeLessThan(5000);
    const again = await failure(client.listSenders('tok', 1, { deadline: Date.now() + 20_000, signal: controller.signal }));
    expect(again.reason).toBe('aborted');
    expect(stub.calls).toHaveLength(1);
  });
});

describe('onAttempt (the gateway\'s upstream metrics)', () => {
  const email = { email: 'a@b' } as never;

  it('tells each attempt its call, its outcome and its time, retries included', async () => {
    const seen: UpstreamAttempt[] = [];
    const { client } = await setup(
      (req, n) =>
        req.method === 'POST'
          ? n === 3
            ? { status: 429, json: {} }
            : n === 4
              ? { ...queued(), delayMs: 60 }
              : { status: 400, json: { detail: [{ msg: 'bad' }] } }
          : n === 0
            ? { status: 500, json: {} }
            : n === 1
              ? { status: 0, reset: true }
              : { status: 200, json: { pagination: { page: 1, per_page: 100 }, data: [] } },
      { onAttempt: (a) => seen.push(a) },
    );
    await client.listSenders('tok', 1, soon());
    await client.sendEmail('tok', 1, email, soon());
    await failure(client.sendEmail('tok', 1, email, soon()));
    expect(seen.map((a) => `${a.call} ${a.outcome}`)).toEqual([
      'GET /brands/default/senders 5xx',
      'GET /brands/default/senders network',
      'GET /brands/default/senders 2xx',
      'POST /v2/emails 429',
      'POST /v2/emails 2xx',
      'POST /v2/emails 4xx',
    ]);
    expect(seen[4]?.seconds).toBeGreaterThanOrEqual(0.05);
    expect(seen[4]?.seconds).toBeLessThan(5);
  });

  it('tells a timeout and an abort apart from a network error', async () => {
    const seen: UpstreamAttempt[] = [];
    const { client } = await setup(() => ({ ...queued(), delayMs: 5000 }), { timeoutMs: 100, maxAttempts: 1, onAttempt: (a) => seen.push(a) });
    await failure(client.listSenders('tok', 1, soon()));
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 50);
    await failure(client.sendEmail('tok', 1, email, { deadline: Date.now() + 20_000, signal: controller.signal }));
    expect(seen.map((a) => a.outcome)).toEqual(['timeout', 'aborted']);
  });

  it('never fails a call for an observer that throws', async () => {
    const { client } = await setup(() => queued('fine'), {
      onAttempt: () => {
        throw new Error('metrics broke');
      },
    });
    expect((await client.sendEmail('tok', 1, email, soon())).id).toBe('fine');
  });
});

describe('timerFor (a send\'s timer, to its deadline)', () => {
  it('rounds a long wait down to the second, so that sends share one timer list, and never passes the deadline', () => {
    expect(timerFor(59_987)).toBe(59_000);
    expect(timerFor(59_001)).toBe(59_000);
    expect(timerFor(10_001)).toBe(10_000);
    for (const remaining of [1, 150, 9_999, 10_000, 10_999, 60_000, 123_456]) {
      expect(timerFor(remaining)).toBeLessThanOrEqual(remaining);
      expect(timerFor(remaining)).toBeGreaterThan(remaining - 1000);
    }
    expect(timerFor(9_999)).toBe(9_999);
  });
});
