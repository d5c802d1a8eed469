/** The `POST /v2/emails` body, serialized once for every recipient of a message. */
import type { EncodedBody } from '../client.js';
import { Refusals } from '../replies.js';
import type { MessageOptions } from './control-headers.js';
import type { EscapedBody } from './escaped-body.js';
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
 * stays within that (see the README's "Message content"), but for a part in an 8-bit legacy
 * charset whose characters take three UTF-8 bytes each (windows-1252 `€`, Shift_JIS half-width
 * katakana): a message made mostly of those is refused.
 */
export class PreparedEmail implements RequestBodies {
  /** The body after its `{`, shared by every recipient's request. */
  readonly #rest: Rest;
  readonly #restLength: number;

  constructor(parsed: ParsedMessage, options: MessageOptions, envelope: ResolvedEnvelope) {
    const body: Record<string, unknown> = {
      sender: envelope.senderName ? { id: envelope.senderId, name: envelope.senderName } : { id: envelope.senderId },
      list_id: envelope.listId,
      content: {
        type: options.type,
        subject: parsed.subject,
        ...(parsed.html === undefined ? {} : { html: parsed.html }),
        ...(parsed.text === undefined ? {} : { text: parsed.text }),
        // an escaped body goes in this empty string's place (withEscaped)
        ...(parsed.escaped === undefined ? {} : { [parsed.escaped.field]: '' }),
        encoding: 'utf-8',
      },
    };
    if (options.tags) body['tags'] = options.tags;
    if (options.tracking) body['tracking'] = options.tracking;
    if (parsed.headers.length > 0) body['additional_headers'] = parsed.headers;
    const json = JSON.stringify(body);
    if (parsed.escaped !== undefined) {
      this.#rest = withEscaped(json, parsed.escaped);
    } else if (parsed.attachments.length === 0) {
      this.#rest = restOf(json.slice(1));
    } else {
      const shared: Buffer[] = [Buffer.from(`${json.slice(1, -1)},"attachment":[`, 'utf8')];
      parsed.attachments.forEach((a, i) => {
        shared.push(Buffer.from(`${i ? ',' : ''}{"filename":${JSON.stringify(a.filename)},"type":"${a.type}","content":"`, 'utf8'));
        shared.push(...a.parts);
        shared.push(Buffer.from('"}', 'utf8'));
      });
      shared.push(Buffer.from(']}', 'utf8'));
      this.#rest = shared;
    }
    this.#restLength = restLength(this.#rest);
    const limit = 2 * parsed.size + REQUEST_FRAME_ALLOWANCE;
    if (this.#restLength > limit) {
      throw Refusals.convertedTooBig(this.#restLength);
    }
  }

  /** Size of one request body, roughly (without the recipient). */
  get size(): number {
    return this.#restLength;
  }

  forRecipient(email: string): EncodedBody {
    return withRecipient(email, this.#rest, this.#restLength);
  }

  /** The request without its `email` field, as text: what a queued message stores (StoredRequest). */
  get stored(): string {
    return typeof this.#rest === 'string' ? this.#rest : Buffer.concat(this.#rest, this.#restLength).toString('utf8');
  }
}

/** A request body kept as `PreparedEmail.stored` text (a queued message), sent again per recipient. */
export class StoredRequest implements RequestBodies {
  readonly #rest: Rest;
  readonly #restLength: number;

  constructor(stored: string) {
    this.#rest = restOf(stored);
    this.#restLength = restLength(this.#rest);
  }

  forRecipient(email: string): EncodedBody {
    return withRecipient(email, this.#rest, this.#restLength);
  }
}

/**
 * A request body after its `{`, the same for every recipient: text (the client sends it as one
 * string, the socket encodes it once), or buffers (attachments by reference, which the client
 * streams without joining: issue 8's memory bound).
 */
type Rest = string | readonly Buffer[];

/**
 * A body is kept as text up to this many UTF-16 code units (at most three times as many bytes);
 * a larger one as a buffer.
 */
const TEXT_MAX_CHARS = 64 * 1024;

function restOf(text: string): Rest {
  return text.length <= TEXT_MAX_CHARS ? text : [Buffer.from(text, 'utf8')];
}

function restLength(rest: Rest): number {
  return typeof rest === 'string' ? Buffer.byteLength(rest, 'utf8') : rest.reduce((n, b) => n + b.length, 0);
}

/**
 * The body after its `{`, the escaped text or HTML (escaped-body.ts) in place of the empty string
 * `json` holds for it: the same bytes as `JSON.stringify` of the body with the text in it. The
 * first `"text":""` (or `"html":""`) in `json` is that one: only the sender and the list come
 * before it, and inside a string (the sender's name) a quote is written `\"`.
 */
function withEscaped(json: string, escaped: EscapedBody): Buffer[] {
  const empty = `"${escaped.field}":""`;
  const at = json.indexOf(empty) + empty.length - 1;
  return [Buffer.from(json.slice(1, at), 'utf8'), ...escaped.chunks, Buffer.from(json.slice(at), 'utf8')];
}

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

/** One recipient's request: `{"email":…,` then the shared rest. */
function withRecipient(email: string, rest: Rest, restLength: number): EncodedBody {
  const head = `{"email":${JSON.stringify(email)},`;
  if (typeof rest === 'string') return new TextBody(head + rest, Buffer.byteLength(head, 'utf8') + restLength);
  const headBytes = Buffer.from(head, 'utf8');
  return { chunks: [headBytes, ...rest], length: headBytes.length + restLength };
}

export function prepareEmail(parsed: ParsedMessage, options: MessageOptions, envelope: ResolvedEnvelope): PreparedEmail {
  return new PreparedEmail(parsed, options, envelope);
}
