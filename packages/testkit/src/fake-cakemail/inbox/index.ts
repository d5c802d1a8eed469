// The development inbox: a web page at the fake's base URL showing the emails Cakemail
// accepted and the calls it refused, live (server-sent events), with the chaos switches.
// It also serves the switches over HTTP for scripts (/_fake/faults).

import type { IncomingMessage, ServerResponse } from 'node:http';
import { isIP } from 'node:net';
import { json, type Reply } from '../errors.js';
import { readBody, writeJson } from '../http.js';
import type { Recorder } from '../recorder.js';
import type { FaultSwitches, RecordedCall } from '../types.js';
import { CSS, JS } from './assets.js';
import { faultsEndpoint } from './faults-http.js';
import { attachmentsOf, Notes, rows, sendBody, type InboxNote, type SenderLookup } from './model.js';
import { renderCall, renderFaults, renderInbox, renderMessage, renderRows } from './render.js';

export type { InboxHeader, InboxNote, InboxRecipientOutcome } from './model.js';

/** The page, its script and style: nothing from elsewhere, no inline script. */
const PAGE_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; frame-src 'self'; img-src 'self' data:; form-action 'none'; base-uri 'none'; frame-ancestors 'none'";
/** An email's HTML body: no script (also sandboxed by its iframe), no remote load of any kind. */
const BODY_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; sandbox; base-uri 'none'; form-action 'none'; frame-ancestors 'self'";

const SECURITY_HEADERS = { 'x-content-type-options': 'nosniff', 'referrer-policy': 'no-referrer', 'cache-control': 'no-store' } as const;

const MIME: Readonly<Record<string, string>> = {
  csv: 'text/csv',
  doc: 'application/msword',
  docx: 'application/vnd.openxmlformats-officedocument.wordprocessingml.document',
  calendar: 'text/calendar',
  jpeg: 'image/jpeg',
  pdf: 'application/pdf',
  png: 'image/png',
  xls: 'application/vnd.ms-excel',
  xlsx: 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet',
};

export interface DevInbox {
  /** What the gateway says about one SMTP message (its relay observer, in development mode). */
  note(note: InboxNote): void;
}

export interface InboxDeps {
  readonly recorder: Recorder;
  readonly faults: FaultSwitches;
  readonly senderOf: SenderLookup;
  readonly baseUrl: () => string;
  readonly maxBodyBytes: number;
}

export interface Inbox extends DevInbox {
  /** Serves the request when it is the inbox's or /_fake/faults; answers false otherwise. */
  handle(req: IncomingMessage, res: ServerResponse, url: URL): Promise<boolean>;
  /** Something changed (a call recorded, faults armed): tell the open pages. */
  changed(): void;
  /** Forget the SMTP notes (with the recorder's reset). */
  clear(): void;
}

/** The Host header names an IP address or localhost, not a DNS name that could be rebound. */
export function isLocalHost(host: string | undefined): boolean {
  if (host === undefined) return false;
  const name = host.replace(/:\d+$/, '').replace(/^\[(.*)\]$/, '$1').toLowerCase();
  return isIP(name) !== 0 || name === 'localhost' || name.endsWith('.localhost');
}

