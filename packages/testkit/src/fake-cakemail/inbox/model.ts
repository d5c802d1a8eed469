// The inbox's data: the fake's recorded `POST /v2/emails` calls, joined with what the gateway
// said about the SMTP message each came from (its notes, in development mode).

import type { RecordedCall, SenderRecord } from '../types.js';

/** One header of the SMTP message and what became of it (the gateway's explanation). */
export interface InboxHeader {
  readonly name: string;
  readonly raw: string;
  readonly fate: 'forwarded' | 'field' | 'dropped';
  readonly field?: string;
  readonly value?: string;
  readonly reason?: string;
}

export type InboxRecipientOutcome =
  | { readonly rcpt: string; readonly ok: true; readonly id: string; readonly reused: boolean }
  | { readonly rcpt: string; readonly ok: false; readonly reply: string; readonly temporary: boolean };

/** What the gateway tells the inbox about one SMTP message (the shape of its relay observer). */
export interface InboxNote {
  readonly sessionId: string;
  readonly started: number;
  readonly finished: number;
  readonly mailFrom: string;
  readonly recipients: readonly string[];
  readonly accountId?: number;
  readonly headers: readonly InboxHeader[];
  readonly outcomes: readonly InboxRecipientOutcome[];
  readonly reply: string;
}

export interface NoteEntry {
  readonly n: number;
  readonly note: InboxNote;
  /** The send calls this message made (seq numbers). */
  readonly calls: number[];
}

/** A send call as the list shows it. */
export interface Row {
  readonly kind: 'call';
  readonly call: RecordedCall;
  readonly note: NoteEntry | undefined;
  readonly time: string;
}

/** An SMTP message that made no send call (refused before, e.g. a bad tag). */
export interface SmtpOnlyRow {
  readonly kind: 'smtp';
  readonly note: NoteEntry;
  readonly time: string;
}

export interface SendBody {
  sender?: { id?: string; name?: string };
  email?: string;
  list_id?: number;
  content?: { type?: string; subject?: string; html?: string; text?: string; encoding?: string };
  tags?: string[];
  tracking?: { opens?: boolean; clicks_html?: boolean; clicks_text?: boolean };
  additional_headers?: { name: string; value: string }[];
  attachment?: { filename: string; type: string; content: string } | { filename: string; type: string; content: string }[];
}

export function sendBody(call: RecordedCall): SendBody {
  return typeof call.body === 'object' && call.body !== null && !Array.isArray(call.body) ? (call.body as SendBody) : {};
}

export function attachmentsOf(body: SendBody): { filename: string; type: string; content: string }[] {
  const a = body.attachment;
  if (a === undefined) return [];
  return (Array.isArray(a) ? a : [a]).filter((x) => typeof x === 'object' && x !== null && typeof x.content === 'string');
}

/** Cakemail's id in a 201 answer. */
export function cakemailId(call: RecordedCall): string | undefined {
  const data = (call.response as { data?: { id?: unknown } } | undefined)?.data;
  return typeof data?.id === 'string' ? data.id : undefined;
}

export function submitStatus(call: RecordedCall): string | undefined {
  const data = (call.response as { data?: { status?: unknown } } | undefined)?.data;
  return typeof data?.status === 'string' ? data.status : undefined;
}

/** Cakemail's error text (its `detail[].msg`), when it answered with an error. */
export function apiError(call: RecordedCall): string {
  const detail = (call.response as { detail?: unknown } | undefined)?.detail;
  if (typeof detail === 'string') return detail;
  if (!Array.isArray(detail)) return '';
  return detail
    .map((d) => (typeof d === 'object' && d !== null && typeof (d as { msg?: unknown }).msg === 'string' ? (d as { msg: string }).msg : ''))
    .filter(Boolean)
    .join('; ');
}

export function accepted(call: RecordedCall): boolean {
  return call.status === 201 && submitStatus(call) === 'queued';
}

export class Notes {
  readonly entries: NoteEntry[] = [];
  /** send call seq → the note that made it */
  readonly byCall = new Map<number, NoteEntry>();
  private next = 1;

  /**
   * Joins a note to its calls: an accepted recipient by Cakemail's id, any other call by its
   * request (same recipient, made while this message was being relayed, not joined yet).
   */
  add(note: InboxNote, sendCalls: readonly RecordedCall[]): NoteEntry {
    const entry: NoteEntry = { n: this.next++, note, calls: [] };
    const ids = new Set(note.outcomes.flatMap((o) => (o.ok ? [o.id] : [])));
    const rcpts = new Set(note.recipients.map((r) => r.toLowerCase()));
    const from = note.started - 1000;
    const until = note.finished + 1000;
    for (const call of sendCalls) {
      if (this.byCall.has(call.seq)) continue;
      const id = cakemailId(call);
      const arrived = Date.parse(call.time);
      const byRequest = rcpts.has((sendBody(call).email ?? '').toLowerCase()) && arrived >= from && arrived <= until;
      if ((id !== undefined && ids.has(id)) || byRequest) {
        this.byCall.set(call.seq, entry);
        entry.calls.push(call.seq);
      }
    }
    this.entries.push(entry);
    return entry;
  }

  clear(): void {
    this.entries.length = 0;
    this.byCall.clear();
    this.next = 1;
  }
}

/** Newest first: every send call, and the SMTP messages that made none. */
export function rows(sendCalls: readonly RecordedCall[], notes: Notes): Array<Row | SmtpOnlyRow> {
  const out: Array<Row | SmtpOnlyRow> = sendCalls.map((call) => ({ kind: 'call', call, note: notes.byCall.get(call.seq), time: call.time }));
  for (const note of notes.entries) {
    if (note.calls.length === 0) out.push({ kind: 'smtp', note, time: new Date(note.note.finished).toISOString() });
  }
  return out.sort((a, b) => (a.time < b.time ? 1 : a.time > b.time ? -1 : rowSeq(b) - rowSeq(a)));
}

function rowSeq(r: Row | SmtpOnlyRow): number {
  return r.kind === 'call' ? r.call.seq : 0;
}

export type SenderLookup = (accountId: number, senderId: string) => SenderRecord | undefined;
