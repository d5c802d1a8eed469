// Small node:http helpers: a capped body reader and a JSON writer.

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Reply } from './errors.js';

export type ReadResult = { kind: 'ok'; body: Buffer } | { kind: 'too-large' } | { kind: 'aborted' };

/** Read the whole body, stopping at `max` bytes (checked against Content-Length first). */
export function readBody(req: IncomingMessage, max: number): Promise<ReadResult> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > max) return Promise.resolve({ kind: 'too-large' });
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const finish = (result: ReadResult): void => {
      if (done) return;
      done = true;
      req.removeListener('data', onData);
      resolve(result);
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > max) finish({ kind: 'too-large' });
      else chunks.push(chunk);
    };
    req.on('data', onData);
    req.once('end', () => finish({ kind: 'ok', body: Buffer.concat(chunks, size) }));
    req.once('error', () => finish({ kind: 'aborted' }));
    req.once('close', () => finish(req.complete ? { kind: 'ok', body: Buffer.concat(chunks, size) } : { kind: 'aborted' }));
  });
}

export function writeJson(res: ServerResponse, reply: Reply, extraHeaders?: Readonly<Record<string, string>>): void {
  if (res.headersSent || res.destroyed) return;
  const headers: Record<string, string | number> = { ...reply.headers, ...extraHeaders };
  if (reply.status === 204 || reply.status === 304 || reply.body === undefined) {
    res.writeHead(reply.status, headers);
    res.end();
    return;
  }
  const payload = JSON.stringify(reply.body);
  headers['content-type'] = 'application/json';
  headers['content-length'] = Buffer.byteLength(payload);
  res.writeHead(reply.status, headers);
  res.end(payload);
}
