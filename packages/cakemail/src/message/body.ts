/**
 * The text and HTML parts as they go into the JSON request body.
 *
 * JSON escapes a C0 control character as `\u00XX`: six bytes for one, so a body of them would
 * make a request six times the message. The gateway removes them from the body instead of
 * refusing the message: the programs that send through it (printers, ERPs, cron jobs) cannot
 * change their output, a refusal would lose the whole message for characters no mail reader
 * shows, and HTML treats them as errors. What is kept:
 *
 * - TAB, LF, CR and FF (form feed, the page break of printer and report output): JSON writes
 *   them as two-byte escapes (`\t`, `\n`, `\r`, `\f`);
 * - everything else, C1 and bidirectional characters included (they are text in a body, and
 *   take two or three UTF-8 bytes, never more than twice what carried them).
 *
 * Terminal colour sequences (`ESC [ … m`, the output of many cron jobs) are removed whole, not
 * left as `[31m`. A lone UTF-16 surrogate (from a broken UTF-16 or UTF-7 part), which JSON would
 * also write as `\uXXXX`, becomes U+FFFD.
 */

// eslint-disable-next-line no-control-regex
const ANSI_CSI = /\x1b\[[0-?]*[ -/]*[@-~]/g;
// eslint-disable-next-line no-control-regex
const BODY_CONTROL = /[\x00-\x08\x0b\x0e-\x1f\x7f]+/g;
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;
/**
 * A text with none of them: TAB, LF, FF, CR, and everything from the space up but DEL and the
 * surrogates (a valid pair too: the rare text that has one is checked by the replaces). One
 * anchored run over the whole text, about twice as fast as searching for the first character
 * that needs cleaning (which starts a match attempt at every position).
 */
const CLEAN = /^[\t\n\f\r\x20-\x7e\x80-\ud7ff\ue000-\uffff]*$/;

/** A text or HTML part without the characters JSON would inflate (see above). */
export function cleanBody(text: string): string {
  if (CLEAN.test(text)) return text;
  return text.replace(ANSI_CSI, '').replace(BODY_CONTROL, '').replace(LONE_SURROGATE, '\ufffd');
}
