/**
 * Sits between smtp-server's DATA stream and the session. It enforces what
 * must hold for any message, whatever the session does with it:
 *
 * - the size limit (`552 5.3.4`): counted as it arrives, and nothing past the
 *   limit is handed on;
 * - NUL bytes (`554 5.6.0`);
 * - the replica's in-flight budget (`451 4.3.1`): every byte handed on is
 *   taken from it, and given back by release() once the reply is sent, or at
 *   once when the message is refused or the client's input breaks off;
 * - bare LF, by policy: `normalize` turns it into CRLF (Postfix 3.9's
 *   default), `reject` refuses the message at the final dot (`550 5.5.2`).
 *   A bare CR is content, never a line end, and is passed on as it is.
 *
 * On a violation the session's stream fails with the SmtpError, so whatever the
 * session was building is abandoned, and the guard keeps reading the client's
 * input to the final dot so the reply lands in sync.
 *
 * It never buffers: each chunk is checked with native scans (indexOf) and
 * forwarded, and the session's backpressure pauses the source.
 */
import { Readable } from 'node:stream';
import { Replies, type SmtpError } from './errors.js';
import type { InflightBudget } from './inflight.js';

export type BareLfPolicy = 'normalize' | 'reject';

export interface DataGuardOptions {
  readonly maxSize: number;
  readonly bareLf: BareLfPolicy;
  /** The replica's in-flight budget; none: no limit. */
  readonly budget?: InflightBudget;
}

const LF = 0x0a;
const CR = 0x0d;

export class DataGuard {
  /** The stream the session reads. */
  readonly output: Readable;
  /** Set once the message broke a rule: the reply the client gets, and the limit counter's reason. */
  violation: { readonly reply: SmtpError; readonly reason: string } | undefined;
  /** Bytes received from the client (after dot-unstuffing). */
  bytes = 0;
  /** Resolves when the client's input has ended (after the final dot) or the connection dropped. */
  readonly finished: Promise<void>;
  /** The client's input broke off before the final dot (connection closed, message dropped). */
  aborted = false;

  private lastByte = -1;
  private detached = false;
  private ended = false;
  /** Bytes taken from the budget for this message. */
  private held = 0;

  constructor(
    private readonly source: Readable,
    private readonly options: DataGuardOptions,
  ) {
    this.output = new Readable({ read: () => this.source.resume() });
    this.finished = new Promise((resolve) => {
      source.on('end', () => {
        this.ended = true;
        if (!this.detached && !this.violation) this.output.push(null);
        resolve();
      });
      source.on('close', () => {
        if (!this.ended) this.abort(new Error('DATA input closed before the final dot'));
        resolve();
      });
      source.on('error', (err) => {
        this.abort(err);
        resolve();
      });
    });
    source.on('data', (chunk: Buffer) => this.onChunk(chunk));
  }

  /** Stop handing data to the session (it is done with it); keep draining the client. */
  detach(): void {
    this.detached = true;
    this.source.resume();
  }

  /** Gives this message's bytes back to the budget (its reply was sent). Safe to call more than once. */
  release(): void {
    this.options.budget?.give(this.held);
    this.held = 0;
  }

  private abort(err: Error): void {
    if (this.aborted || this.ended) return;
    this.aborted = true;
    if (!this.detached) this.output.destroy(err);
    this.detached = true;
    this.release();
  }

  private fail(reply: SmtpError, reason: string): void {
    this.violation = { reply, reason };
    if (!this.detached) this.output.destroy(reply);
    this.detached = true;
    // Nothing of the message is kept from now on.
    this.release();
  }

  private onChunk(chunk: Buffer): void {
    this.bytes += chunk.length;
    if (this.violation) return;
    if (this.bytes > this.options.maxSize) return this.fail(Replies.S552_MESSAGE_TOO_BIG, 'message_size');
    if (chunk.indexOf(0) !== -1) return this.fail(Replies.S554_NUL_IN_DATA, 'nul_byte');
    const { budget } = this.options;
    // Once detached the input is drained, not kept: nothing to take.
    if (budget && !this.detached) {
      if (!budget.take(chunk.length)) return this.fail(Replies.S451_INFLIGHT_FULL, 'inflight_bytes');
      this.held += chunk.length;
    }
    const data = this.lineEnds(chunk);
    if (this.violation || this.detached) return;
    if (!this.output.push(data)) this.source.pause();
  }

  /** Finds bare LFs; normalizes them to CRLF or records the violation. */
  private lineEnds(chunk: Buffer): Buffer {
    let bare: number[] | undefined;
    for (let i = chunk.indexOf(LF); i !== -1; i = chunk.indexOf(LF, i + 1)) {
      const before = i === 0 ? this.lastByte : chunk[i - 1];
      if (before !== CR) (bare ??= []).push(i);
    }
    this.lastByte = chunk[chunk.length - 1] ?? this.lastByte;
    if (!bare) return chunk;
    if (this.options.bareLf === 'reject') {
      this.fail(Replies.S550_BARE_LF, 'bare_lf');
      return chunk;
    }
    const out = Buffer.allocUnsafe(chunk.length + bare.length);
    let from = 0;
    let to = 0;
    for (const i of bare) {
      to += chunk.copy(out, to, from, i);
      out[to++] = CR;
      from = i;
    }
    chunk.copy(out, to, from);
    return out;
  }
}
