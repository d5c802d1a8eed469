/**
 * The sealed part of a job: the session and the body, as bytes before
 * encryption. The body is compressed (deflate), the session is not and sits
 * apart from it, so the ciphertext's length says nothing about the tokens.
 * Layout: 4-byte big-endian session length, session JSON, deflated body JSON.
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

export interface Secret<Body, Session> {
  readonly body: Body;
  readonly session: Session;
}

export async function sealSecret<Body, Session>(ring: KeyRing, secret: Secret<Body, Session>, id: string): Promise<string> {
  const session = Buffer.from(JSON.stringify(secret.session), 'utf8');
  const body = await deflate(Buffer.from(JSON.stringify(secret.body), 'utf8'));
  const length = Buffer.alloc(4);
  length.writeUInt32BE(session.length);
  return seal(ring, Buffer.concat([length, session, body]), id);
}

export async function unsealSecret<Body, Session>(ring: KeyRing, sealed: string, id: string): Promise<Secret<Body, Session>> {
  const plain = unseal(ring, sealed, id);
  const sessionLength = plain.readUInt32BE(0);
  const session = JSON.parse(plain.subarray(4, 4 + sessionLength).toString('utf8')) as Session;
  const body = JSON.parse((await inflate(plain.subarray(4 + sessionLength))).toString('utf8')) as Body;
  return { body, session };
}
