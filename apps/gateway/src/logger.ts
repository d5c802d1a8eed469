/**
 * pino, JSON in production and readable lines in development. Secrets never
 * reach a log line: the keys in `redactPaths` are censored wherever they appear.
 *
 * The censoring is done by hand (`censorLine`, `censorBindings` and the `err`
 * serializer) rather than by pino's `redact`: with wildcard paths, `redact`
 * clones and re-walks every top-level value of every line (~13 µs a line),
 * while these check a few own keys and copy only an object that holds a secret.
 * The output is the same as `redact: { paths: redactPaths, censor: CENSOR }`
 * (test/logger.test.ts compares both on every logged shape):
 * - a secret key at the top of a line or of a child's bindings: its value,
 *   whatever it is, becomes CENSOR;
 * - a secret key of an object one level down (`{ auth: { password } }`, also
 *   the serialized `err`), and `authorization` in a `headers` object at the top
 *   or one level down (`{ req: { headers: { authorization } } }`): CENSOR;
 * - deeper, and inside arrays, nothing is censored (as with `redact`);
 * - an object interpolated into the message (`%o`, `%j`): secret keys at every
 *   depth (`redact` censors the top and one level down, arrays included).
 * Strings are escaped by pino rather than by JSON.stringify, which differs only
 * for a lone UTF-16 surrogate (no logged string holds one: they are decoded from
 * UTF-8); and an object whose `toJSON` needs its own instance is written as
 * JSON.stringify writes it (`redact` cloned it first: a URL made the call throw,
 * a Buffer came out as "[unable to serialize, ...]").
 */
import { writeSync } from 'node:fs';
import { pino, type Bindings, type ChildLoggerOptions, type Logger } from 'pino';
import pretty from 'pino-pretty';

/** What `redact` would be given: the keys below, at the top and one level down. */
export const redactPaths = [
  'password',
  '*.password',
  'pass',
  '*.pass',
  'token',
  '*.token',
  'access_token',
  '*.access_token',
  'refresh_token',
  '*.refresh_token',
  'authorization',
  '*.authorization',
  'encryptionKey',
  '*.encryptionKey',
  'headers.authorization',
  '*.headers.authorization',
  'req.headers.authorization',
];

export const CENSOR = '[redacted]';

const SECRET_KEYS: readonly string[] = ['password', 'pass', 'token', 'access_token', 'refresh_token', 'authorization', 'encryptionKey'];
const SECRET = new Set(SECRET_KEYS);

const isEnumerableOwn = (obj: object, key: string): boolean => Object.prototype.propertyIsEnumerable.call(obj, key);

/** An object whose own enumerable properties are copied onto an object with its prototype. */
function copyOf(obj: object): Record<string, unknown> {
  const copy = Object.create(Object.getPrototypeOf(obj) as object | null) as Record<string, unknown>;
  for (const key in obj) {
    if (Object.prototype.hasOwnProperty.call(obj, key)) copy[key] = (obj as Record<string, unknown>)[key];
  }
  return copy;
}

/** A plain object (not an array or a Date), as `redact` walks into one. */
function walkable(value: unknown): value is object {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Date);
}

/**
 * A value one level below the line: its own secret keys, and `authorization`
 * in its own `headers` object, censored. The value itself when it holds none.
 */
function censorNested(value: unknown): unknown {
  if (!walkable(value)) return value;
  let secrets = false;
  for (const key of SECRET_KEYS) {
    if (isEnumerableOwn(value, key)) {
      secrets = true;
      break;
    }
  }
  const headers = isEnumerableOwn(value, 'headers') ? (value as Record<string, unknown>)['headers'] : undefined;
  const headerSecret = walkable(headers) && isEnumerableOwn(headers, 'authorization');
  if (!secrets && !headerSecret) return value;
  const copy = copyOf(value);
  for (const key of SECRET_KEYS) if (isEnumerableOwn(copy, key)) copy[key] = CENSOR;
  if (headerSecret) {
    const censored = copyOf(headers);
    censored['authorization'] = CENSOR;
    copy['headers'] = censored;
  }
  return copy;
}

