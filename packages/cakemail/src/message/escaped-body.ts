/**
 * A large simple message's body (fast-path.ts), escaped for JSON as it arrives.
 *
 * A message over the fast path's 256 KiB would otherwise be decoded whole into a string, cleaned
 * (another string), serialized (a third) and encoded: four copies of it at once. Here each run of
 * whole lines is decoded, cleaned and escaped on its own, and only the escaped UTF-8 bytes are
 * kept, so a message in flight holds about its own size once (README, `MAX_INFLIGHT_BYTES`).
 *
 * The result is exactly what the whole-text path gives (test/escaped-body.test.ts compares them
 * on every split of a corpus): `JSON.stringify(cleanBody(text))` without its quotes, where `text`
 * is the body decoded as UTF-8 with CRLF → LF, and for text/plain one final LF removed
 * (parsed.ts `finish`). Splitting after an LF changes none of these steps: an LF is never
 * part of a UTF-8 sequence, of a CRLF that ends later, or of a terminal escape sequence
 * (`cleanBody` removes those within a line).
 */
import { createHash } from 'node:crypto';
import { cleanBody } from './body.js';

/** The body as the JSON string's content, without its quotes, in UTF-8. */
export interface EscapedBody {
  readonly field: 'html' | 'text';
  readonly chunks: readonly Buffer[];
  /** Bytes of `chunks`. */
  readonly length: number;
}

const LF = 0x0a;
/**
 * Escaped text is kept as strings until this many characters, then encoded into one buffer of
 * its own: a small buffer would come from Node's shared pool (up to 32 KiB on Node 24), and one
 * kept there keeps the whole pool slab, garbage included.
 */
const FLUSH_CHARS = 64 * 1024;

export class BodyEscaper {
  readonly #field: 'html' | 'text';
  readonly #hash = createHash('sha256');
  /** The bytes since the last LF. */
  #carry: Buffer[] = [];
  /** The escaped text so far ends with an LF not yet written (text/plain drops a final one). */
  #pendingLf = false;
  readonly #chunks: Buffer[] = [];
  #length = 0;
  /** Escaped text not yet encoded, and its length in characters. */
  #text: string[] = [];
  #chars = 0;
  /** Bytes of the raw body. */
  bytes = 0;

  constructor(field: 'html' | 'text') {
    this.#field = field;
  }

  write(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.#hash.update(chunk);
    this.bytes += chunk.length;
    const lf = chunk.lastIndexOf(LF);
    if (lf < 0) {
      this.#carry.push(chunk);
      return;
    }
    const lines = chunk.subarray(0, lf + 1);
    const run = this.#carry.length === 0 ? lines : Buffer.concat([...this.#carry, lines]);
    this.#carry = lf + 1 < chunk.length ? [chunk.subarray(lf + 1)] : [];
    this.#run(run);
  }

  /** The body's sha256 (hex, as parsed.ts's `bodyDigest`), and the escaped body; undefined when empty. */
  end(): { readonly digest: string; readonly body: EscapedBody | undefined } {
    if (this.#carry.length > 0) this.#run(Buffer.concat(this.#carry));
    this.#carry = [];
    if (this.#pendingLf && this.#field === 'html') this.#push('\\n');
    this.#pendingLf = false;
    this.#flush();
    const digest = this.#hash.digest('hex');
    return { digest, body: this.#length === 0 ? undefined : { field: this.#field, chunks: this.#chunks, length: this.#length } };
  }

  /** Whole lines (or the last bytes of the body). */
  #run(bytes: Buffer): void {
    let text = bytes.toString('utf8').replaceAll('\r\n', '\n');
    if (text === '') return;
    // Something follows the held LF (even what cleaning removes): it is not the final one.
    if (this.#pendingLf) {
      this.#push('\\n');
      this.#pendingLf = false;
    }
    if (text.endsWith('\n')) {
      text = text.slice(0, -1);
      this.#pendingLf = true;
    }
    // cleanBody(x + LF) is cleanBody(x) + LF: an LF is in no sequence it removes.
    text = cleanBody(text);
    if (text !== '') this.#push(JSON.stringify(text).slice(1, -1));
  }

  #push(escaped: string): void {
    this.#text.push(escaped);
    this.#chars += escaped.length;
    if (this.#chars >= FLUSH_CHARS) this.#flush();
  }

  #flush(): void {
    if (this.#chars === 0) return;
    const text = this.#text.length === 1 ? (this.#text[0] as string) : this.#text.join('');
    const chunk = Buffer.allocUnsafeSlow(Buffer.byteLength(text, 'utf8'));
    chunk.write(text, 'utf8');
    this.#chunks.push(chunk);
    this.#length += chunk.length;
    this.#text = [];
    this.#chars = 0;
  }
}
