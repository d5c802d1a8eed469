/**
 * cleanBody's quick check (a text that needs nothing is returned as it is) against its
 * definition: every UTF-16 code unit, alone and among plain text, is cleaned as the three
 * replaces would clean it.
 */
import { describe, expect, it } from 'vitest';
import { cleanBody } from '../src/message/body.js';

/** The replaces cleanBody runs, on every text. */
function replaces(text: string): string {
  return text
    .replace(/\x1b\[[0-?]*[ -/]*[@-~]/g, '') // eslint-disable-line no-control-regex
    .replace(/[\x00-\x08\x0b\x0e-\x1f\x7f]+/g, '') // eslint-disable-line no-control-regex
    .replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, '\ufffd');
}

describe('cleanBody', () => {
  it('cleans every code unit as the replaces do, alone and within text', () => {
    for (let unit = 0; unit <= 0xffff; unit++) {
      const c = String.fromCharCode(unit);
      for (const text of [c, `plain ${c} text\n`]) {
        const cleaned = cleanBody(text);
        if (cleaned !== replaces(text)) expect.fail(`U+${unit.toString(16).padStart(4, '0')} in ${JSON.stringify(text)}: ${JSON.stringify(cleaned)}`);
      }
    }
  });

  it('keeps valid surrogate pairs, TAB, LF, FF and CR, and returns a clean text itself', () => {
    const text = 'caf\u00e9 \ud83d\ude00 \t a\fb\r\n';
    expect(cleanBody(text)).toBe(text);
    expect(cleanBody('\ud83d x \ude00')).toBe('\ufffd x \ufffd');
    expect(cleanBody('red \x1b[31mtext\x1b[0m\x7f')).toBe('red text');
  });
});
