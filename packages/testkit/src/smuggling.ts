/**
 * The SMTP smuggling sequences (SEC Consult, 2023; aiosmtpd's
 * test_smtpsmuggling.py): end-of-data look-alikes that a server must never take
 * for `<CR><LF>.<CR><LF>`. Named for test titles, as the bytes they are.
 */
export const SMUGGLING_SEQUENCES: ReadonlyArray<readonly [name: string, bytes: string]> = [
  ['<LF>.<LF>', '\n.\n'],
  ['<LF>.<CR><LF>', '\n.\r\n'],
  ['<CR><LF>.<LF>', '\r\n.\n'],
  ['<CR>.<CR>', '\r.\r'],
  ['<CR><LF>.<CR>', '\r\n.\r'],
  ['<CR>.<CR><LF>', '\r.\r\n'],
];
