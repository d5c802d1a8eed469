/**
 * The Cakemail API client: the few calls the gateway makes, typed, on one keep-alive undici
 * `Pool` per base URL.
 *
 * Every call takes a `deadline` (epoch ms, the per-message budget). Inside it, 5xx answers,
 * 429s, timeouts and connection errors are retried with exponential backoff and full jitter
 * (a 429's Retry-After is honoured instead); when the next attempt could not start before the
 * deadline the call gives up at once with a `temporary` CakemailError. It never sleeps past
 * the deadline. Each attempt is bounded by `timeoutMs` (and by what is left of the deadline).
 */
import { Readable } from 'node:stream';
import { Pool } from 'undici';
import type { Dispatcher } from 'undici';
import { CakemailError, CakemailMfaError, certainlyNotProcessed, deadlineError, httpError } from './errors.js';
import { createListSchema, isChallenge, listsSchema, parseJson, parseSendAnswer, parseToken, sendersSchema, validate } from './responses.js';
import type { EmailBody } from './types.js';

export interface RetryPolicy {
  /** First backoff ceiling; the n-th retry waits a random time in [0, base·2^(n-1)]. Default 100. */
  readonly baseDelayMs?: number;
  /** Highest backoff ceiling. Default 5000. */
  readonly maxDelayMs?: number;
  /** Attempts per call, the first included. Default 6. The deadline usually ends it first. */
  readonly maxAttempts?: number;
}

export interface CakemailClientOptions {
  /** Base URL, e.g. `https://api.cakemail.dev`. A path prefix is kept. */
  readonly apiUrl: string;
  /** Timeout of one HTTP attempt, headers and body (CAKEMAIL_TIMEOUT_MS). */
  readonly timeoutMs: number;
  readonly retry?: RetryPolicy;
  /** Use this dispatcher instead of the client's own Pool (tests); it is not closed by close(). */
  readonly dispatcher?: Dispatcher;
  /** Keep-alive connections in the client's own Pool (CAKEMAIL_CONNECTIONS). */
  readonly connections: number;
  /** For tests. */
  readonly random?: () => number;
  /** Told of each HTTP attempt when it ends (metrics); what it throws is ignored. */
  readonly onAttempt?: (attempt: UpstreamAttempt) => void;
}

/**
 * How an HTTP attempt ended: its status class (429 apart), or, without an answer, `timeout`,
 * `network` (refused, reset, DNS) or `aborted` (the caller's signal).
 */
export type UpstreamOutcome = '2xx' | '3xx' | '4xx' | '429' | '5xx' | 'timeout' | 'network' | 'aborted';

export interface UpstreamAttempt {
  /** The call, method and path without the query, e.g. `POST /v2/emails`. */
  readonly call: string;
  readonly outcome: UpstreamOutcome;
  /** From the dispatch to the answer's end, or to the failure. */
  readonly seconds: number;
}

export interface CallOptions {
  /** Epoch ms after which no attempt starts and no backoff sleeps (UPSTREAM_DEADLINE_MS). */
  readonly deadline: number;
  /**
   * Stops the call: no further attempt starts, and the one in flight is cut (a temporary
   * `aborted` error). A queue worker's shutdown.
   */
  readonly signal?: AbortSignal;
}

export interface TokenResult {
  readonly accessToken: string;
  readonly refreshToken: string;
  /** Seconds. */
  readonly expiresIn: number;
  readonly accounts: readonly number[];
}

export interface SenderInfo {
  readonly id: string;
  readonly name: string;
  readonly email: string;
  readonly confirmed: boolean;
}

export interface ListInfo {
  readonly id: number;
  readonly name: string;
}

export interface CreateListInput {
  readonly name: string;
  /** A confirmed sender id, required by the API as the list's default sender. */
  readonly senderId: string;
  readonly language?: string;
}

export interface SendResult {
  /** Cakemail's id of the email (uuid). */
  readonly id: string;
  readonly status: 'queued' | 'rejected' | 'error';
}

/**
 * A `POST /v2/emails` body already serialized to bytes, so the same (possibly large) content
 * can be sent to many recipients without serializing it again. See `prepareEmail()`.
 */
