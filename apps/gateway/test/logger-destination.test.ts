import { spawn } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { createLogger, LineWriter } from '../src/logger.js';

const loggerModule = pathToFileURL(join(import.meta.dirname, '../dist/logger.js')).href;

/** A script running `body` with `logger` (the built createLogger, JSON to stdout). */
function childScript(body: string): string {
  const script = join(mkdtempSync(join(tmpdir(), 'logger-destination-')), 'child.mjs');
  writeFileSync(script, `import { createLogger } from ${JSON.stringify(loggerModule)};\nconst logger = createLogger({ level: 'info', format: 'json' });\n${body}\n`);
  return script;
}

/** Runs `body` in a child process (childScript) to its end; its stdout lines. */
async function childLines(body: string, options: { readonly pauseMs?: number } = {}): Promise<{ lines: string[]; code: number | null }> {
  const child = spawn(process.execPath, [childScript(body)], { stdio: ['ignore', 'pipe', 'pipe'] });
  const stdout = child.stdout;
  if (options.pauseMs) {
    // A reader that falls behind: the pipe fills, and the writer must wait, not drop or throw.
    stdout.pause();
    setTimeout(() => stdout.resume(), options.pauseMs);
  }
  let text = '';
  stdout.setEncoding('utf8');
  stdout.on('data', (chunk: string) => (text += chunk));
  const code = await new Promise<number | null>((resolve) => child.once('close', (c) => resolve(c)));
  return { lines: text.split('\n').filter(Boolean), code };
}

describe('createLogger without a destination', () => {
  it('writes to stdout from the event loop (a LineWriter on fd 1), not through the thread pool', () => {
    const logger = createLogger({ level: 'info', format: 'json' });
    const stream = (logger as unknown as Record<symbol, unknown>)[pino.symbols.streamSym];
    expect(stream).toBeInstanceOf(LineWriter);
    expect((stream as LineWriter).fd).toBe(1);
  });

  it("logger.flush() writes what is pending at once, not LINE_FLUSH_MS later", () => {
    const file = join(mkdtempSync(join(tmpdir(), 'logger-destination-')), 'log');
    const fd = openSync(file, 'w');
    try {
      const logger = pino({}, new LineWriter(fd));
      logger.info({ n: 1 }, 'pending');
      expect(readFileSync(file, 'utf8')).toBe('');
      let called = false;
      logger.flush(() => (called = true));
      expect(called).toBe(true);
      expect((JSON.parse(readFileSync(file, 'utf8')) as { msg: string }).msg).toBe('pending');
    } finally {
      closeSync(fd);
    }
  });

  it('writes the lines logged just before process.exit()', async () => {
    const { lines, code } = await childLines(`logger.info({ n: 1 }, 'one'); logger.info({ n: 2 }, 'two'); logger.warn({ n: 3 }, 'three'); process.exit(3);`);
    expect(code).toBe(3);
    expect(lines.map((l) => (JSON.parse(l) as { n: number }).n)).toEqual([1, 2, 3]);
  });

  it('writes a line while the process goes on running (within LINE_FLUSH_MS, not only at exit)', async () => {
    const script = childScript(`logger.info({ n: 1 }, 'alive');\nsetInterval(() => {}, 1000);`);
    const child = spawn(process.execPath, [script], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      const line = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no line while the process runs')), 10_000);
        child.stdout.setEncoding('utf8').once('data', (chunk: string) => {
          clearTimeout(timer);
          resolve(chunk);
        });
      });
      expect(child.exitCode).toBeNull();
      expect((JSON.parse(line.trim()) as { msg: string }).msg).toBe('alive');
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('writes the lines logged before an uncaught exception', async () => {
    const { lines, code } = await childLines(`logger.error({ n: 1 }, 'about to fail'); throw new Error('boom');`);
    expect(code).not.toBe(0);
    expect(lines.map((l) => (JSON.parse(l) as { msg: string }).msg)).toEqual(['about to fail']);
  });

  it('waits for a slow reader of a non-blocking pipe: every line arrives, whole and in order', async () => {
    // process.stdout set up first makes fd 1 non-blocking (libuv), so writes meet EAGAIN once the pipe is full.
    const { lines, code } = await childLines(
      `void process.stdout;\nfor (let turn = 0; turn < 40; turn++) {\n  for (let i = 0; i < 500; i++) logger.info({ n: turn * 500 + i, pad: 'x'.repeat(200) }, 'line');\n  await new Promise((r) => setImmediate(r));\n}`,
      { pauseMs: 300 },
    );
    expect(code).toBe(0);
    expect(lines).toHaveLength(20_000);
    lines.forEach((line, i) => expect((JSON.parse(line) as { n: number }).n).toBe(i));
  });
});
