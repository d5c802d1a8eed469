/**
 * node bench/dist/deflate-levels.js [BYTES ...]   (default: 1500 3000 8000 30000)
 *
 * What the queue's choice of deflate level costs and saves (packages/queue/src/secret.ts): for
 * mail bodies of about BYTES bytes of English text, alone and with the same text as HTML, the
 * queued body's JSON deflated at the default level (6) and at the fastest (1), on the event loop
 * as the queue does it below 64 KiB: output bytes and µs per body. Then the whole seal and
 * unseal of such a body (JSON, deflate or stored blocks, AES-GCM, base64url), compressed and
 * stored as it is, as the queue does while it has room: sealed bytes and µs each way. The text
 * is this repository's README, so that it compresses as prose does, not as a repeated line.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { constants, deflateRawSync, inflateRawSync } from 'node:zlib';
import { parseKeyRing, sealSecret, unsealSecret } from '@cakemail-smtp/queue';

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

/** µs per call of `run`, over about 3 MB of `bytes`-sized work after a tenth as many to warm up. */
async function timed(bytes: number, run: () => unknown): Promise<number> {
  const rounds = Math.max(50, Math.round(3_000_000 / bytes));
  for (let i = 0; i < rounds / 10; i++) await run();
  const started = process.hrtime.bigint();
  for (let i = 0; i < rounds; i++) await run();
  return Number(process.hrtime.bigint() - started) / rounds / 1000;
}

async function measure(body: Buffer, level: number): Promise<{ bytes: number; micros: number }> {
  const out = deflateRawSync(body, { level });
  if (!inflateRawSync(out).equals(body)) throw new Error('deflate-levels: the output does not inflate to the input');
  return { bytes: out.length, micros: await timed(body.length, () => deflateRawSync(body, { level })) };
}

const start = Math.min(10_000, Math.max(0, prose.length - Math.max(...sizes)));
const ring = parseKeyRing(randomBytes(32).toString('base64'));
const session = { accessToken: 'a'.repeat(600), refreshToken: 'r'.repeat(600) };
const sealRows: string[] = [];
for (const size of sizes) {
  const text = prose.slice(start, start + size);
  for (const [kind, content] of [
    ['text', { text }],
    ['text+html', { text, html: html(text) }],
  ] as const) {
    const body = queuedBody(content);
    const dflt = await measure(body, constants.Z_DEFAULT_COMPRESSION);
    const fast = await measure(body, constants.Z_BEST_SPEED);
    process.stdout.write(
      `${kind} ${size}: body ${body.length} B; level 6 ${dflt.bytes} B in ${dflt.micros.toFixed(1)} µs; ` +
        `level 1 ${fast.bytes} B in ${fast.micros.toFixed(1)} µs (${((fast.bytes / dflt.bytes - 1) * 100).toFixed(1)} % bytes, ` +
        `${((fast.micros / dflt.micros - 1) * 100).toFixed(0)} % time)\n`,
    );
    // As the queue seals it: `storeBelow` 0 compresses, Infinity stores.
    const parsed = JSON.parse(body.toString()) as unknown;
    const sealing = async (storeBelow: number): Promise<string> => {
      const sealed = await sealSecret(ring, { body: parsed, session }, 'q', storeBelow);
      const opened = await unsealSecret(ring, sealed, 'q');
      if (JSON.stringify(opened.body) !== JSON.stringify(parsed)) throw new Error('deflate-levels: the sealed body does not open to the input');
      const seal = await timed(body.length, () => sealSecret(ring, { body: parsed, session }, 'q', storeBelow));
      const unseal = await timed(body.length, () => unsealSecret(ring, sealed, 'q'));
      return `${sealed.length} B, seal ${seal.toFixed(1)} µs, unseal ${unseal.toFixed(1)} µs`;
    };
    sealRows.push(`sealed ${kind} ${size}: compressed ${await sealing(0)}; stored ${await sealing(Number.POSITIVE_INFINITY)}\n`);
  }
}
for (const row of sealRows) process.stdout.write(row);