export interface EncodedBody {
  readonly chunks: readonly Uint8Array[];
  /** Bytes. */
  readonly length: number;
  /** The same body as text, when it was built as text (a small request): sent as it is. */
  readonly text?: string;
}


interface RequestSpec {
  readonly method: 'GET' | 'POST';
  readonly path: string;
  readonly query?: Record<string, string | number | undefined>;
  readonly token?: string;
  readonly form?: Record<string, string | number | undefined>;
  readonly json?: unknown;
  readonly encoded?: EncodedBody;
  /** /token: 401 and 403 mean bad credentials. */
  readonly tokenCall?: boolean;
  /**
   * false for `POST /v2/emails`: sending twice queues two emails. Such a call
   * waits for its answer up to the deadline (no per-call timeout), and is retried
   * only when Cakemail certainly did not process it.
   */
  readonly idempotent?: boolean;
}


const SENDERS_PER_PAGE = 100;
const LISTS_PER_PAGE = 100;
const MAX_PAGES = 100;

export class CakemailClient {
  readonly #dispatcher: Dispatcher;
  readonly #ownsDispatcher: boolean;
  readonly #origin: string;
  readonly #basePath: string;
  readonly #timeoutMs: number;
  readonly #baseDelay: number;
  readonly #maxDelay: number;
  readonly #maxAttempts: number;
  readonly #random: () => number;
  readonly #onAttempt: ((attempt: UpstreamAttempt) => void) | undefined;

