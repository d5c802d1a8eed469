/**
 * The fingerprint of a message: sha256 of its header lines without the trace headers, and of
 * its body. The same message retried through another hop (one more Received) keeps it.
 */
import { createHash, hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { TRACE_HEADERS } from './headers.js';

/** The fingerprint from the raw header lines and the body's digest (hex). */
export function headerFingerprint(headerLines: ReadonlyArray<{ readonly key: string; readonly line: string }>, bodyDigest: string): string {
  // One string hashed at once (crypto.hash): the same bytes as a Hash updated line by line.
  let text = '';
  for (const { key, line } of headerLines) {
    if (!TRACE_HEADERS.has(key)) text += `${line}\n`;
  }
  return hash('sha256', `${text}\0${bodyDigest}`, 'hex');
}

/**
 * Passes the raw message through and hashes its body (everything after the first empty line).
 * Headers are hashed from mailparser's header lines instead, trace headers left out, so that
 * the same message retried through another hop (one more Received) has the same fingerprint.
 */
export class FingerprintStream extends Transform {
  readonly #hash = createHash('sha256');
  #inBody = false;
  #newlines = 1; // the message start counts as a line start: an empty first line ends the header
  /** Bytes passed through. */
  bytes = 0;

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.#inBody) this.#hash.update(chunk);
    else {
      for (let i = 0; i < chunk.length; i++) {
        const b = chunk[i];
        if (b === 0x0a) {
          if (++this.#newlines === 2) {
            this.#inBody = true;
            this.#hash.update(chunk.subarray(i + 1));
            break;
          }
        } else if (b !== 0x0d) this.#newlines = 0;
      }
    }
    done(null, chunk);
  }

  bodyDigest(): string {
    return this.#hash.copy().digest('hex');
  }
}
