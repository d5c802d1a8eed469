/**
 * smtp-server's parser with RFC 5321 line limits that keep the session usable.
 *
 * The library answers a line over `maxCommandLength` with `421` and closes the
 * connection, and only once the line is 16 KB long. Here a command line over
 * 512 octets (CRLF included; 12 288 for AUTH and its SASL lines, RFC 4954) is
 * replaced by a marker line before the parser sees it, so the connection
 * answers `500 5.5.2 Line too long` and reads on. An unterminated line is
 * answered as soon as it is over the limit, and the rest of it, up to its line
 * end, is dropped. Memory stays bounded by the limit.
 *
 * Only command mode is policed. A chunk is cut after a `DATA` line: the part
 * up to it goes to the parser first, and the rest comes back here once the
 * parser knows whether DATA was accepted (data mode: the library's own, message
 * lines have no such limit) or refused (command mode: policed as usual).
 */
import { SMTPStream } from 'smtp-server/lib/smtp-stream.js';

/** The line the connection recognises as "the client's line was too long". */
export const TOO_LONG_MARKER = Buffer.from('\0LINE-TOO-LONG');
const MARKER_LINE = Buffer.concat([TOO_LONG_MARKER, Buffer.from('\r\n')]);
const LF = 0x0a;
const CR = 0x0d;

/** RFC 5321 4.5.3.1.4: 512 octets with the CRLF. */
export const COMMAND_LINE_LIMIT = 510;
/** RFC 4954 section 4: AUTH lines may be 12 288 octets with the CRLF. */
export const AUTH_LINE_LIMIT = 12_286;

export class CommandStream extends SMTPStream {
  /** Dropping the rest of an over-long line, up to and including its LF. */
  private discarding = false;

  constructor(
    /** The limit for the line that starts with `head` (its first bytes). */
    private readonly limitFor: (head: string) => number,
  ) {
    // The library's own limit only matters as a last resort now.
    super({ maxCommandLength: AUTH_LINE_LIMIT + 2 });
  }

  override _write(chunk: Buffer, encoding: BufferEncoding | 'buffer', next: (err?: Error | null) => void): void {
    if (this._dataMode || this.isClosed || !chunk.length) return super._write(chunk, encoding, next);
    if (this.discarding) {
      const lf = chunk.indexOf(LF);
      if (lf === -1) return next();
      this.discarding = false;
      chunk = chunk.subarray(lf + 1);
      if (!chunk.length) return next();
    }
    const { policed, rest } = this.police(chunk);
    if (!rest) return super._write(policed, encoding, next);
    super._write(policed, encoding, (err) => (err ? next(err) : this._write(rest, encoding, next)));
  }

  /**
   * Replaces over-long lines with the marker, up to and including a DATA line;
   * `rest` is what follows that line, not policed yet.
   */
  private police(chunk: Buffer): { policed: Buffer; rest?: Buffer } {
    const pieces: Buffer[] = [];
    let from = 0; // start of the part of chunk not yet copied to pieces
    let lineStart = 0;
    let end = chunk.length; // where the policed part ends
    let carried = this._remainder.length; // the first line's bytes already buffered by the parser
    for (;;) {
      const lf = chunk.indexOf(LF, lineStart);
      const lineEnd = lf === -1 ? chunk.length : lf - (lf > lineStart && chunk[lf - 1] === CR ? 1 : 0);
      const length = carried + lineEnd - lineStart;
      const head = carried
        ? (this._remainder.slice(0, 16) + chunk.toString('latin1', 0, Math.min(lineEnd, 16))).slice(0, 16)
        : chunk.toString('latin1', lineStart, Math.min(lineEnd, lineStart + 16));
      if (length > this.limitFor(head)) {
        pieces.push(chunk.subarray(from, lineStart), MARKER_LINE);
        if (carried) this._remainder = '';
        if (lf === -1) {
          this.discarding = true;
          from = chunk.length;
          break;
        }
        from = lf + 1;
      } else if (lf !== -1 && lf + 1 < chunk.length && /^data(?:\s|$)/i.test(head)) {
        end = lf + 1; // the message may follow: decided once the parser has seen this line
        break;
      }
      if (lf === -1) break;
      lineStart = lf + 1;
      carried = 0;
    }
    const rest = end < chunk.length ? chunk.subarray(end) : undefined;
    const policed = pieces.length ? Buffer.concat([...pieces, chunk.subarray(from, end)]) : chunk.subarray(0, end);
    return rest ? { policed, rest } : { policed };
  }
}
