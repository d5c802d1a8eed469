/**
 * The sealed part of a job: the session and the body, as bytes before
 * encryption. The body is a raw deflate stream, compressed or stored (see
 * `storedDeflate`); the session is not compressed and sits apart from it, so
 * the ciphertext's length says nothing about the tokens.
 * Layout: 4-byte big-endian session length, session JSON, the body JSON as a raw deflate stream.
 */
import { promisify } from 'node:util';
import { constants, deflateRaw, deflateRawSync, inflateRaw, inflateRawSync, type ZlibOptions } from 'node:zlib';
import { seal, unseal, type KeyRing } from './crypto.js';

const deflateAsync = promisify<Buffer, ZlibOptions, Buffer>(deflateRaw);
const inflateAsync = promisify(inflateRaw);

/**
 * Below this size, (de)compression runs on the event loop: for a few KiB it takes tens of µs,
 * while the thread pool's round trip costs more than the work itself (about 120 µs of CPU against
 * 43 µs for a 2 KiB body). Larger bodies go to the thread pool, so as not to stall the loop.
 */
const SYNC_LIMIT = 64 * 1024;

/**
 * Deflate's fastest level: on mail bodies of 2-75 KB of prose it takes 20-55 % less CPU than the
 * default level (6), for output 2-14 % larger (`node bench/dist/deflate-levels.js`). The stream
 * format is the same, so any replica inflates what any other deflated, whatever the level.
 */
const DEFLATE_OPTIONS = { level: constants.Z_BEST_SPEED };
const deflate = (data: Buffer): Promise<Buffer> =>
  data.length < SYNC_LIMIT ? Promise.resolve(deflateRawSync(data, DEFLATE_OPTIONS)) : deflateAsync(data, DEFLATE_OPTIONS);
/** Compressed input: 4 KiB inflates to at most ~4 MiB (deflate's ratio is bounded near 1032:1), a few ms at worst. */
const INFLATE_SYNC_LIMIT = 4 * 1024;
const inflate = (data: Buffer): Promise<Buffer> => (data.length < INFLATE_SYNC_LIMIT ? Promise.resolve(inflateRawSync(data)) : inflateAsync(data));

/** The most a deflate stored block holds (RFC 1951, 3.2.4: LEN is 16 bits). */
const STORED_BLOCK_MAX = 0xffff;

/**
 * `data` as a raw deflate stream of stored blocks, without compression: a header byte (BFINAL,
 * BTYPE 00), LEN and its complement NLEN, the bytes. Any deflate reader, zlib's included (so any
 * earlier build), reads it; writing it is a copy, where deflating prose costs about 25 µs a KB
 * on the bench's machine.
 */
export function storedDeflate(data: Buffer): Buffer {
  const blocks = Math.max(1, Math.ceil(data.length / STORED_BLOCK_MAX));
  const out = Buffer.allocUnsafe(data.length + 5 * blocks);
  let at = 0;
  for (let i = 0; i < blocks; i++) {
    const chunk = data.subarray(i * STORED_BLOCK_MAX, (i + 1) * STORED_BLOCK_MAX);
    out[at] = i === blocks - 1 ? 1 : 0;
    out.writeUInt16LE(chunk.length, at + 1);
    out.writeUInt16LE(chunk.length ^ 0xffff, at + 3);
    chunk.copy(out, at + 5);
    at += 5 + chunk.length;
  }
  return out;
}

/**
 * The bytes of a raw deflate stream made only of stored blocks (as `storedDeflate` writes, or
 * zlib for data that does not compress), without a pass through zlib; `undefined` for any other
 * stream, which zlib then inflates (or refuses).
 */
export function readStored(stream: Buffer): Buffer | undefined {
  const parts: Buffer[] = [];
  for (let at = 0; at + 5 <= stream.length; ) {
    const header = stream[at] as number;
    if ((header & 0b110) !== 0) return undefined;
    const length = stream.readUInt16LE(at + 1);
    if ((length ^ 0xffff) !== stream.readUInt16LE(at + 3) || at + 5 + length > stream.length) return undefined;
    parts.push(stream.subarray(at + 5, at + 5 + length));
    at += 5 + length;
    if ((header & 1) === 1) return at !== stream.length ? undefined : parts.length === 1 ? parts[0] : Buffer.concat(parts);
  }
  return undefined;
}

export interface Secret<Body, Session> {
  readonly body: Body;
  readonly session: Session;
}

/** Seals a job's secret. A body whose JSON is shorter than `storeBelow` bytes is stored as it is (still a deflate stream), a longer one compressed. */
export async function sealSecret<Body, Session>(ring: KeyRing, secret: Secret<Body, Session>, id: string, storeBelow = 0): Promise<string> {
  const session = Buffer.from(JSON.stringify(secret.session), 'utf8');
  const json = Buffer.from(JSON.stringify(secret.body), 'utf8');
  const body = json.length < storeBelow ? storedDeflate(json) : await deflate(json);
  const length = Buffer.alloc(4);
  length.writeUInt32BE(session.length);
  return seal(ring, Buffer.concat([length, session, body]), id);
}

export async function unsealSecret<Body, Session>(ring: KeyRing, sealed: string, id: string): Promise<Secret<Body, Session>> {
  const plain = unseal(ring, sealed, id);
  const sessionLength = plain.readUInt32BE(0);
  const session = JSON.parse(plain.subarray(4, 4 + sessionLength).toString('utf8')) as Session;
  const stream = plain.subarray(4 + sessionLength);
  const body = JSON.parse((readStored(stream) ?? (await inflate(stream))).toString('utf8')) as Body;
  return { body, session };
}
