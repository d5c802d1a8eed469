/**
 * The gateway's logger censors secrets by hand instead of with pino's wildcard
 * `redact` (which costs ~13 µs a line). Here every shape the packages log, and
 * every place a secret can sit, is written by both: the gateway's logger and
 * pino configured as the gateway's logger was, with `redact: { paths:
 * redactPaths }`. The lines must be the same, byte for byte, and no secret may
 * appear in the gateway's.
 */
import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';
import { describe, expect, it, vi } from 'vitest';
import { CENSOR, createLogger, isoTime, redactPaths } from '../src/logger.js';

/** Every secret value starts with this, so that one search finds any of them. */
const S = 'S3CR3T';

interface Sink {
  readonly lines: string[];
  readonly destination: Writable;
}

function sink(): Sink {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer | string, _enc, done) {
      lines.push(...chunk.toString().split('\n').filter((l) => l !== ''));
      done();
    },
  });
  return { lines, destination };
}

/** pino as `createLogger` configured it with `redact` (the reference). */
function withRedact(destination: Writable): Logger {
  return pino(
    {
      level: 'trace',
      base: { service: 'smtp-gateway' },
      redact: { paths: redactPaths, censor: CENSOR },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label: string) => ({ level: label }) },
    },
    destination,
  );
}

const untimed = (line: string): string => line.replace(/,"time":"[^"]*"/, '');

/** Both loggers write the same calls; the lines without their time. */
function both(write: (log: Logger) => void): { expected: string[]; actual: string[] } {
  const ref = sink();
  const ours = sink();
  for (const [log, into] of [
    [withRedact(ref.destination), ref],
    [createLogger({ level: 'trace', format: 'json', destination: ours.destination }), ours],
  ] as const) {
    write(log);
    expect(into.lines.length).toBeGreaterThan(0);
  }
  return { expected: ref.lines.map(untimed), actual: ours.lines.map(untimed) };
}

class CakemailError extends Error {
  constructor(
    message: string,
    readonly kind: string,
    readonly status: number,
  ) {
    super(message);
    this.name = 'CakemailError';
  }
}
/** packages/cakemail/src/auth.ts `describe()` */
function describeErr(err: unknown): Record<string, unknown> {
  if (err instanceof CakemailError) return { type: err.name, kind: err.kind, reason: 'http', status: err.status, message: err.message };
  if (err instanceof Error) return { type: err.name, message: err.message };
  return { type: typeof err };
}

type Case = readonly [name: string, write: (log: Logger) => void];

