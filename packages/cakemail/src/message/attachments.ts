/**
 * Attachment rules: MIME type or file extension → the API's attachment type, the content's
 * signature checked against that type (`file-type`), file names reduced to `[a-zA-Z0-9-_]` plus
 * the type's extension, and a streaming base64 encoder that keeps the encoded content once, as
 * ASCII buffers ready to be written into the request body.
 */
import { createHash, type Hash } from 'node:crypto';
import { fileTypeFromBuffer } from 'file-type';
import type { AttachmentType } from '../types.js';

export const ALLOWED_EXTENSIONS = 'csv, doc, docx, ics, jpeg, pdf, png, xls, xlsx';

const BY_MIME: Readonly<Record<string, AttachmentType>> = {
  'text/csv': 'csv',
  'application/csv': 'csv',
  'application/msword': 'doc',
  'application/vnd.openxmlformats-officedocument.wordprocessingml.document': 'docx',
  'text/calendar': 'calendar',
  'application/ics': 'calendar',
  'image/jpeg': 'jpeg',
  'image/jpg': 'jpeg',
  'image/pjpeg': 'jpeg',
  'application/pdf': 'pdf',
  'image/png': 'png',
  'application/vnd.ms-excel': 'xls',
  'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet': 'xlsx',
};

const BY_EXTENSION: Readonly<Record<string, AttachmentType>> = {
  csv: 'csv',
  doc: 'doc',
  docx: 'docx',
  ics: 'calendar',
  ical: 'calendar',
  jpg: 'jpeg',
  jpeg: 'jpeg',
  jpe: 'jpeg',
  pdf: 'pdf',
  png: 'png',
  xls: 'xls',
  xlsx: 'xlsx',
};

/** The file extension the API wants for each type. */
export const EXTENSION_OF: Readonly<Record<AttachmentType, string>> = {
  csv: 'csv',
  doc: 'doc',
  docx: 'docx',
  calendar: 'ics',
  jpeg: 'jpeg',
  pdf: 'pdf',
  png: 'png',
  xls: 'xls',
  xlsx: 'xlsx',
};

