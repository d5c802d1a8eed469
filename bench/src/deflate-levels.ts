/**
 * node bench/dist/deflate-levels.js [BYTES ...]   (default: 1500 3000 8000 30000)
 *
 * What the queue's choice of deflate level costs and saves (packages/queue/src/secret.ts): for
 * mail bodies of about BYTES bytes of English text, alone and with the same text as HTML, the
 * queued body's JSON deflated at the default level (6) and at the fastest (1), on the event loop
 * as the queue does it below 64 KiB: output bytes and µs per body. The text is this repository's
 * README, so that it compresses as prose does, not as a repeated line.
 */
import { readFileSync } from 'node:fs';
import { constants, deflateRawSync, inflateRawSync } from 'node:zlib';

const sizes = (process.argv.length > 2 ? process.argv.slice(2) : ['1500', '3000', '8000', '30000']).map((arg) => {
  const n = Number(arg);
  if (!Number.isInteger(n) || n < 100) throw new Error(`deflate-levels: ${arg}: expected a byte count ≥ 100`);
  return n;
});

const prose = readFileSync(new URL('../../README.md', import.meta.url), 'utf8').replace(/[`|#*]/g, '');
const html = (text: string): string =>
  `<html><body><table width="100%"><tr><td style="font-family:Arial,sans-serif;color:#333">${text
    .split('\n')
    .map((line) => `<p style="margin:0 0 12px 0">${line}</p>`)
    .join('\n')}</td></tr></table></body></html>`;

/** A queued body as the relay stores it: the `POST /v2/emails` request as a string, and its facts. */
function queuedBody(content: Record<string, string>): Buffer {
  const request = JSON.stringify({ sender: { id: '1', name: 'Shop' }, content: { subject: 'Your order', ...content, encoding: 'utf-8' }, list_id: 5 });
  return Buffer.from(JSON.stringify({ v: 1, accountId: 1001, login: 'dev@example.com', request, fingerprint: 'f'.repeat(43), identified: true }));
}

function measure(body: Buffer, level: number): { bytes: number; micros: number } {
  const out = deflateRawSync(body, { level });
  if (!inflateRawSync(out).equals(body)) throw new Error('deflate-levels: the output does not inflate to the input');
  const rounds = Math.max(50, Math.round(3_000_000 / body.length));
  for (let i = 0; i < rounds / 10; i++) deflateRawSync(body, { level });
  const started = process.hrtime.bigint();
  for (let i = 0; i < rounds; i++) deflateRawSync(body, { level });
  return { bytes: out.length, micros: Number(process.hrtime.bigint() - started) / rounds / 1000 };
}

const start = Math.min(10_000, Math.max(0, prose.length - Math.max(...sizes)));
for (const size of sizes) {
  const text = prose.slice(start, start + size);
  for (const [kind, content] of [
    ['text', { text }],
    ['text+html', { text, html: html(text) }],
  ] as const) {
    const body = queuedBody(content);
    const dflt = measure(body, constants.Z_DEFAULT_COMPRESSION);
    const fast = measure(body, constants.Z_BEST_SPEED);
    process.stdout.write(
      `${kind} ${size}: body ${body.length} B; level 6 ${dflt.bytes} B in ${dflt.micros.toFixed(1)} µs; ` +
        `level 1 ${fast.bytes} B in ${fast.micros.toFixed(1)} µs (${((fast.bytes / dflt.bytes - 1) * 100).toFixed(1)} % bytes, ` +
        `${((fast.micros / dflt.micros - 1) * 100).toFixed(0)} % time)\n`,
    );
  }
}
