/**
 * The fake's development side: the chaos switches over HTTP (/_fake/faults) and the inbox page
 * (escaping, CSP, the HTML body's own CSP, attachments, clear, joining the gateway's notes).
 * The page in a real browser is tested in apps/gateway (dev-inbox.browser.test.ts).
 */
import { request } from 'node:http';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createFakeCakemail, DEFAULT_ACCOUNT_ID, DEFAULT_SENDER, DEFAULT_USER, type FakeCakemail, type InboxNote } from '../src/fake-cakemail/index.js';

let fake: FakeCakemail;
let url: string;

beforeEach(async () => {
  fake = createFakeCakemail();
  url = await fake.listen();
});

afterEach(async () => {
  await fake.close();
});

const faultsCall = (method: string, body?: unknown, query = ''): Promise<Response> =>
  fetch(`${url}/_fake/faults${query}`, {
    method,
    ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: typeof body === 'string' ? body : JSON.stringify(body) }),
  });

const msgOf = async (res: Response): Promise<string> => ((await res.json()) as { detail: Array<{ msg: string }> }).detail[0]?.msg ?? '';

async function token(): Promise<string> {
  const res = await fetch(`${url}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'password', username: DEFAULT_USER.email, password: DEFAULT_USER.password }).toString(),
  });
  return ((await res.json()) as { access_token: string }).access_token;
}

async function send(body: Record<string, unknown>): Promise<{ status: number; id: string | undefined }> {
  const listId = fake.lists(DEFAULT_ACCOUNT_ID)[0]?.id ?? fake.addList(DEFAULT_ACCOUNT_ID, { name: 'SMTP Gateway' }).id;
  const res = await fetch(`${url}/v2/emails?account_id=${DEFAULT_ACCOUNT_ID}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${await token()}` },
    body: JSON.stringify({
      sender: { id: DEFAULT_SENDER.id, name: 'Dev' },
      email: 'rcpt@example.test',
      list_id: listId,
      content: { type: 'transactional', subject: 'Hello', text: 'Hi', encoding: 'utf-8' },
      ...body,
    }),
  });
  const json = (await res.json()) as { data?: { id: string } };
  return { status: res.status, id: json.data?.id };
}

describe('/_fake/faults', () => {
  it.each([
    ['not JSON', '{route', 'the body is not JSON'],
    ['an array', [], 'expected a JSON object'],
    ['an unknown route', { route: 'nope', status: 500 }, 'route must be one of send, token, senders, lists, createList'],
    ['a status out of range', { route: 'send', status: 700 }, 'status must be an integer from 100 to 599'],
    ['a string status', { route: 'send', status: '500' }, 'status must be an integer from 100 to 599'],
    ['a negative delay', { route: 'send', delayMs: -1 }, 'delayMs must be an integer from 0 to 600000'],
    ['times 0', { route: 'send', status: 500, times: 0 }, 'times must be an integer from 1 to 1000000'],
    ['reset as a string', { route: 'send', reset: 'yes' }, 'reset must be true or false'],
    ['two actions', { route: 'send', status: 500, hang: true }, 'a fault takes one of status, reset, hang, sendStatus'],
    ['no action', { route: 'token' }, 'a fault needs an action or delayMs'],
    ['sendStatus off the send route', { route: 'token', sendStatus: 'error' }, "sendStatus and match apply to the 'send' route only"],
    ['an unknown field', { route: 'send', status: 500, tims: 2 }, 'unknown field "tims"'],
  ])('refuses %s with 400 and says why', async (_name, body, why) => {
    const res = await faultsCall('POST', body);
    expect(res.status).toBe(400);
    expect(await msgOf(res)).toContain(why);
    expect(fake.faults.list()).toEqual([]);
  });

  it('refuses a body that is not declared JSON (415): a cross-site form cannot arm a switch', async () => {
    const res = await fetch(`${url}/_fake/faults`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: '{"route":"send","status":500}' });
    expect(res.status).toBe(415);
    expect(fake.faults.list()).toEqual([]);
  });

  it('arms a switch, lists it with its hits, and clears by route or all', async () => {
    const armed = await faultsCall('POST', { route: 'send', status: 429, retryAfter: 2, times: 2 });
    expect(armed.status).toBe(201);
    expect((await faultsCall('POST', { route: 'token', delayMs: 5 })).status).toBe(201);
    expect((await send({})).status).toBe(429);
    const listed = (await (await faultsCall('GET')).json()) as { faults: unknown[] };
    // a switch armed until cleared has no `remaining`
    expect(listed.faults).toEqual([
      { route: 'token', fault: { delayMs: 5 }, hits: 1 },
      { route: 'send', fault: { status: 429, retryAfter: 2, times: 2 }, hits: 1, remaining: 1 },
    ]);
    expect((await faultsCall('DELETE', undefined, '?route=nope')).status).toBe(400);
    expect((await faultsCall('DELETE', undefined, '?route=token')).status).toBe(200);
    expect(fake.faults.list().map((f) => f.route)).toEqual(['send']);
    expect((await faultsCall('DELETE')).status).toBe(200);
    expect(fake.faults.list()).toEqual([]);
    expect((await send({})).status).toBe(201);
  });

  it('answers 405 to other methods', async () => {
    const res = await faultsCall('PUT', { route: 'send', status: 500 });
    expect(res.status).toBe(405);
    expect(res.headers.get('allow')).toBe('GET, POST, DELETE');
  });
});

describe('DNS rebinding', () => {
  function get(path: string, host: string, method = 'GET'): Promise<number> {
    return new Promise((resolve, reject) => {
      const req = request(`${url}${path}`, { method, headers: { host } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.end();
    });
  }

  it('serves the page and the switches only to a Host that is an IP address or localhost', async () => {
    const port = new URL(url).port;
    for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`]) expect(await get('/', host)).toBe(200);
    expect(await get('/', `attacker.example:${port}`)).toBe(403);
    expect(await get('/_inbox/rows', 'attacker.example')).toBe(403);
    expect(await get('/_fake/faults', 'attacker.example', 'DELETE')).toBe(403);
    // the API itself answers any Host (the gateway may use a name)
    expect(await get('/token', 'cakemail.internal', 'POST')).toBe(422);
  });
});

