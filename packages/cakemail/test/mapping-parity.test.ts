/**
 * The fast path (parseSimple) against mailparser on the cases a review found or pinned: both
 * must give the same result, header by header.
 */
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { parseSimple } from '../src/message/fast-path.js';
import { parseVia } from './helpers/message.js';

const msg = (headers: string[], body = 'Hello\r\n'): Buffer => Buffer.from(`${headers.join('\r\n')}\r\n\r\n${body}`, 'latin1');
const parse = (raw: Buffer, simple: boolean) => parseVia(Readable.from([raw]), simple);

describe("parseSimple() gives what mailparser gives, header by header", () => {
  // mailparser's processHeaders() drops empty header values before it keeps the first Subject.
  it('an empty first Subject then a real one: both paths take the real one', async () => {
    const raw = msg(['From: a@example.com', 'Subject:', 'Subject: Quarterly report', 'Message-ID: <1@x>']);
    expect(parseSimple(raw)).toBeDefined(); // the fast path takes it
    const slow = await parse(raw, false);
    const fast = await parse(raw, true);
    expect(slow.subject).toBe('Quarterly report');
    expect(fast.subject).toBe(slow.subject);
  });

  it('an empty first Subject then an encoded-word one: the fast path steps aside and it is decoded', async () => {
    const raw = msg(['Subject: ', 'Subject: =?UTF-8?Q?Caf=C3=A9?=']);
    expect(parseSimple(raw)).toBeUndefined(); // encoded-words are mailparser's
    const slow = await parse(raw, false);
    const fast = await parse(raw, true);
    expect(slow.subject).toBe('Café');
    expect(fast.subject).toBe(slow.subject);
  });
});

describe("subtle behaviours of both paths", () => {
  it('a whitespace-only line is a fold, not the end of the header block (as mailsplit reads it)', async () => {
    const raw = msg(['Subject: a', ' ', 'X-Account-Id: 7'], 'body\r\n');
    const fast = parseSimple(raw);
    const slow = await parse(raw, false);
    expect(fast?.control.get('x-account-id')).toEqual(['7']);
    expect(slow.control.get('x-account-id')).toEqual(['7']);
    expect(fast?.text).toBe(slow.text);
  });

  it('two From headers: both paths use the first one', async () => {
    const raw = msg(['From: first@example.com', 'From: Second <second@example.com>', 'Subject: s']);
    expect(parseSimple(raw)?.from).toEqual({ address: 'first@example.com', name: '' });
    expect((await parse(raw, false)).from).toEqual({ address: 'first@example.com', name: '' });
  });

  it('a header block that only looks like it ends in a body line (Bcc in the body) stays body', async () => {
    const raw = msg(['Subject: s'], 'line\r\n\r\nBcc: victim@example.net\r\nX-Account-Id: 9\r\n');
    const fast = parseSimple(raw);
    expect(fast?.control.size).toBe(0);
    expect(fast?.headers).toEqual([]);
    expect(fast?.text).toBe('line\n\nBcc: victim@example.net\nX-Account-Id: 9');
  });

  it('a raw 8-bit header value falls back to mailparser, never the fast path', () => {
    expect(parseSimple(msg(['Subject: s', 'X-Note: caf\xc3\xa9']))).toBeUndefined();
  });
});

describe('Unicode line breaks', () => {
  it.each(['\u0085', '\u2028', '\u2029'])('%j decoded from an encoded-word reaches no field', async (ch) => {
    const b64 = (text: string) => `=?UTF-8?B?${Buffer.from(text, 'utf8').toString('base64')}?=`;
    const raw = msg([`From: ${b64(`Eve${ch}Bcc: x@example.net`)} <eve@example.com>`, `Subject: ${b64(`Hi${ch}X-Evil: 1`)}`, `X-Note: ${b64(`a${ch}b`)}`]);
    for (const simple of [true, false]) {
      const parsed = await parse(raw, simple);
      expect(parsed.subject).toBe('Hi X-Evil: 1');
      expect(parsed.from?.name).toBe('Eve Bcc: x@example.net');
      const note = parsed.headers.find((h) => h.name === 'X-Note')?.value ?? '';
      expect(Buffer.from(note.replace(/^=\?UTF-8\?B\?|\?=$/g, ''), 'base64').toString('utf8')).toBe('a b');
    }
  });
});