export function createInbox(deps: InboxDeps): Inbox {
  const notes = new Notes();
  const listeners = new Set<ServerResponse>();
  let version = 0;
  const sendCalls = (): RecordedCall[] => deps.recorder.calls.filter((c) => c.route === 'send' && c.method === 'POST');

  const changed = (): void => {
    version += 1;
    for (const res of listeners) res.write(`event: change\ndata: ${version}\n\n`);
  };

  function html(res: ServerResponse, status: number, body: string, csp = PAGE_CSP): void {
    res.writeHead(status, { ...SECURITY_HEADERS, 'content-type': 'text/html; charset=utf-8', 'content-security-policy': csp });
    res.end(body);
  }

  function asset(res: ServerResponse, type: string, body: string): void {
    res.writeHead(200, { ...SECURITY_HEADERS, 'content-type': `${type}; charset=utf-8` });
    res.end(body);
  }

  function events(req: IncomingMessage, res: ServerResponse): void {
    res.writeHead(200, { ...SECURITY_HEADERS, 'content-type': 'text/event-stream', connection: 'keep-alive' });
    res.write(`retry: 1000\nevent: hello\ndata: ${version}\n\n`);
    listeners.add(res);
    const ping = setInterval(() => res.write(': ping\n\n'), 15_000);
    ping.unref();
    req.once('close', () => {
      clearInterval(ping);
      listeners.delete(res);
    });
  }

  const findCall = (seq: string | undefined): RecordedCall | undefined => sendCalls().find((c) => String(c.seq) === seq);

  async function handle(req: IncomingMessage, res: ServerResponse, url: URL): Promise<boolean> {
    const method = req.method ?? 'GET';
    const path = url.pathname;
    if (path !== '/_fake/faults' && path !== '/' && !path.startsWith('/_inbox/')) return false;
    if (!isLocalHost(req.headers.host)) {
      // a page elsewhere that rebinds its DNS name to 127.0.0.1 must not read or arm anything
      writeJson(res, json(403, { detail: [{ msg: 'open the inbox by IP address or localhost', type: 'forbidden' }] }));
      return true;
    }
    if (path === '/_fake/faults') {
      let body: unknown;
      if (method === 'POST') {
        if (!/^application\/json\b/i.test(req.headers['content-type'] ?? '')) {
          writeJson(res, json(415, { detail: [{ msg: 'send the fault as JSON (content-type: application/json)', type: 'bad_request' }] }));
          return true;
        }
        const read = await readBody(req, Math.min(deps.maxBodyBytes, 1024 * 1024));
        if (read.kind !== 'ok') {
          writeJson(res, json(413, { detail: [{ msg: 'fault too large', type: 'bad_request' }] }));
          return true;
        }
        try {
          body = JSON.parse(read.body.toString('utf8'));
        } catch {
          writeJson(res, json(400, { detail: [{ msg: 'bad fault: the body is not JSON', type: 'bad_request' }] }));
          return true;
        }
      }
      const { reply, changed: did } = faultsEndpoint(deps.faults, method, url.searchParams, body);
      writeJson(res, reply);
      if (did) changed();
      return true;
    }

    if (method === 'POST' && path === '/_inbox/clear') {
      // a custom header: a cross-site form cannot send it without a CORS preflight, which fails
      if (req.headers['x-inbox'] !== '1') {
        writeJson(res, json(403, { detail: [{ msg: 'clear from the inbox page (x-inbox: 1)', type: 'forbidden' }] }));
        return true;
      }
      deps.recorder.reset();
      notes.clear();
      changed();
      writeJson(res, { status: 204, body: undefined });
      return true;
    }
    if (method !== 'GET' && method !== 'HEAD') {
      writeJson(res, { status: 405, body: { detail: [{ msg: 'method not allowed', type: 'method_not_allowed' }] }, headers: { allow: 'GET' } });
      return true;
    }

    if (path === '/') {
      html(res, 200, renderInbox(deps.baseUrl(), rows(sendCalls(), notes), deps.faults.list(), deps.senderOf));
      return true;
    }
    if (path === '/_inbox/app.css') {
      asset(res, 'text/css', CSS);
      return true;
    }
    if (path === '/_inbox/app.js') {
      asset(res, 'text/javascript', JS);
      return true;
    }
    if (path === '/_inbox/rows') {
      html(res, 200, renderRows(rows(sendCalls(), notes), deps.senderOf));
      return true;
    }
    if (path === '/_inbox/faults') {
      html(res, 200, renderFaults(deps.faults.list()));
      return true;
    }
    if (path === '/_inbox/events') {
      events(req, res);
      return true;
    }

    const message = /^\/_inbox\/message\/(\d+)$/.exec(path);
    if (message) {
      const entry = notes.entries.find((e) => String(e.n) === message[1]);
      if (entry === undefined) notFoundPage(res);
      else html(res, 200, renderMessage(entry));
      return true;
    }

    const m = /^\/_inbox\/call\/(\d+)(?:\/(html|json|attachment\/(\d+)))?$/.exec(path);
    const call = findCall(m?.[1]);
    if (m === null || call === undefined) {
      notFoundPage(res);
      return true;
    }
    const body = sendBody(call);
    if (m[2] === undefined) {
      html(res, 200, renderCall(call, notes.byCall.get(call.seq), deps.senderOf));
    } else if (m[2] === 'html') {
      html(res, 200, body.content?.html ?? '', BODY_CSP);
    } else if (m[2] === 'json') {
      const payload = JSON.stringify(call.body, null, 2);
      res.writeHead(200, { ...SECURITY_HEADERS, 'content-type': 'application/json; charset=utf-8', 'content-security-policy': "default-src 'none'" });
      res.end(payload);
    } else {
      const attachment = attachmentsOf(body)[Number(m[3])];
      if (attachment === undefined) notFoundPage(res);
      else {
        const name = attachment.filename.replace(/[^A-Za-z0-9._-]/g, '_') || 'attachment';
        const bytes = Buffer.from(attachment.content, 'base64');
        res.writeHead(200, {
          ...SECURITY_HEADERS,
          'content-type': MIME[attachment.type] ?? 'application/octet-stream',
          'content-disposition': `attachment; filename="${name}"`,
          'content-length': bytes.length,
          'content-security-policy': "default-src 'none'; sandbox",
        });
        res.end(bytes);
      }
    }
    return true;
  }

  function notFoundPage(res: ServerResponse): void {
    const reply: Reply = json(404, { detail: [{ msg: 'no such email (cleared?)', type: 'not_found' }] });
    writeJson(res, reply, SECURITY_HEADERS);
  }

  return {
    handle,
    changed,
    clear: () => {
      notes.clear();
      changed();
    },
    note(note: InboxNote): void {
      notes.add(note, sendCalls());
      changed();
    },
  };
}