describe('the inbox page', () => {
  it('is served at the base URL with a strict CSP, and escapes what the message carries', async () => {
    await send({ content: { type: 'transactional', subject: '<script>alert(1)</script>', text: 'x', encoding: 'utf-8' }, tags: ['t_1'] });
    const res = await fetch(`${url}/`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8');
    const csp = res.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain('unsafe-inline');
    const html = await res.text();
    expect(html).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(html).not.toContain('<script>alert(1)');
    expect(html).toContain('<span class="tag">t_1</span>');
    // nothing from the network: every script and style is the fake's own
    expect(html).not.toMatch(/(src|href)="https?:/);
  });

  it('serves the HTML body with its own CSP (no script, nothing remote) and the JSON as sent', async () => {
    const html = '<p>Hi</p><script>alert(1)</script><img src="https://example.com/x.png">';
    await send({ content: { type: 'transactional', subject: 'S', html, encoding: 'utf-8' } });
    const seq = fake.callsTo('send')[0]?.seq;
    const body = await fetch(`${url}/_inbox/call/${seq}/html`);
    expect(body.headers.get('content-security-policy')).toBe(
      "default-src 'none'; style-src 'unsafe-inline'; img-src data:; sandbox; base-uri 'none'; form-action 'none'; frame-ancestors 'self'",
    );
    expect(await body.text()).toBe(html);
    const page = await (await fetch(`${url}/_inbox/call/${seq}`)).text();
    expect(page).toMatch(/<iframe class="html" sandbox="" [^>]*src="\/_inbox\/call\/\d+\/html">/);
    const json = (await (await fetch(`${url}/_inbox/call/${seq}/json`)).json()) as { content: { html: string } };
    expect(json.content.html).toBe(html);
  });

  it('downloads an attachment with its name and type', async () => {
    const pdf = Buffer.from('%PDF-1.4 fake');
    await send({ attachment: [{ filename: 'invoice-1.pdf', type: 'pdf', content: pdf.toString('base64') }] });
    const seq = fake.callsTo('send')[0]?.seq;
    const res = await fetch(`${url}/_inbox/call/${seq}/attachment/0`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/pdf');
    expect(res.headers.get('content-disposition')).toBe('attachment; filename="invoice-1.pdf"');
    expect(Buffer.from(await res.arrayBuffer()).equals(pdf)).toBe(true);
    expect((await fetch(`${url}/_inbox/call/${seq}/attachment/1`)).status).toBe(404);
  });

  it('clears only with the page’s header', async () => {
    await send({});
    expect((await fetch(`${url}/_inbox/clear`, { method: 'POST' })).status).toBe(403);
    expect(fake.calls.length).toBeGreaterThan(0);
    expect((await fetch(`${url}/_inbox/clear`, { method: 'POST', headers: { 'x-inbox': '1' } })).status).toBe(204);
    expect(fake.calls).toEqual([]);
  });

  it('joins the gateway’s note to its calls: an accepted one by id, a refused one by its request', async () => {
    const started = Date.now();
    const ok = await send({ email: 'a@example.test' });
    fake.faults.add('send', { status: 500, times: 1 });
    expect((await send({ email: 'b@example.test' })).status).toBe(500);
    const note: InboxNote = {
      sessionId: 's1',
      started,
      finished: Date.now(),
      mailFrom: DEFAULT_SENDER.email,
      recipients: ['a@example.test', 'B@example.test'],
      accountId: DEFAULT_ACCOUNT_ID,
      headers: [{ name: 'X-Tags', raw: 'X-Tags: a', fate: 'field', field: 'tags', reason: 'gateway control header, never forwarded' }],
      outcomes: [
        { rcpt: 'a@example.test', ok: true, id: ok.id as string, reused: false },
        { rcpt: 'B@example.test', ok: false, reply: '451 4.3.0 Cakemail is temporarily unavailable, try again later', temporary: true },
      ],
      reply: '451 4.3.0 Cakemail is temporarily unavailable, try again later',
    };
    fake.inbox.note(note);
    const rows = await (await fetch(`${url}/_inbox/rows`)).text();
    expect(rows.match(/451 4\.3\.0 Cakemail is temporarily unavailable/g)).toHaveLength(2);
    expect(rows).toContain('Fault injected');
    const [refused, accepted] = fake.callsTo('send').reverse();
    const page = await (await fetch(`${url}/_inbox/call/${refused?.seq}`)).text();
    expect(page).toContain('<td><code>X-Tags</code></td>');
    expect(page).toContain(`accepted as <code>${ok.id}</code>`);
    expect(await (await fetch(`${url}/_inbox/call/${accepted?.seq}`)).text()).toContain('reply the client got');
  });

  it('lists an SMTP message that made no call, and pushes a change event to open pages', async () => {
    const res = await fetch(`${url}/_inbox/events`);
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    const first = new TextDecoder().decode((await reader.read()).value);
    expect(first).toContain('event: hello');
    fake.inbox.note({
      sessionId: 's2',
      started: Date.now(),
      finished: Date.now(),
      mailFrom: DEFAULT_SENDER.email,
      recipients: ['c@example.test'],
      headers: [{ name: 'Subject', raw: 'Subject: <b>tagged</b>', fate: 'field', field: 'content.subject' }],
      outcomes: [],
      reply: '550 5.6.0 Invalid tag "a b": tags may contain only letters, digits, - and _',
    });
    expect(new TextDecoder().decode((await reader.read()).value)).toContain('event: change');
    await reader.cancel();
    const rows = await (await fetch(`${url}/_inbox/rows`)).text();
    expect(rows).toContain('no API call');
    expect(rows).toContain('&lt;b&gt;tagged&lt;/b&gt;');
    expect(rows).toContain('550 5.6.0 Invalid tag &quot;a b&quot;');
  });
});
