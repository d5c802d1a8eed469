/**
 * BodyEscaper (escaped-body.ts) must give, whatever the chunks, exactly the JSON text the
 * whole-text path gives for the same body (fast-path.ts then parsed.ts `finish`, then
 * JSON.stringify): checked on every two-way split of crafted bodies, and on random bodies of the
 * characters that matter (CR, LF, terminal escapes, C0 controls, multi-byte and invalid UTF-8,
 * JSON's own escapes) cut at random bytes.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { cleanBody } from '../src/message/body.js';
import { BodyEscaper } from '../src/message/escaped-body.js';

type Field = 'html' | 'text';

/** The whole-text path: decode, CRLF → LF, a text's final LF dropped, cleaned, escaped. */
function reference(body: Buffer, field: Field): string | undefined {
  const content = body.toString('utf8').replaceAll('\r\n', '\n');
  const text = cleanBody(field === 'text' && content.endsWith('\n') ? content.slice(0, -1) : content);
  return text === '' ? undefined : JSON.stringify(text).slice(1, -1);
}

function escaped(chunks: readonly Buffer[], field: Field): { text: string | undefined; digest: string; length: number | undefined } {
  const escaper = new BodyEscaper(field);
  for (const chunk of chunks) escaper.write(chunk);
  const { digest, body } = escaper.end();
  return { text: body === undefined ? undefined : Buffer.concat(body.chunks).toString('utf8'), digest, length: body?.length };
}

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

const crafted: string[] = [
  '',
  '\r\n',
  '\n\n',
  'a',
  'a\r\n',
  'a\r\n\r\n',
  'line one\r\nline two\r\n',
  'no final newline',
  'bare\nLF and bare\rCR\r\n',
  '\x1b[31mred\x1b[0m plain\r\n',
  'split \x1b[1;31 escape\r\nm not one\r\n',
  '\x1b\r\n[31m\r\n',
  'a\r\x01\nb\r\n',
  '\x01\x02\r\n',
  '\x7f\x0b\x0c\tx\r\n',
  'quotes " and \\ backslash\r\n',
  'caf\xc3\xa9 \xe2\x9c\x93 \xf0\x9f\x98\x80\r\n',
  'broken \xe2\x9c utf-8 \xff\xfe\r\n',
  '\x1b[',
  'x\r',
];

describe('BodyEscaper', () => {
  it.each(crafted.map((s) => [JSON.stringify(s), Buffer.from(s, 'latin1')] as const))('matches the whole-text path on every split: %s', (_name, body) => {
    for (const field of ['text', 'html'] as const) {
      const want = reference(body, field);
      for (let i = 0; i <= body.length; i++) {
        for (let j = i; j <= body.length; j++) {
          const got = escaped([body.subarray(0, i), body.subarray(i, j), body.subarray(j)], field);
          expect(got.text, `${field}, split at ${i} and ${j}`).toBe(want);
          expect(got.length).toBe(want === undefined ? undefined : Buffer.byteLength(want));
          expect(got.digest).toBe(sha256(body));
        }
      }
    }
  });

  it('matches the whole-text path on random bodies cut at random bytes', () => {
    const pieces = ['a', 'b ', '\r', '\n', '\r\n', '\x1b', '[', '3', '1;', 'm', ' ', '\x01', '\x7f', '\x0c', '\t', '"', '\\', '\xc3\xa9', '\xe2\x9c\x93', '\xf0\x9f\x98\x80', '\xff', '\xe2'];
    let seed = 42;
    const random = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    for (let round = 0; round < 3000; round++) {
      let s = '';
      for (let k = random(40); k > 0; k--) s += pieces[random(pieces.length)];
      const body = Buffer.from(s, 'latin1');
      const cuts = Array.from({ length: random(6) }, () => random(body.length + 1)).sort((x, y) => x - y);
      const chunks = [0, ...cuts].map((from, i) => body.subarray(from, [...cuts, body.length][i]));
      for (const field of ['text', 'html'] as const) {
        expect(escaped(chunks, field).text, `${field}: ${JSON.stringify(s)} cut at ${cuts.join(',')}`).toBe(reference(body, field));
      }
    }
  });

  it('keeps only the escaped bytes: a body of control characters leaves nothing', () => {
    const body = Buffer.from(`${'\x01\x02\x03'.repeat(10_000)}\r\n`, 'latin1');
    expect(escaped([body.subarray(0, 12_345), body.subarray(12_345)], 'text').text).toBeUndefined();
    expect(escaped([body.subarray(0, 12_345), body.subarray(12_345)], 'html').text).toBe('\\n');
  });
});