/**
 * `formatters.log`: the object of one line, censored. `err` is left to its
 * serializer, which pino runs after this.
 */
function censorLine(obj: Record<string, unknown>): Record<string, unknown> {
  let out: Record<string, unknown> | undefined;
  for (const key in obj) {
    if (!Object.prototype.hasOwnProperty.call(obj, key) || key === 'err') continue;
    const value = obj[key];
    if (value === undefined || typeof value === 'function') continue;
    const next = SECRET.has(key) ? CENSOR : censorNested(value);
    if (next !== value) {
      out ??= copyOf(obj);
      out[key] = next;
    }
  }
  return out ?? obj;
}

/** A child's bindings, censored as a line is (pino gives a child's bindings no formatter). */
function censorBindings(bindings: Bindings): Bindings {
  let out: Bindings | undefined;
  for (const key in bindings) {
    if (!Object.prototype.hasOwnProperty.call(bindings, key) || key === 'err') continue;
    const value: unknown = bindings[key];
    if (value === undefined) continue;
    const next = SECRET.has(key) ? CENSOR : censorNested(value);
    if (next !== value) {
      out ??= copyOf(bindings);
      out[key] = next;
    }
  }
  return out ?? bindings;
}

/** An interpolation argument (`log.info('%o', value)`): secret keys censored at every depth. */
function censorDeep(value: unknown, depth: number): unknown {
  if (typeof value !== 'object' || value === null || value instanceof Date || depth > 16) return value;
  if (Array.isArray(value)) return value.map((item: unknown) => censorDeep(item, depth + 1));
  const copy = copyOf(value);
  for (const key in copy) {
    if (Object.prototype.hasOwnProperty.call(copy, key)) copy[key] = SECRET.has(key) ? CENSOR : censorDeep(copy[key], depth + 1);
  }
  return copy;
}

/** `hooks.logMethod`: objects interpolated into the message censored; no call site interpolates one. */
function logMethod(this: Logger, args: unknown[], method: (...args: unknown[]) => void): void {
  for (let i = typeof args[0] === 'string' ? 1 : 2; i < args.length; i++) {
    if (typeof args[i] === 'object') args[i] = censorDeep(args[i], 0);
  }
  method.apply(this, args);
}

const serializers = {
  err: (value: unknown): unknown => censorNested(pino.stdSerializers.err(value as Error)),
};

/**
 * pino's `stdTimeFunctions.isoTime` (`,"time":"2026-11-30T20:05:41.123Z"`), the same text: the
 * part up to the second is built once a second, the milliseconds by hand. `toISOString()` on
 * every line cost ~1.5 µs of the ~10 of a line (apps/gateway/scripts/log-bench.mjs).
 */
let isoSecond = Number.NaN;
let isoPrefix = '';
export function isoTime(): string {
  const now = Date.now();
  const second = Math.floor(now / 1000) * 1000;
  const ms = now - second;
  if (second !== isoSecond) {
    isoSecond = second;
    isoPrefix = `,"time":"${new Date(second).toISOString().slice(0, 20)}`;
  }
  return `${isoPrefix}${ms < 10 ? '00' : ms < 100 ? '0' : ''}${ms}Z"`;
}

export interface LoggerOptions {
  readonly level: string;
  readonly format: 'json' | 'pretty';
  /** Where lines go; stdout by default. */
  readonly destination?: NodeJS.WritableStream;
}