/** What the packages log today (grep `log.`/`logger.` in packages/*\/src and apps/gateway/src), with no secret in it. */
const callSites: Case[] = [
  ['relay: relayed', (l) => l.info({ event: 'relayed', accountId: 42, fingerprint: '0123456789abcdef', bytes: 2048, recipients: 2, accepted: 2, alreadyAccepted: 0, refused: 0, temporaryFailures: 0, ids: ['id-1', 'id-2'], durationMs: 3 }, 'relayed to Cakemail')],
  ['relay: relaying message', (l) => l.debug({ from: 'a@example.com', headerFrom: undefined, to: ['b@example.com', 'c@example.com'] }, 'relaying message')],
  ['relay: refused list', (l) => l.debug({ refused: [{ to: 'b@example.com', reply: '550 5.1.1 no' }] }, 'recipients refused by Cakemail')],
  ['relay: observer failed', (l) => l.warn({ err: describeErr(new TypeError('boom')) }, 'relay observer failed')],
  ['relay: Cakemail error', (l) => l.warn({ err: describeErr(new CakemailError('unavailable', 'upstream', 503)), during: 'send' }, 'Cakemail temporarily unavailable')],
  ['relay: not an error', (l) => l.error({ err: describeErr('x'), during: 'send' }, 'relay failed')],
  ['relay: inflight_wait', (l) => l.info({ event: 'inflight_wait' }, 'a delivery of this message is in flight, waiting for its outcome')],
  ['relay: bounce_sent', (l) => l.info({ event: 'bounce_sent', accountId: 42, id: 'b-1', refused: 1 }, 'delivery status notification sent')],
  ['relay: bounce_failed', (l) => l.warn({ event: 'bounce_failed', accountId: 42, err: { reply: '451 4.3.0 later' } }, 'delivery status notification not sent')],
  ['relay: template message', (l) => l.warn({ err: describeErr(new Error('down')) }, `accepted store unavailable, ${'the retry may send it again'}`)],
  ['queue: err as a string', (l) => l.warn({ err: 'ECONNREFUSED' }, 'queue: Redis connection error')],
  ['queue: ids', (l) => l.warn({ queueId: 'q-1', previous: 'attempt-2' }, 'queue: resuming an attempt cut short by a crash; one recipient may receive it twice')],
  ['queue: recipients', (l) => l.warn({ queueId: 'q-1', recipients: 3 }, 'queue: a bounce could not be delivered; dropped')],
  ['accept: PROXY header', (l) => l.debug({ listener: 'smtp', peer: '10.0.0.1', remoteAddress: '192.0.2.1', version: 2 }, 'PROXY header')],
  ['accept: PROXY refused', (l) => l.info({ listener: 'smtp', peer: '10.0.0.1', reason: 'malformed', detail: 'bad signature' }, 'PROXY header refused')],
  ['accept: too many', (l) => l.info({ listener: 'smtps', remoteAddress: undefined, connections: 1000 }, 'too many connections')],
  ['server: unexpected error (a raw Error)', (l) => l.error({ err: new Error('kaboom'), during: 'data' }, 'unexpected error, answered 451 4.3.0')],
  ['server: connection', (l) => l.info({ remoteAddress: '::1', listener: 'smtp' }, 'connection')],
  ['server: auth refused', (l) => l.info({ mechanism: 'PLAIN', reply: 535, failures: 2 }, 'authentication refused')],
  ['server: size', (l) => l.info({ size: 1e6, free: 5 }, 'declared size over the free in-flight budget')],
  ['server: closed', (l) => l.info({}, 'closed')],
  ['server: TLS handshake failed', (l) => l.info({ listener: 'smtps', reason: 'no shared cipher', code: 'ERR_SSL', remoteAddress: '192.0.2.9' }, 'TLS handshake failed')],
  ['server: listening', (l) => l.info({ port: 587, securePort: 465, hostname: 'mx.example.com' }, 'SMTP listening')],
  ['tls: reloaded', (l) => l.info({ subject: 'CN=mx', notAfter: new Date(0).toISOString(), fingerprint256: 'AA:BB' }, 'TLS certificate reloaded')],
  ['tls: unreadable', (l) => l.error({ certPath: '/tls/tls.crt', keyPath: '/tls/tls.key', code: 'ENOENT' }, 'TLS files unreadable, keeping the current certificate')],
  ['gateway: Redis unavailable', (l) => l.warn({ store: 'accepted', err: 'connect ECONNREFUSED' }, 'Redis unavailable')],
  ['main: ready', (l) => l.info({ smtpPort: 587, smtpsPort: 465, opsPort: 9090, upstream: 'https://api.cakemail.dev' }, 'gateway ready')],
  ['main: fatal', (l) => l.fatal({ err: 'bad config' }, 'gateway failed to start')],
  ['a message alone', (l) => l.info('stopped')],
  ['an Error alone', (l) => l.error(new Error('alone'))],
  ['session children (smtp-core, then cakemail)', (l) => {
    const session = l.child({ sessionId: 'abc123' });
    session.info({ mechanism: 'PLAIN' }, 'authenticated');
    session.child({ sessionId: 'abc123' }).info({ event: 'relayed', ids: ['x'] }, 'relayed to Cakemail');
  }],
  ['a Date, numbers, booleans, null', (l) => l.info({ at: new Date(0), n: -0, big: 1e21, nan: Number.NaN, yes: true, nothing: null, nested: { at: new Date(0), list: [1, null] } }, 'values')],
];

class Credentials {
  readonly user = 'u';
  readonly password = `${S}-class`;
}
const withInheritedSecret = (): object => Object.assign(Object.create({ password: `${S}-inherited` }) as object, { user: 'u' });
const withHiddenSecret = (): object => Object.defineProperty({ user: 'u' }, 'password', { value: `${S}-hidden`, enumerable: false });
const errorWith = (props: Record<string, unknown>): Error => Object.assign(new Error('with props'), props);