  constructor(options: CakemailClientOptions) {
    const url = new URL(options.apiUrl);
    this.#origin = url.origin;
    this.#basePath = url.pathname.replace(/\/+$/, '');
    this.#timeoutMs = options.timeoutMs;
    this.#baseDelay = options.retry?.baseDelayMs ?? 100;
    this.#maxDelay = options.retry?.maxDelayMs ?? 5000;
    this.#maxAttempts = options.retry?.maxAttempts ?? 6;
    this.#random = options.random ?? Math.random;
    this.#onAttempt = options.onAttempt;
    if (options.dispatcher) {
      this.#dispatcher = options.dispatcher;
      this.#ownsDispatcher = false;
    } else {
      this.#dispatcher = new Pool(this.#origin, {
        connections: options.connections,
        keepAliveTimeout: 30_000,
        keepAliveMaxTimeout: 120_000,
      });
      this.#ownsDispatcher = true;
    }
  }

  /** `POST /token` with `grant_type=password`. Throws CakemailMfaError on an MFA challenge. */
  async token(username: string, password: string, accountId: number | undefined, opts: CallOptions): Promise<TokenResult> {
    const body = await this.#call(
      { method: 'POST', path: '/token', form: { grant_type: 'password', username, password, account_id: accountId }, tokenCall: true },
      opts,
    );
    return parseToken(body);
  }

  /** `POST /token` with `grant_type=refresh_token`. */
  async refresh(refreshToken: string, opts: CallOptions): Promise<TokenResult> {
    const body = await this.#call(
      { method: 'POST', path: '/token', form: { grant_type: 'refresh_token', refresh_token: refreshToken }, tokenCall: true },
      opts,
    );
    return parseToken(body);
  }

  /** Every sender of the account, all pages (`GET /brands/default/senders`). */
  async listSenders(token: string, accountId: number, opts: CallOptions): Promise<SenderInfo[]> {
    const out: SenderInfo[] = [];
    for (let page = 1; page <= MAX_PAGES; page++) {
      const body = await this.#call(
        { method: 'GET', path: '/brands/default/senders', token, query: { account_id: accountId, page, per_page: SENDERS_PER_PAGE } },
        opts,
      );
      const parsed = validate(sendersSchema, body, 'GET /brands/default/senders');
      for (const s of parsed.data) out.push({ id: s.id, name: s.name ?? '', email: s.email, confirmed: s.confirmed });
      const count = parsed.pagination?.count;
      if (parsed.data.length < SENDERS_PER_PAGE || (count !== undefined && out.length >= count)) break;
    }
    return out;
  }

  /** The first list whose name is exactly `name` (`GET /lists?filter=name==…`), or undefined. */
  async findListByName(token: string, accountId: number, name: string, opts: CallOptions): Promise<ListInfo | undefined> {
    const body = await this.#call(
      { method: 'GET', path: '/lists', token, query: { account_id: accountId, filter: `name==${name}`, page: 1, per_page: 50 } },
      opts,
    );
    const parsed = validate(listsSchema, body, 'GET /lists');
    const found = parsed.data.find((l) => l.name === name);
    return found ? { id: found.id, name: found.name } : undefined;
  }

  /** Every list of the account, all pages (`GET /lists`). */
  async listLists(token: string, accountId: number, opts: CallOptions): Promise<ListInfo[]> {
    const out: ListInfo[] = [];
    for (let page = 1; page <= MAX_PAGES; page++) {
      const body = await this.#call({ method: 'GET', path: '/lists', token, query: { account_id: accountId, page, per_page: LISTS_PER_PAGE } }, opts);
      const parsed = validate(listsSchema, body, 'GET /lists');
      for (const l of parsed.data) out.push({ id: l.id, name: l.name });
      if (parsed.data.length < LISTS_PER_PAGE) break;
    }
    return out;
  }

  /** `POST /lists`; answers the new list's id. */
  async createList(token: string, accountId: number, input: CreateListInput, opts: CallOptions): Promise<number> {
    const json: Record<string, unknown> = { name: input.name, default_sender: { id: input.senderId } };
    if (input.language !== undefined) json['language'] = input.language;
    const body = await this.#call({ method: 'POST', path: '/lists', token, query: { account_id: accountId }, json }, opts);
    return validate(createListSchema, body, 'POST /lists').id;
  }

  /**
   * `POST /v2/emails` for one recipient. Answers Cakemail's id and status; a `rejected` or
   * `error` status is returned, not thrown.
   */
  sendEmail(token: string, accountId: number, body: EmailBody | EncodedBody, opts: CallOptions): Promise<SendResult> {
    const spec: RequestSpec = isEncoded(body)
      ? { method: 'POST', path: '/v2/emails', token, query: { account_id: accountId }, encoded: body, idempotent: false }
      : { method: 'POST', path: '/v2/emails', token, query: { account_id: accountId }, json: body, idempotent: false };
    // Not an async function: one suspended function less per message in flight.
    return this.#call(spec, opts).then(parseSendAnswer);
  }

  /** Closes the client's own Pool (not an injected dispatcher). */
  async close(): Promise<void> {
    if (this.#ownsDispatcher) await this.#dispatcher.close();
  }

  /** Closes the connections at once: calls in flight fail. */
  async destroy(): Promise<void> {
    if (this.#ownsDispatcher) await this.#dispatcher.destroy();
  }

  async #call(spec: RequestSpec, opts: CallOptions): Promise<unknown> {
    const name = `${spec.method} ${spec.path}`;
    let last: CakemailError | undefined;
    for (let attempt = 1; ; attempt++) {
      const remaining = opts.deadline - Date.now();
      if (remaining <= 0) throw deadlineError(name, last);
      if (opts.signal?.aborted === true) throw abortedError(name);
      const once = spec.idempotent === false;
      try {
        return await this.#attempt(spec, name, once ? timerFor(remaining) : Math.min(this.#timeoutMs, remaining), opts.signal);
      } catch (err) {
        // A 2xx we cannot read may have done its work: temporary, but not sent again.
        if (!(err instanceof CakemailError) || err.kind !== 'temporary' || err.reason === 'invalid_response' || err.reason === 'aborted') throw err;
        // A send that may have been processed (a timeout, a reset, a 500) is not repeated here:
        // the client gets a 4xx and its retry decides, so one retry sends at most once more.
        if (once && !certainlyNotProcessed(err)) throw err;
        last = err;
      }
      if (attempt >= this.#maxAttempts) throw last;
      const delay = last.retryAfterMs ?? this.#backoff(attempt);
      // Never sleep past the deadline: give up now with the temporary error.
      if (Date.now() + delay >= opts.deadline) throw last;
      await sleep(delay);
    }
  }

  #backoff(attempt: number): number {
    const ceiling = Math.min(this.#maxDelay, this.#baseDelay * 2 ** (attempt - 1));
    return Math.floor(this.#random() * ceiling);
  }

  async #attempt(spec: RequestSpec, name: string, timeoutMs: number, signal: AbortSignal | undefined): Promise<unknown> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (spec.token !== undefined) headers['authorization'] = `Bearer ${spec.token}`;
    let body: string | Uint8Array | Readable | undefined;
    if (spec.form) {
      headers['content-type'] = 'application/x-www-form-urlencoded';
      body = queryString(spec.form);
    } else if (spec.encoded) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = String(spec.encoded.length);
      body = encodedBody(spec.encoded);
    } else if (spec.json !== undefined) {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(spec.json);
    }
    let path = this.#basePath + spec.path;
    if (spec.query) {
      const qs = queryString(spec.query);
      if (qs) path += `?${qs}`;
    }

    const call = new Call(timeoutMs, signal);
    const started = this.#onAttempt === undefined ? 0 : performance.now();
    let outcome: UpstreamOutcome = 'network';
    try {
      this.#dispatcher.dispatch({ origin: this.#origin, path, method: spec.method, headers, body: body ?? null }, call);
      const { status, text, retryAfter } = await call.answer;
      outcome = status === 429 ? '429' : status < 300 ? '2xx' : status < 400 ? '3xx' : status < 500 ? '4xx' : '5xx';
      const json = parseJson(text);
      if (status >= 200 && status < 300) {
        if (json === undefined) {
          throw new CakemailError('temporary', `Cakemail ${name} answered ${status} with no JSON body`, { status, reason: 'invalid_response' });
        }
        return json;
      }
      // The spec's text answers MFA with 401 and a `challenge` (its schema with a 200): both mean MFA.
      if (spec.tokenCall === true && status === 401 && isChallenge(json)) throw new CakemailMfaError();
      throw httpError(name, status, json, retryAfter, spec.tokenCall === true);
    } catch (err) {
      if (err instanceof CakemailError) throw err;
      if (call.timedOut) {
        outcome = 'timeout';
        throw new CakemailError('temporary', `Cakemail ${name} timed out after ${timeoutMs} ms`, { reason: 'timeout' });
      }
      if (signal?.aborted === true) {
        outcome = 'aborted';
        throw abortedError(name);
      }
      const code = (err as { code?: unknown }).code;
      throw new CakemailError('temporary', `Cakemail ${name} failed: ${typeof code === 'string' ? code : 'network error'}`, {
        reason: 'network',
        cause: err,
      });
    } finally {
      call.done();
      if (this.#onAttempt !== undefined) {
        try {
          this.#onAttempt({ call: name, outcome, seconds: (performance.now() - started) / 1000 });
        } catch {
          // metrics never fail a call
        }
      }
    }
  }
}

