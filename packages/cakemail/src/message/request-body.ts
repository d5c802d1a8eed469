/** The `POST /v2/emails` body, serialized once for every recipient of a message. */
import type { EncodedBody } from '../client.js';
import { Refusals } from '../replies.js';
import type { MessageOptions } from './control-headers.js';
import type { ParsedMessage } from './parsed.js';

/** What the fan-out sends: one request body per recipient. */
export interface RequestBodies {
  forRecipient(email: string): EncodedBody;
}

export interface ResolvedEnvelope {
  readonly senderId: string;
  /** The From display name; omitted when empty. */
  readonly senderName?: string;
  readonly listId: number;
}

/**
 * A request may take at most twice the message's bytes plus this, for the JSON frame (field
 * names, sender, list, tags, tracking).
 */
export const REQUEST_FRAME_ALLOWANCE = 64 * 1024;

/**
 * The body serialized once. `forRecipient(email)` answers the bytes of one recipient's request:
 * a short head with `email` and the shared rest (content, attachments) by reference.
 *
 * A request is never more than about twice its message: at most `2 × parsed.size +
 * REQUEST_FRAME_ALLOWANCE` bytes, else the constructor throws `S552_CONVERTED_TOO_BIG`. Content
 * stays within that (see the README's "Request size"), but for a part in an 8-bit legacy
 * charset whose characters take three UTF-8 bytes each (windows-1252 `€`, Shift_JIS half-width
 * katakana): a message made mostly of those is refused.
 */
export class PreparedEmail implements RequestBodies {
  /** Without attachments: the body after its `{`, as text (one encoding, by the socket's write). */
  readonly #text: string | undefined;
  /** With attachments: the body after its `{`, as buffers (the attachments' by reference). */
  readonly #shared: readonly Buffer[];
  readonly #sharedLength: number;

  constructor(parsed: ParsedMessage, options: MessageOptions, envelope: ResolvedEnvelope) {
    const body: Record<string, unknown> = {
      sender: envelope.senderName ? { id: envelope.senderId, name: envelope.senderName } : { id: envelope.senderId },
      list_id: envelope.listId,
      content: {
        type: options.type,
        subject: parsed.subject,
        ...(parsed.html === undefined ? {} : { html: parsed.html }),
        ...(parsed.text === undefined ? {} : { text: parsed.text }),
        encoding: 'utf-8',
      },
    };
    if (options.tags) body['tags'] = options.tags;
    if (options.tracking) body['tracking'] = options.tracking;
    if (parsed.headers.length > 0) body['additional_headers'] = parsed.headers;
    const json = JSON.stringify(body);
    if (parsed.attachments.length === 0 && json.length <= TEXT_MAX_CHARS) {
      this.#text = json.slice(1);
      this.#shared = [];
      this.#sharedLength = Buffer.byteLength(this.#text, 'utf8');
    } else {
      const shared: Buffer[] = [];
      if (parsed.attachments.length === 0) shared.push(Buffer.from(json.slice(1), 'utf8'));
      else {
        shared.push(Buffer.from(`${json.slice(1, -1)},"attachment":[`, 'utf8'));
        parsed.attachments.forEach((a, i) => {
          shared.push(Buffer.from(`${i ? ',' : ''}{"filename":${JSON.stringify(a.filename)},"type":"${a.type}","content":"`, 'utf8'));
          shared.push(...a.parts);
          shared.push(Buffer.from('"}', 'utf8'));
        });
        shared.push(Buffer.from(']}', 'utf8'));
      }
      this.#text = undefined;
      this.#shared = shared;
      this.#sharedLength = shared.reduce((n, b) => n + b.length, 0);
    }
    const limit = 2 * parsed.size + REQUEST_FRAME_ALLOWANCE;
    if (this.#sharedLength > limit) {
      throw Refusals.convertedTooBig(this.#sharedLength);
    }
  }

  /** Size of one request body, roughly (without the recipient). */
  get size(): number {
    return this.#sharedLength;
  }

  forRecipient(email: string): EncodedBody {
    if (this.#text === undefined) return withRecipient(email, this.#shared, this.#sharedLength);
    const head = `{"email":${JSON.stringify(email)},`;
    return new TextBody(head + this.#text, Buffer.byteLength(head, 'utf8') + this.#sharedLength);
  }

  /** The request without its `email` field, as text: what a queued message stores (StoredRequest). */
  get stored(): string {
    return this.#text ?? Buffer.concat(this.#shared, this.#sharedLength).toString('utf8');
  }
}

/**
 * A body without attachments is kept as text up to this many UTF-16 code units (at most three
 * times as many bytes): the client sends it as one string, the socket encodes it once. A larger
 * one is kept as buffers, which the client streams without joining (issue 8's memory bound).
 */
const TEXT_MAX_CHARS = 64 * 1024;

/** A request built as text; `chunks` (its bytes) only when asked for. */
class TextBody implements EncodedBody {
  constructor(
    readonly text: string,
    readonly length: number,
  ) {}

  get chunks(): readonly Uint8Array[] {
    return [Buffer.from(this.text, 'utf8')];
  }
}

/** A request body kept as `PreparedEmail.stored` text (a queued message), sent again per recipient. */
export class StoredRequest implements RequestBodies {
  readonly #text: string | undefined;
  readonly #shared: Buffer | undefined;
  readonly #length: number;

  constructor(stored: string) {
    if (stored.length <= TEXT_MAX_CHARS) this.#text = stored;
    else this.#shared = Buffer.from(stored, 'utf8');
    this.#length = this.#shared?.length ?? Buffer.byteLength(stored, 'utf8');
  }

  forRecipient(email: string): EncodedBody {
    if (this.#shared !== undefined) return withRecipient(email, [this.#shared], this.#length);
    const head = `{"email":${JSON.stringify(email)},`;
    return new TextBody(head + (this.#text ?? ''), Buffer.byteLength(head, 'utf8') + this.#length);
  }
}

function withRecipient(email: string, shared: readonly Buffer[], sharedLength: number): EncodedBody {
  const head = Buffer.from(`{"email":${JSON.stringify(email)},`, 'utf8');
  return { chunks: [head, ...shared], length: head.length + sharedLength };
}

export function prepareEmail(parsed: ParsedMessage, options: MessageOptions, envelope: ResolvedEnvelope): PreparedEmail {
  return new PreparedEmail(parsed, options, envelope);
}