/** Every place `redactPaths` censors, with a secret in it. */
const secrets: Case[] = [
  ...['password', 'pass', 'token', 'access_token', 'refresh_token', 'authorization', 'encryptionKey'].flatMap((key): Case[] => [
    [`top-level ${key}, a string`, (l) => l.info({ user: 'u', [key]: `${S}-${key}` }, 'm')],
    [`top-level ${key}, an object`, (l) => l.info({ [key]: { value: `${S}-${key}` } }, 'm')],
    [`top-level ${key}, an array`, (l) => l.info({ [key]: [`${S}-${key}`] }, 'm')],
    [`${key} one level down`, (l) => l.info({ event: 'login', cakemail: { user: 'u', [key]: `${S}-${key}-1` } }, 'm')],
    [`${key} one level down in the err serializer`, (l) => l.warn({ err: errorWith({ [key]: `${S}-${key}-err` }) }, 'm')],
    [`${key} in a child's bindings`, (l) => l.child({ sessionId: 's', [key]: `${S}-${key}-b` }).info({ a: 1 }, 'm')],
    [`${key} one level down in a child's bindings`, (l) => l.child({ auth: { [key]: `${S}-${key}-b1` } }).info('m')],
  ]),
  ['top-level secrets that are not strings', (l) => l.info({ password: null, token: 12345, pass: true, authorization: undefined }, 'm')],
  ['secret values that are not strings, one level down', (l) => l.info({ auth: { password: null, token: 1, pass: undefined } }, 'm')],
  ['headers.authorization at the top', (l) => l.info({ headers: { authorization: `Bearer ${S}-h0`, 'content-type': 'application/json' } }, 'm')],
  ['req.headers.authorization (a request object)', (l) => l.info({ req: { method: 'POST', url: '/v2/emails', headers: { authorization: `Bearer ${S}-req`, host: 'api' } } }, 'request')],
  ['res.headers.authorization (a response object)', (l) => l.info({ res: { statusCode: 401, headers: { authorization: `Bearer ${S}-res` } } }, 'response')],
  ['headers.authorization one level down, any key', (l) => l.info({ upstream: { url: '/token', headers: { authorization: `Basic ${S}-up` } } }, 'm')],
  ['headers.authorization in an Error', (l) => l.error({ err: errorWith({ headers: { authorization: `Bearer ${S}-eh` } }) }, 'm')],
  ['an Error with secrets, alone', (l) => l.error(errorWith({ token: `${S}-alone`, status: 401 }))],
  ['an Error with secrets and a message', (l) => l.error(errorWith({ access_token: `${S}-msg` }), 'login failed')],
  ['an Error under another key', (l) => l.warn({ error: errorWith({ password: `${S}-error-key` }) }, 'm')],
  ['a class instance', (l) => l.info({ creds: new Credentials() }, 'm')],
  ['an object without a prototype', (l) => l.info({ creds: Object.assign(Object.create(null) as object, { password: `${S}-null-proto` }) }, 'm')],
  ['a secret in a grandchild', (l) => l.child({ sessionId: 's' }).child({ token: `${S}-grandchild` }).info({ refresh_token: `${S}-line` }, 'm')],
  ['an Error in a child binding', (l) => l.child({ err: errorWith({ token: `${S}-binding-err` }) }).info('m')],
  ['a secret in the line and in the bindings under the same key', (l) => l.child({ auth: { password: `${S}-b` } }).info({ auth: { password: `${S}-l` } }, 'm')],
  ['interpolated object, top and one level down', (l) => l.info('login %o then %j', { user: 'u', password: `${S}-fmt` }, { a: { token: `${S}-fmt1` } })],
];

/** Secrets that no line prints (pino prints own enumerable properties, and a cause's message and stack only). */
const neverPrinted: Case[] = [
  ['an Error whose cause holds a secret', (l) => l.error({ err: new Error('outer', { cause: errorWith({ token: `${S}-cause` }) }) }, 'm')],
  ['inherited and non-enumerable secrets', (l) => l.info({ a: withInheritedSecret(), b: withHiddenSecret() }, 'm')],
];

