/**
 * How a reply reaches smtp-server: the library sends an error's
 * `responseCode` and `message`, and an SmtpError's text carries its own
 * enhanced code (see connection.ts). Anything that is not an SmtpError is
 * logged and answered `451 4.3.0`.
 */
import type { Logger } from '@cakemail-smtp/tls';
import { Replies, isSmtpError } from '../errors.js';

export function toLibraryError(err: unknown, log: Logger, during: string): Error {
  const smtp = isSmtpError(err) ? err : undefined;
  if (!smtp) log.error({ err, during }, 'unexpected error, answered 451 4.3.0');
  const reply = smtp ?? Replies.S451_INTERNAL;
  return Object.assign(new Error(reply.text), { responseCode: reply.code });
}
