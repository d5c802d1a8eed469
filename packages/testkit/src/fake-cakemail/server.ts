// createFakeCakemail: the HTTP server, routing, faults and recording.

import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { defaultFaultReply, json, methodNotAllowed, notFound, tooLarge, type Reply } from './errors.js';
import { Faults } from './faults.js';
import { readBody, writeJson } from './http.js';
import { createInbox, isLocalHost } from './inbox/index.js';
import { Recorder, redactBody, redactHeaders } from './recorder.js';
import { parseBody, type Body, type Call, type Deps } from './request.js';
import { handleCreateList, handleLists } from './route-lists.js';
import { handleSend, type SendResult } from './route-send.js';
import { handleSenders } from './route-senders.js';
import { handleToken } from './route-token.js';
import { DEFAULT_ACCOUNTS, DEFAULT_USERS } from './seed.js';
import { Store } from './store.js';
import { Tokens } from './tokens.js';
import type { CountKey, FakeCakemail, FakeCakemailOptions, Fault, FaultEffect, RecordedCall, RouteKey } from './types.js';

export const DEFAULT_TOKEN_TTL_SECONDS = 3600;
export const DEFAULT_MAX_BODY_BYTES = 64 * 1024 * 1024;

const ROUTES: Readonly<Record<string, Readonly<Record<string, RouteKey>>>> = {
  '/token': { POST: 'token' },
  '/brands/default/senders': { GET: 'senders' },
  '/lists': { GET: 'lists', POST: 'createList' },
  '/v2/emails': { POST: 'send' },
};

/** What one call turned into, for the record. */
interface Outcome {
  status: number | null;
  response: unknown;
  fault?: FaultEffect;
}