/** Places `redactPaths` does not reach (two levels down, inside arrays); the lines must still be the same. */
const uncovered: Case[] = [
  ['two levels down', (l) => l.info({ a: { b: { password: 'depth-two' } } }, 'm')],
  ['inside an array', (l) => l.info({ refused: [{ to: 'x', token: 'in-array' }] }, 'm')],
  ['headers.authorization two levels down', (l) => l.info({ a: { res: { headers: { authorization: 'depth-three' } } } }, 'm')],
  ['a headers array', (l) => l.info({ headers: ['authorization', 'x'] }, 'm')],
  ['a function and undefined values', (l) => l.info({ token: () => 1, cb: () => 2, password: undefined }, 'm')],
  ['a function binding under a secret key', (l) => l.child({ token: () => 1, cb: () => 2 }).info('m')],
];

describe('createLogger censors secrets as pino redact with redactPaths does', () => {
  it.each(callSites)('%s: the same line', (_name, write) => {
    const { expected, actual } = both(write);
    expect(actual).toEqual(expected);
  });

  it.each(secrets)('%s: the same line, and no secret in it', (_name, write) => {
    const { expected, actual } = both(write);
    expect(actual).toEqual(expected);
    expect(actual.join('\n')).toContain(CENSOR);
    expect(actual.join('\n')).not.toContain(S);
  });

  it.each(neverPrinted)('%s: the same line, and no secret in it', (_name, write) => {
    const { expected, actual } = both(write);
    expect(actual).toEqual(expected);
    expect(actual.join('\n')).not.toContain(S);
  });

  it.each(uncovered)('%s: the same line', (_name, write) => {
    const { expected, actual } = both(write);
    expect(actual).toEqual(expected);
  });

  it('censors an object interpolated into the message at every depth (redact: the top and one level down)', () => {
    const { expected, actual } = both((l) => l.info('deep %o', { a: { b: { token: `${S}-deep` } } }));
    expect(expected.join('\n')).toContain(`${S}-deep`);
    expect(actual.join('\n')).not.toContain(S);
    expect(JSON.parse(actual[0] ?? '')).toMatchObject({ msg: `deep {"a":{"b":{"token":"${CENSOR}"}}}` });
  });

  it('writes a URL and a Buffer, which redact broke (a URL threw, a Buffer was "unable to serialize")', () => {
    const out = sink();
    createLogger({ level: 'info', format: 'json', destination: out.destination }).info({ url: new URL('https://api.example/v2'), buf: Buffer.from('hi') }, 'm');
    expect(JSON.parse(out.lines[0] ?? '')).toMatchObject({ url: 'https://api.example/v2', buf: { type: 'Buffer', data: [104, 105] } });
  });

  it('leaves the logged objects as they were', () => {
    const line = { user: 'u', password: `${S}-1`, auth: { token: `${S}-2` }, req: { headers: { authorization: `${S}-3` } } };
    const bindings = { sessionId: 's', token: `${S}-4`, auth: { pass: `${S}-5` } };
    const before = JSON.stringify([line, bindings]);
    both((l) => l.child(bindings).info(line, 'm'));
    expect(JSON.stringify([line, bindings])).toBe(before);
  });

  it('keeps secrets out of the pretty format too', () => {
    const out = sink();
    const log = createLogger({ level: 'info', format: 'pretty', destination: out.destination });
    log.child({ token: `${S}-p1` }).info({ auth: { password: `${S}-p2` }, headers: { authorization: `${S}-p3` } }, 'pretty');
    const text = out.lines.join('\n');
    expect(text).toContain('pretty');
    expect(text).not.toContain(S);
  });
});

describe('isoTime', () => {
  it("writes what pino's stdTimeFunctions.isoTime writes, at every millisecond of a second and across seconds, minutes, days and years", () => {
    const starts = [Date.UTC(2026, 10, 30, 20, 5, 41), Date.UTC(2026, 11, 31, 23, 59, 59), Date.UTC(2028, 1, 28, 23, 59, 58), 0, Date.now()];
    const now = vi.spyOn(Date, 'now');
    try {
      for (const start of starts) {
        for (let t = start; t < start + 2_500; t++) {
          now.mockReturnValue(t);
          expect(isoTime()).toBe(pino.stdTimeFunctions.isoTime());
        }
        // and back in time (a clock set back)
        now.mockReturnValue(start - 1);
        expect(isoTime()).toBe(pino.stdTimeFunctions.isoTime());
      }
    } finally {
      now.mockRestore();
    }
  });
});