/** The API type of an attachment: by MIME type first, then by the file name's extension. */
export function attachmentTypeOf(contentType: string | undefined, filename: string | undefined): AttachmentType | undefined {
  const mime = (contentType ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
  const byMime = BY_MIME[mime];
  if (byMime) return byMime;
  const ext = /\.([A-Za-z0-9]+)\s*$/.exec(filename ?? '')?.[1]?.toLowerCase();
  return ext === undefined ? undefined : BY_EXTENSION[ext];
}

/**
 * A file name the API accepts: the base name without its extension, accents folded, every run
 * of other characters turned into `_`, at most 100 characters, then the type's extension.
 */
export function apiFilename(filename: string | undefined, type: AttachmentType): string {
  let base = (filename ?? '').replace(/^.*[\\/]/, '');
  base = base.replace(/\.[A-Za-z0-9]{1,5}\s*$/, '');
  base = base
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .replace(/[^a-zA-Z0-9_-]+/g, '_')
    .replace(/^_+|_+$/g, '')
    .slice(0, 100);
  if (!base) base = type === 'calendar' ? 'invite' : 'attachment';
  return `${base}.${EXTENSION_OF[type]}`;
}

/** How much of an attachment's start its signature check reads. */
export const SNIFF_BYTES = 64 * 1024;

/**
 * What `file-type` may find in an attachment of each type. Binary types must carry their own
 * signature: OOXML (docx, xlsx) is a zip, taken as such when its parts are past the first
 * `SNIFF_BYTES`; Word and Excel 97-2003 files (doc, xls) are OLE compound files (`cfb`). The text
 * types (csv, calendar) have no signature of their own (a calendar may show `ics`): they pass
 * when nothing is found, so that a binary file named `.csv` is still refused.
 */
const SIGNATURES: Readonly<Record<AttachmentType, readonly string[]>> = {
  csv: [],
  calendar: ['ics'],
  doc: ['cfb'],
  xls: ['cfb'],
  docx: ['docx', 'zip'],
  xlsx: ['xlsx', 'zip'],
  jpeg: ['jpg'],
  pdf: ['pdf'],
  png: ['png'],
};
const TEXT_TYPES: ReadonlySet<AttachmentType> = new Set(['csv', 'calendar']);

/**
 * Checks the start of an attachment (`head`, up to `SNIFF_BYTES`) against its API type. Answers
 * undefined when it fits, else what the content looks like: the extension `file-type` found
 * (`exe`, `zip`, …) or `unknown` when a binary type has no recognizable signature.
 */
export async function signatureMismatch(type: AttachmentType, head: Uint8Array): Promise<string | undefined> {
  let found: string | undefined;
  try {
    found = (await fileTypeFromBuffer(head))?.ext;
  } catch {
    found = undefined; // a malformed container: no signature recognized
  }
  if (found === undefined) return TEXT_TYPES.has(type) ? undefined : 'unknown';
  if (!SIGNATURES[type].includes(found)) return found;
  // A zip is a docx or xlsx only when what it holds is an OOXML package.
  return found === 'zip' && !ooxmlPackage(head) ? 'zip' : undefined;
}

/**
 * The folders (and the one file) an OOXML package's parts sit in (ECMA-376 Part 2 and the
 * Office documents' conventions): a docx's text is under `word/`, an xlsx's sheets under `xl/`.
 */
const OOXML_PARTS = ['[Content_Types].xml', '_rels/', 'docProps/', 'customXml/', 'word/', 'xl/', 'ppt/'];

/**
 * Whether the zip entries `head` shows are all parts of an OOXML package: the first at least,
 * then those that follow as long as their local headers give their size and lie in `head`. A
 * zip of anything else (an `.exe`, a folder of files) named `.docx` is refused as a zip.
 */
function ooxmlPackage(head: Uint8Array): boolean {
  const names = zipEntryNames(head);
  return names.length > 0 && names.every((name) => OOXML_PARTS.some((part) => name.startsWith(part)));
}

/** The names of the zip entries whose local file headers lie in `head`, in order (APPNOTE 4.3.7). */
function zipEntryNames(head: Uint8Array): string[] {
  const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
  const names: string[] = [];
  let at = 0;
  while (at + 30 <= head.length && view.getUint32(at, true) === 0x04034b50) {
    const flags = view.getUint16(at + 6, true);
    const size = view.getUint32(at + 18, true);
    const nameLength = view.getUint16(at + 26, true);
    const extraLength = view.getUint16(at + 28, true);
    if (at + 30 + nameLength > head.length) break;
    names.push(Buffer.from(head.buffer, head.byteOffset + at + 30, nameLength).toString('latin1'));
    // Its size comes after its data (a data descriptor): the next header cannot be found.
    if ((flags & 0x08) !== 0) break;
    at += 30 + nameLength + extraLength + size;
  }
  return names;
}

/**
 * Streaming base64: write raw chunks, get ASCII buffers of base64 text. Only the encoded form
 * is kept (1-2 leftover bytes between writes), plus the first `SNIFF_BYTES` raw bytes for the
 * signature check and, when asked, a sha256 of the content.
 */
export class Base64Collector {
  readonly parts: Buffer[] = [];
  length = 0;
  #carry: Buffer = Buffer.alloc(0);
  readonly #head: Buffer[] = [];
  #headLength = 0;
  readonly #hash: Hash | undefined;

  constructor(options: { readonly hash?: boolean } = {}) {
    this.#hash = options.hash ? createHash('sha256') : undefined;
  }

  /** The first `SNIFF_BYTES` bytes of the raw content. */
  get head(): Buffer {
    return Buffer.concat(this.#head);
  }

  /** sha256 (hex) of the raw content, when the collector was made with `hash: true`. */
  digest(): string | undefined {
    return this.#hash?.digest('hex');
  }

  write(chunk: Buffer): void {
    if (this.#headLength < SNIFF_BYTES) {
      const part = Buffer.from(chunk.subarray(0, SNIFF_BYTES - this.#headLength));
      this.#head.push(part);
      this.#headLength += part.length;
    }
    this.#hash?.update(chunk);
    const buf = this.#carry.length ? Buffer.concat([this.#carry, chunk]) : chunk;
    const whole = buf.length - (buf.length % 3);
    if (whole > 0) this.#push(buf.subarray(0, whole));
    this.#carry = Buffer.from(buf.subarray(whole));
  }

  end(): void {
    if (this.#carry.length) this.#push(this.#carry);
    this.#carry = Buffer.alloc(0);
  }

  #push(raw: Buffer): void {
    const b64 = Buffer.from(raw.toString('base64'), 'latin1');
    this.parts.push(b64);
    this.length += b64.length;
  }
}