export function createFakeCakemail(options: FakeCakemailOptions = {}): FakeCakemail {
  const now = options.now ?? Date.now;
  const nowSeconds = (): number => Math.floor(now() / 1000);
  const maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const store = new Store(options.accounts ?? DEFAULT_ACCOUNTS, options.users ?? DEFAULT_USERS, nowSeconds);
  const tokens = new Tokens(now);
  const faults = new Faults();
  const recorder = new Recorder((options.record ?? 'full') === 'full');
  const deps: Deps = {
    store,
    tokens,
    tokenTtlSeconds: options.tokenTtlSeconds ?? DEFAULT_TOKEN_TTL_SECONDS,
    mfaChallengeStatus: options.mfaChallengeStatus ?? 200,
    nowSeconds,
  };
  let stopping = new AbortController();
  let baseUrl: string | undefined;
  const inbox = createInbox({
    recorder,
    faults,
    senderOf: (accountId, senderId) => store.sendersOf(accountId).find((s) => s.id === senderId),
    baseUrl: () => baseUrl ?? '',
    maxBodyBytes,
  });

  const server = createServer((req, res) => {
    onRequest(req, res).catch((err: unknown) => {
      const msg = err instanceof Error ? err.message : String(err);
      writeJson(res, json(500, { detail: [{ msg: `fake-cakemail internal error: ${msg}`, type: 'server_error' }] }));
    });
  });
  server.keepAliveTimeout = 30_000;

  async function onRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const arrived = Date.now();
    const started = performance.now();
    const method = req.method ?? 'GET';
    const url = new URL(req.url ?? '/', 'http://fake.invalid');
    const path = url.pathname;

    if (await inbox.handle(req, res, url)) return;
    if (path.startsWith('/_fake/')) {
      // the recorded calls hold whole emails: like the inbox, never to a name that could be rebound
      writeJson(
        res,
        isLocalHost(req.headers.host)
          ? devEndpoint(method, path, url.searchParams)
          : json(403, { detail: [{ msg: 'use the fake by IP address or localhost', type: 'forbidden' }] }),
      );
      return;
    }

    const methods = ROUTES[path];
    const route: RouteKey | undefined = methods?.[method];
    const countKey: CountKey = route ?? 'other';
    recorder.count(countKey);
    const query = Object.fromEntries(url.searchParams);

    const read = await readBody(req, maxBodyBytes);
    if (read.kind === 'aborted') return;
    let body: Body = { kind: 'none' };
    let outcome: Outcome;
    if (read.kind === 'too-large') {
      outcome = respond(res, tooLarge(maxBodyBytes), { connection: 'close' });
    } else {
      body = parseBody(read.body, req.headers['content-type']);
      outcome =
        route === undefined
          ? respond(res, methods === undefined ? notFound() : methodNotAllowed())
          : await handle(route, { query, headers: req.headers, body }, req, res);
    }

    if (!recorder.full) return;
    const call: RecordedCall = {
      seq: recorder.nextSeq(),
      time: new Date(arrived).toISOString(),
      route: countKey,
      method,
      path,
      query,
      headers: redactHeaders(req.headers),
      body: recordedBody(body),
      status: outcome.status,
      response: redactBody(outcome.response),
      durationMs: Math.round((performance.now() - started) * 1000) / 1000,
      ...(outcome.fault === undefined ? {} : { fault: outcome.fault }),
    };
    recorder.record(call);
    inbox.changed();
  }

  async function handle(route: RouteKey, call: Call, req: IncomingMessage, res: ServerResponse): Promise<Outcome> {
    const fault = faults.take(route, route === 'send' ? recipientOf(call.body) : undefined);
    if (fault?.delayMs !== undefined) {
      try {
        await sleep(fault.delayMs, undefined, { signal: stopping.signal });
      } catch {
        return { status: null, response: undefined, fault: 'delay' };
      }
    }
    if (fault?.reset === true) {
      req.socket.destroy();
      return { status: null, response: undefined, fault: 'reset' };
    }
    if (fault?.hang === true) {
      return { status: null, response: undefined, fault: 'hang' };
    }
    if (fault?.status !== undefined) {
      return { ...respond(res, forcedReply(fault), retryAfterHeader(fault)), fault: 'status' };
    }

    const delayed = fault?.delayMs !== undefined ? { fault: 'delay' as const } : {};
    if (route === 'send') {
      const result: SendResult = handleSend(call, deps, fault?.sendStatus ?? 'queued');
      if (result.accepted !== undefined) recorder.sent({ ...result.accepted, time: new Date().toISOString() });
      const forced = fault?.sendStatus !== undefined && result.accepted !== undefined ? { fault: 'sendStatus' as const } : delayed;
      return { ...respond(res, result.reply), ...forced };
    }
    const handler = route === 'token' ? handleToken : route === 'senders' ? handleSenders : route === 'lists' ? handleLists : handleCreateList;
    return { ...respond(res, handler(call, deps)), ...delayed };
  }

  function devEndpoint(method: string, path: string, params: URLSearchParams): Reply {
    if (method !== 'GET') return methodNotAllowed();
    if (path === '/_fake/health') return json(200, { status: 'ok', record: recorder.full ? 'full' : 'counts' });
    if (path === '/_fake/counts') return json(200, recorder.counts());
    if (path === '/_fake/calls') {
      const route = params.get('route');
      return json(200, route === null ? recorder.calls : recorder.calls.filter((c) => c.route === route));
    }
    return notFound();
  }

  return {
    get url(): string {
      if (baseUrl === undefined) throw new Error('fake-cakemail: not listening; call listen() first');
      return baseUrl;
    },
    async listen(port = 0, host = '127.0.0.1'): Promise<string> {
      if (baseUrl !== undefined) throw new Error(`fake-cakemail: already listening on ${baseUrl}`);
      stopping = new AbortController();
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          server.removeListener('error', reject);
          resolve();
        });
      });
      const address = server.address() as AddressInfo;
      const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
      baseUrl = `http://${shownHost}:${address.port}`;
      return baseUrl;
    },
    async close(): Promise<void> {
      if (baseUrl === undefined) return;
      baseUrl = undefined;
      stopping.abort();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
    get calls() {
      return recorder.calls;
    },
    callsTo: (route) => recorder.calls.filter((c) => c.route === route),
    counts: () => recorder.counts(),
    sent: () => [...recorder.sentEmails],
    reset(): void {
      recorder.reset();
      faults.clear();
      inbox.clear();
    },
    faults,
    inbox,
    addUser: (user) => store.addUser(user),
    addAccount: (account) => store.addAccount(account),
    addSender: (accountId, sender) => store.addSender(accountId, sender),
    addList: (accountId, list) => store.addList(accountId, list),
    confirmSender: (accountId, senderId, confirmed = true) => store.confirmSender(accountId, senderId, confirmed),
    senders: (accountId) => store.sendersOf(accountId).map((s) => ({ ...s })),
    lists: (accountId) => store.listsOf(accountId).map((l) => ({ ...l })),
    expireTokens: () => tokens.expireAll(),
    setPassword: (email, password) => store.setPassword(email, password),
    revokeTokens: (email) => tokens.revokeUser(email),
  };
}

function respond(res: ServerResponse, reply: Reply, extraHeaders?: Readonly<Record<string, string>>): Outcome {
  writeJson(res, reply, extraHeaders);
  return { status: reply.status, response: reply.body };
}

function forcedReply(fault: Fault): Reply {
  const status = fault.status ?? 500;
  const base = defaultFaultReply(status);
  return {
    status,
    body: fault.body === undefined ? base.body : fault.body,
    headers: { ...base.headers, ...fault.headers },
  };
}

function retryAfterHeader(fault: Fault): Record<string, string> | undefined {
  return fault.retryAfter === undefined ? undefined : { 'retry-after': String(fault.retryAfter) };
}

function recipientOf(body: Body): string | undefined {
  if (body.kind !== 'json' || typeof body.value !== 'object' || body.value === null) return undefined;
  const email = (body.value as { email?: unknown }).email;
  return typeof email === 'string' ? email : undefined;
}

function recordedBody(body: Body): unknown {
  switch (body.kind) {
    case 'json':
    case 'form':
      return redactBody(body.value);
    case 'bad-json':
      return body.text;
    case 'other':
      return `<${body.contentType || 'no content-type'} body>`;
    default:
      return undefined;
  }
}