export function createLogger(options: LoggerOptions): Logger {
  const base = {
    level: options.level,
    base: { service: 'smtp-gateway' },
    serializers,
    hooks: { logMethod },
    timestamp: isoTime,
    formatters: { level: (label: string) => ({ level: label }), log: censorLine },
  };
  const logger =
    options.format === 'pretty'
      ? pino(
          base,
          pretty({
            colorize: !process.env['NO_COLOR'] && Boolean((process.stdout as { isTTY?: boolean }).isTTY),
            translateTime: 'HH:MM:ss.l',
            ignore: 'pid,hostname,service',
            destination: options.destination ?? 1,
            sync: true,
          }),
        )
      : options.destination
        ? pino(base, options.destination)
        : // The lines of up to 10 ms go to stdout in one write(2), from the event loop
          // (LineWriter). pino's default destination writes asynchronously, through libuv's
          // thread pool: a thread hand-off and a wake-up for every line, which on a one-core
          // replica cost more than the write itself.
          pino(base, new LineWriter(1));
  // pino gives a child's bindings no formatter, so they are censored here. A
  // child is an Object.create() of its parent: children and theirs inherit this.
  const child = logger.child;
  logger.child = function <L extends string = never>(this: Logger, bindings: Bindings, childOptions?: ChildLoggerOptions<L>): Logger<L> {
    return child.call<Logger, [Bindings, ChildLoggerOptions<L>?], Logger<L>>(this, censorBindings(bindings), childOptions);
  };
  return logger;
}

/** Writers with lines not yet written, flushed when the process exits. */
const unflushed = new Set<LineWriter>();
let exitHook = false;
/** For Atomics.wait: a short sleep while a non-blocking stdout is full. */
const sleepCell = new Int32Array(new SharedArrayBuffer(4));

/** How long a line may wait for the lines after it, to be written with them. */
export const LINE_FLUSH_MS = 10;

/**
 * A log destination: lines are joined and written with one synchronous write(2) from the event
 * loop, at most `LINE_FLUSH_MS` after the first of them (and at exit), instead of one write per
 * line: a system call, and the caches it costs the code around it, per line saved (S1: ~18 µs a
 * message; BENCHMARKS.md "Third round"). A process killed with SIGKILL loses at most its last
 * 10 ms of lines. A full non-blocking pipe is waited for (in steps of 10 ms), as with pino's
 * synchronous destination; a closed one drops the lines.
 */
export class LineWriter {
  readonly fd: number;
  #pending: string[] = [];
  #scheduled = false;
  readonly #flushLater = (): void => {
    this.#scheduled = false;
    this.flushSync();
  };

  constructor(fd: number) {
    this.fd = fd;
  }

  write(line: string): boolean {
    this.#pending.push(line);
    if (!this.#scheduled) {
      this.#scheduled = true;
      // unref: a process with nothing else to do exits, and its exit hook writes the lines
      setTimeout(this.#flushLater, LINE_FLUSH_MS).unref();
      unflushed.add(this);
      if (!exitHook) {
        exitHook = true;
        process.on('exit', () => {
          for (const writer of unflushed) writer.flushSync();
        });
      }
    }
    return true;
  }

  /** pino's `logger.flush(cb)`: what is pending is written now, then `cb`. */
  flush(cb?: (err?: Error) => void): void {
    this.flushSync();
    cb?.();
  }

  /** Writes what is pending now. */
  flushSync(): void {
    unflushed.delete(this);
    const pending = this.#pending;
    if (pending.length === 0) return;
    this.#pending = [];
    const text = pending.length === 1 ? (pending[0] as string) : pending.join('');
    let bytes: Buffer | undefined;
    try {
      // Usually all of it at once, encoded by the write itself.
      const written = writeSync(this.fd, text);
      const length = Buffer.byteLength(text, 'utf8');
      if (written === length) return;
      bytes = Buffer.from(text, 'utf8').subarray(written);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') return;
      bytes = Buffer.from(text, 'utf8');
    }
    while (bytes.length > 0) {
      try {
        bytes = bytes.subarray(writeSync(this.fd, bytes));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') return;
        Atomics.wait(sleepCell, 0, 0, 10);
      }
    }
  }
}

export type { Logger };
