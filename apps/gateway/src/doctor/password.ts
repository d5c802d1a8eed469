/** The password: CAKEMAIL_PASSWORD, --password-stdin, or a prompt on a terminal; never argv. */
import type { Readable, Writable } from 'node:stream';

export interface PasswordSources {
  readonly env: string | undefined;
  readonly fromStdin: boolean;
  readonly stdin: Readable & { isTTY?: boolean; setRawMode?: (raw: boolean) => unknown };
  /** Where the prompt goes (stderr, so stdout stays the report). */
  readonly prompt: Writable;
  readonly username: string;
}

export class PasswordError extends Error {}

export async function readPassword(sources: PasswordSources): Promise<string> {
  if (sources.fromStdin) {
    const chunks: Buffer[] = [];
    for await (const chunk of sources.stdin) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer));
    // one trailing line end, as `echo` or a file gives it
    const password = Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
    if (password === '') throw new PasswordError('--password-stdin: stdin was empty');
    return password;
  }
  if (sources.env !== undefined && sources.env !== '') return sources.env;
  if (sources.stdin.isTTY === true && typeof sources.stdin.setRawMode === 'function') return prompt(sources);
  throw new PasswordError('no password: set CAKEMAIL_PASSWORD, pipe it with --password-stdin, or run on a terminal to be asked');
}

/** Reads a line without echo. Ctrl-C or Ctrl-D gives up. */
function prompt(sources: PasswordSources): Promise<string> {
  const { stdin, prompt: out } = sources;
  // echo off before the prompt shows, so that nothing typed after it is echoed
  stdin.setRawMode?.(true);
  out.write(`Cakemail password for ${sources.username}: `);
  stdin.resume();
  return new Promise((resolve, reject) => {
    let typed = '';
    const done = (err: Error | undefined): void => {
      stdin.setRawMode?.(false);
      stdin.pause();
      stdin.removeListener('data', onData);
      out.write('\n');
      if (err) reject(err);
      else resolve(typed);
    };
    const onData = (chunk: Buffer | string): void => {
      for (const ch of typeof chunk === 'string' ? chunk : chunk.toString('utf8')) {
        if (ch === '\r' || ch === '\n') return done(undefined);
        if (ch === '\u0003' || ch === '\u0004') return done(new PasswordError('no password given'));
        if (ch === '\u007f' || ch === '\b') typed = typed.slice(0, -1);
        else typed += ch;
      }
    };
    stdin.on('data', onData);
  });
}