interface Answer {
  readonly status: number;
  readonly text: string;
  readonly retryAfter: string | undefined;
}

/**
 * One HTTP attempt, as undici's dispatch handler: the answer's status, its Retry-After and its
 * body collected as text, bounded by a timer and the caller's abort signal. `Pool.request()`
 * would wrap the same in an AsyncResource, a response stream and its consumer for every call,
 * which the gateway pays once per recipient; this handler is the least of it.
 */
class Call implements Dispatcher.DispatchHandler {
  readonly answer: Promise<Answer>;
  timedOut = false;
  #resolve!: (answer: Answer) => void;
  #reject!: (err: unknown) => void;
  #abort: ((err: Error) => void) | undefined;
  /** Set when the call was stopped (timer, signal) before undici connected it. */
  #stopped: Error | undefined;
  #settled = false;
  #status = 0;
  #retryAfter: string | undefined;
  #chunks: Buffer[] = [];
  readonly #timer: NodeJS.Timeout;
  readonly #signal: AbortSignal | undefined;
  readonly #onAbort = (): void => this.#stop(new Error('aborted'));

  constructor(timeoutMs: number, signal: AbortSignal | undefined) {
    this.answer = new Promise<Answer>((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    this.#timer = setTimeout(() => {
      this.timedOut = true;
      this.#stop(new Error('timed out'));
    }, timeoutMs);
    this.#signal = signal;
    // A queue worker's shutdown cuts the call too.
    if (signal) {
      if (signal.aborted) this.#stop(new Error('aborted'));
      else signal.addEventListener('abort', this.#onAbort, { once: true });
    }
  }

  /** Cuts the attempt: the caller gets `err` at once; undici's request is aborted (now, or when it starts). */
  #stop(err: Error): void {
    if (this.#settled) return;
    this.#stopped = err;
    this.#fail(err);
    this.#abort?.(err);
  }

  #fail(err: unknown): void {
    if (this.#settled) return;
    this.#settled = true;
    this.#reject(err);
  }

  /** The attempt is over, whatever its outcome. */
  done(): void {
    clearTimeout(this.#timer);
    this.#signal?.removeEventListener('abort', this.#onAbort);
  }

  onConnect(abort: (err?: Error) => void): void {
    if (this.#stopped) abort(this.#stopped);
    else this.#abort = abort;
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[]): boolean {
    this.#status = statusCode;
    for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
      const key = rawHeaders[i];
      if (key !== undefined && key.length === 11 && key.toString('latin1').toLowerCase() === 'retry-after') {
        this.#retryAfter ??= rawHeaders[i + 1]?.toString('latin1');
      }
    }
    return true;
  }

  onData(chunk: Buffer): boolean {
    this.#chunks.push(chunk);
    return true;
  }

  onComplete(): void {
    if (this.#settled) return;
    this.#settled = true;
    const chunks = this.#chunks;
    const text = chunks.length === 1 ? (chunks[0] as Buffer).toString('utf8') : Buffer.concat(chunks).toString('utf8');
    this.#resolve({ status: this.#status, text, retryAfter: this.#retryAfter });
  }

  onError(err: Error): void {
    this.#fail(err);
  }
}

/**
 * A send's timer runs to the deadline, whose remaining time differs by a few ms from one
 * call to the next. Node keeps one list of timers per duration: a distinct duration per call
 * makes a new list, a heap insert and removal, every time. Beyond 10 s the duration is rounded
 * down to the second, so that sends share a list; a send then gives up at most 1 s before its
 * deadline, never after it.
 */
export function timerFor(remaining: number): number {
  return remaining > 10_000 ? Math.floor(remaining / 1000) * 1000 : remaining;
}

function abortedError(name: string): CakemailError {
  return new CakemailError('temporary', `Cakemail ${name} stopped: the worker is shutting down`, { reason: 'aborted' });
}

/**
 * `k=v&…` as URLSearchParams writes it, undefined values left out. The keys are this file's
 * own identifiers (`account_id`, `per_page`, …), which need no encoding; numbers neither.
 */
function queryString(params: Record<string, string | number | undefined>): string {
  let out = '';
  for (const key in params) {
    const value = params[key];
    if (value === undefined) continue;
    if (out) out += '&';
    out += typeof value === 'number' ? `${key}=${value}` : new URLSearchParams({ [key]: value }).toString();
  }
  return out;
}

/**
 * Up to this many bytes, an encoded body goes to undici as one buffer, its cheapest path (the
 * head and the body corked into one write); a larger one is streamed from its chunks, not copied.
 */
const JOIN_MAX_BYTES = 256 * 1024;

function encodedBody(body: EncodedBody): string | Uint8Array | Readable {
  if (body.text !== undefined) return body.text;
  const { chunks, length } = body;
  if (chunks.length === 1 && chunks[0] !== undefined) return chunks[0];
  if (length <= JOIN_MAX_BYTES) return Buffer.concat(chunks, length);
  return Readable.from(chunks, { objectMode: false });
}

function isEncoded(body: EmailBody | EncodedBody): body is EncodedBody {
  return typeof (body as Partial<EncodedBody>).length === 'number';
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
