// Server-rendered HTML of the inbox. Every value from a message or a call goes through esc().

import type { ActiveFault, RecordedCall } from '../types.js';
import {
  accepted,
  apiError,
  attachmentsOf,
  cakemailId,
  sendBody,
  submitStatus,
  type InboxHeader,
  type NoteEntry,
  type Row,
  type SenderLookup,
  type SmtpOnlyRow,
} from './model.js';
import { FAULT_ROUTES } from './faults-http.js';

const ENTITIES: Readonly<Record<string, string>> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

export function esc(value: unknown): string {
  return String(value ?? '').replace(/[&<>"']/g, (c) => ENTITIES[c] ?? c);
}

function page(title: string, body: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)}</title><link rel="stylesheet" href="/_inbox/app.css"><script src="/_inbox/app.js" defer></script></head>
<body>${body}</body></html>`;
}

function time(iso: string): string {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? '' : `<time datetime="${esc(iso)}">${esc(d.toISOString().slice(11, 19))}</time>`;
}

/** The reply the client got, coloured by class. */
function replyBadge(reply: string | undefined): string {
  if (reply === undefined) return '<span class="muted">not relayed by this gateway</span>';
  const cls = reply.startsWith('2') ? 'ok' : reply.startsWith('4') ? 'temp' : 'perm';
  return `<code class="reply ${cls}">${esc(reply)}</code>`;
}

function callStatus(call: RecordedCall): string {
  if (accepted(call)) return '<span class="pill ok">accepted</span>';
  if (call.status === 201) return `<span class="pill perm">${esc(submitStatus(call) ?? 'unknown')}</span>`;
  if (call.status === null) return `<span class="pill temp">${esc(call.fault ?? 'no answer')}</span>`;
  return `<span class="pill ${call.status >= 500 || call.status === 429 ? 'temp' : 'perm'}">HTTP ${esc(call.status)}</span>`;
}

function senderCell(call: RecordedCall, senderOf: SenderLookup): string {
  const body = sendBody(call);
  const account = Number(call.query['account_id']);
  const record = body.sender?.id === undefined ? undefined : senderOf(account, body.sender.id);
  const name = body.sender?.name ? `${esc(body.sender.name)} ` : '';
  return record ? `${name}<span class="addr">&lt;${esc(record.email)}&gt;</span>` : `${name}<span class="muted">sender ${esc(body.sender?.id)}</span>`;
}

export function renderRows(list: ReadonlyArray<Row | SmtpOnlyRow>, senderOf: SenderLookup): string {
  if (list.length === 0) {
    return '<tr class="empty"><td colspan="10">No email yet. Send one through the gateway and it shows here at once.</td></tr>';
  }
  return list.map((r) => (r.kind === 'call' ? callRow(r, senderOf) : smtpRow(r))).join('\n');
}

function callRow(r: Row, senderOf: SenderLookup): string {
  const { call } = r;
  const body = sendBody(call);
  const tags = (body.tags ?? []).map((t) => `<span class="tag">${esc(t)}</span>`).join(' ');
  const id = cakemailId(call);
  const cls = accepted(call) ? 'accepted' : 'refused';
  return `<tr class="${cls}" data-seq="${esc(call.seq)}">
<td>${time(call.time)}</td><td>${esc(call.query['account_id'])}</td><td>${senderCell(call, senderOf)}</td>
<td class="addr">${esc(body.email)}</td><td><a href="/_inbox/call/${esc(call.seq)}">${esc(body.content?.subject ?? '(no subject)')}</a></td>
<td>${esc(body.content?.type)}</td><td>${tags}</td><td>${callStatus(call)}</td>
<td>${id === undefined ? `<span class="err">${esc(apiError(call) || (call.fault ? `fault: ${call.fault}` : ''))}</span>` : `<code>${esc(id)}</code>`}</td>
<td>${replyBadge(r.note?.note.reply)}</td></tr>`;
}

function smtpRow(r: SmtpOnlyRow): string {
  const { note } = r.note;
  const subject = note.headers.find((h) => h.name.toLowerCase() === 'subject');
  return `<tr class="refused smtp-only" data-note="${esc(r.note.n)}">
<td>${time(r.time)}</td><td>${esc(note.accountId)}</td><td class="addr">${esc(note.mailFrom)}</td>
<td class="addr">${esc(note.recipients.join(', '))}</td><td><a href="/_inbox/message/${esc(r.note.n)}">${esc(subject ? headerValue(subject.raw) : '(message)')}</a></td>
<td></td><td></td><td><span class="pill perm">no API call</span></td><td></td><td>${replyBadge(note.reply)}</td></tr>`;
}

function headerValue(raw: string): string {
  return raw.slice(raw.indexOf(':') + 1).replace(/\r?\n[ \t]+/g, ' ').trim();
}

function describeFault(f: ActiveFault): string {
  const x = f.fault;
  const parts: string[] = [];
  if (x.status !== undefined) parts.push(`HTTP ${x.status}${x.retryAfter === undefined ? '' : ` (Retry-After ${x.retryAfter}s)`}`);
  if (x.reset === true) parts.push('reset the connection');
  if (x.hang === true) parts.push('never answer');
  if (x.sendStatus !== undefined) parts.push(`201 with status ${x.sendStatus}`);
  if (x.delayMs !== undefined) parts.push(`delay ${x.delayMs} ms`);
  if (x.match?.email !== undefined) parts.push(`only to ${x.match.email}`);
  return parts.join(', ');
}

export function renderFaults(list: readonly ActiveFault[]): string {
  if (list.length === 0) return '<p class="muted" id="no-faults">No switch armed: Cakemail behaves.</p>';
  const rows = list
    .map(
      (f) => `<tr><td><code>${esc(f.route)}</code></td><td>${esc(describeFault(f))}</td>
<td>${f.remaining === undefined ? 'until cleared' : `${esc(f.remaining)} more`}</td><td class="hits">${esc(f.hits)}</td>
<td><button type="button" class="link" data-clear-route="${esc(f.route)}">clear ${esc(f.route)}</button></td></tr>`,
    )
    .join('\n');
  return `<table class="faults"><thead><tr><th>route</th><th>effect</th><th>remaining</th><th>fired</th><th></th></tr></thead><tbody>${rows}</tbody></table>`;
}

export function renderInbox(base: string, list: ReadonlyArray<Row | SmtpOnlyRow>, faults: readonly ActiveFault[], senderOf: SenderLookup): string {
  const routeOptions = FAULT_ROUTES.map((r) => `<option value="${esc(r)}">${esc(r)}</option>`).join('');
  return page(
    'Cakemail dev inbox',
    `<header><h1>Cakemail dev inbox</h1><span class="muted">what the fake Cakemail API at <code>${esc(base)}</code> received</span>
<span id="live" class="live" title="live updates">connecting…</span>
<button type="button" id="clear">Clear</button></header>
<main>
<section class="chaos"><h2>Chaos switches</h2>
<form id="arm" autocomplete="off">
<label>route <select name="route">${routeOptions}</select></label>
<label>effect <select name="effect"><option value="status">HTTP status</option><option value="reset">reset connection</option><option value="hang">never answer</option><option value="delay">delay only</option></select></label>
<label>status <input name="status" type="number" min="100" max="599" value="500"></label>
<label>delay ms <input name="delayMs" type="number" min="0" max="600000" placeholder="0"></label>
<label>times <input name="times" type="number" min="1" placeholder="until cleared"></label>
<button type="submit">Arm</button> <button type="button" id="disarm">Clear all</button>
<output id="arm-error" class="err"></output>
</form>
<div id="faults">${renderFaults(faults)}</div>
</section>
<section><h2>Emails <span class="muted">newest first</span></h2>
<table class="emails"><thead><tr><th>time</th><th>account</th><th>sender</th><th>recipient</th><th>subject</th><th>type</th><th>tags</th><th>Cakemail</th><th>id / error</th><th>reply the client got</th></tr></thead>
<tbody id="rows">${renderRows(list, senderOf)}</tbody></table></section>
</main>`,
  );
}

function mappingTable(headers: readonly InboxHeader[]): string {
  if (headers.length === 0) return '<p class="muted">The message could not be parsed, or the gateway did not report it.</p>';
  const rows = headers
    .map((h) => {
      const what =
        h.fate === 'forwarded'
          ? `→ <code>additional_headers</code>${h.value !== undefined && h.value !== headerValue(h.raw) ? ` as <code>${esc(h.value)}</code>` : ''}`
          : h.fate === 'field'
            ? `→ <code>${esc(h.field)}</code>${h.reason ? ` <span class="muted">(${esc(h.reason)})</span>` : ''}`
            : `dropped: ${esc(h.reason)}`;
      return `<tr class="${esc(h.fate)}"><td><code>${esc(h.name)}</code></td><td class="raw">${esc(headerValue(h.raw))}</td><td>${what}</td></tr>`;
    })
    .join('\n');
  return `<table class="mapping"><thead><tr><th>SMTP header</th><th>value</th><th>became</th></tr></thead><tbody>${rows}</tbody></table>`;
}

function outcomes(entry: NoteEntry): string {
  const { note } = entry;
  const items = note.outcomes
    .map((o) => `<li><span class="addr">${esc(o.rcpt)}</span>: ${o.ok ? `accepted as <code>${esc(o.id)}</code>${o.reused ? ' (by an earlier attempt)' : ''}` : replyBadge(o.reply)}</li>`)
    .join('');
  return `<dl class="grid"><dt>reply the client got</dt><dd>${replyBadge(note.reply)}</dd>
<dt>MAIL FROM</dt><dd class="addr">${esc(note.mailFrom || '<>')}</dd>
<dt>RCPT TO</dt><dd class="addr">${esc(note.recipients.join(', '))}</dd>
<dt>session</dt><dd><code>${esc(note.sessionId)}</code></dd></dl>
${items ? `<ul class="outcomes">${items}</ul>` : ''}`;
}

/** The JSON as sent, with attachment contents shortened for reading (the raw link has them whole). */
function readableJson(body: unknown): string {
  return JSON.stringify(
    body,
    (key, value: unknown) => (key === 'content' && typeof value === 'string' && value.length > 120 ? `${value.slice(0, 60)}… (${value.length} characters)` : value),
    2,
  );
}

export function renderCall(call: RecordedCall, note: NoteEntry | undefined, senderOf: SenderLookup): string {
  const body = sendBody(call);
  const base = `/_inbox/call/${call.seq}`;
  const atts = attachmentsOf(body);
  const tracking = body.tracking ?? {};
  const flag = (v: boolean | undefined): string => (v === false ? 'off' : 'on');
  const id = cakemailId(call);
  const attachments = atts.length
    ? `<table class="attachments"><thead><tr><th>name</th><th>type</th><th>size</th><th></th></tr></thead><tbody>${atts
        .map(
          (a, i) =>
            `<tr><td>${esc(a.filename)}</td><td>${esc(a.type)}</td><td>${esc(Math.floor((a.content.replace(/=+$/, '').length * 3) / 4))} bytes</td><td><a href="${base}/attachment/${i}" download="${esc(a.filename)}">download</a></td></tr>`,
        )
        .join('')}</tbody></table>`
    : '<p class="muted">none</p>';
  return page(
    body.content?.subject ?? 'email',
    `<header><a href="/" class="back">← inbox</a><h1>${esc(body.content?.subject ?? '(no subject)')}</h1></header>
<main class="detail">
<section><h2>Cakemail</h2>
<dl class="grid">
<dt>answer</dt><dd>${callStatus(call)} ${id === undefined ? `<span class="err">${esc(apiError(call))}</span>` : `id <code>${esc(id)}</code>`}</dd>
<dt>time</dt><dd>${time(call.time)}</dd>
<dt>account</dt><dd>${esc(call.query['account_id'])}</dd>
<dt>sender</dt><dd>${senderCell(call, senderOf)} <span class="muted">id ${esc(body.sender?.id)}</span></dd>
<dt>recipient</dt><dd class="addr">${esc(body.email)}</dd>
<dt>type</dt><dd>${esc(body.content?.type)}</dd>
<dt>list</dt><dd>${esc(body.list_id)}</dd>
<dt>tags</dt><dd>${(body.tags ?? []).map((t) => `<span class="tag">${esc(t)}</span>`).join(' ') || '<span class="muted">none</span>'}</dd>
<dt>tracking</dt><dd>opens ${flag(tracking.opens)}, clicks in HTML ${flag(tracking.clicks_html)}, clicks in text ${flag(tracking.clicks_text)}</dd>
</dl></section>
<section><h2>SMTP</h2>${note === undefined ? '<p class="muted">No SMTP message reported for this call (it did not come through this gateway in development mode).</p>' : outcomes(note)}</section>
<section><h2>HTML body</h2>${
      body.content?.html === undefined
        ? '<p class="muted">none</p>'
        : `<iframe class="html" sandbox="" referrerpolicy="no-referrer" title="HTML body" src="${base}/html"></iframe>`
    }</section>
<section><h2>Text body</h2>${body.content?.text === undefined ? '<p class="muted">none</p>' : `<pre class="text">${esc(body.content.text)}</pre>`}</section>
<section><h2>Attachments</h2>${attachments}</section>
<section><h2>Headers: SMTP → API</h2>${note === undefined ? '<p class="muted">unknown</p>' : mappingTable(note.note.headers)}</section>
<section><h2>POST /v2/emails <a class="small" href="${base}/json">raw JSON</a></h2><pre class="json" id="json">${esc(readableJson(call.body))}</pre></section>
<section><h2>Response</h2><pre class="json">${esc(call.status === null ? `(no answer: ${call.fault ?? 'connection closed'})` : `HTTP ${call.status}\n${JSON.stringify(call.response, null, 2)}`)}</pre></section>
</main>`,
  );
}

export function renderMessage(entry: NoteEntry): string {
  const subject = entry.note.headers.find((h) => h.name.toLowerCase() === 'subject');
  return page(
    'SMTP message',
    `<header><a href="/" class="back">← inbox</a><h1>${esc(subject ? headerValue(subject.raw) : '(message)')}</h1></header>
<main class="detail">
<section><h2>SMTP</h2><p>The gateway refused this message before any call to Cakemail.</p>${outcomes(entry)}</section>
<section><h2>Headers: SMTP → API</h2>${mappingTable(entry.note.headers)}</section>
</main>`,
  );
}
