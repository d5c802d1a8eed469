// Test helpers for the message path: either parse path on demand, and a request body as JSON.
import type { Readable } from 'node:stream';
import { parseWithMailparser } from '../../src/message/mailparser.js';
import { parseMessage } from '../../src/message/parse.js';
import type { ParsedMessage } from '../../src/message/parsed.js';
import type { PreparedEmail } from '../../src/message/request-body.js';
import type { EmailBody } from '../../src/types.js';

/** `parseMessage()` (the fast path first) when `simple`, else mailparser only. */
export function parseVia(message: Readable, simple: boolean): Promise<ParsedMessage> {
  return simple ? parseMessage(message) : parseWithMailparser([], message);
}

/** The request body `forRecipient(email)` would send, parsed back. */
export function bodyOf(prepared: PreparedEmail, email: string): EmailBody {
  const { chunks } = prepared.forRecipient(email);
  return JSON.parse(Buffer.concat(chunks).toString('utf8')) as EmailBody;
}
