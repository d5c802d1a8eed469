import { isSmtpError, type SmtpError } from '@cakemail-smtp/smtp-core';

/** The SmtpError `p` rejects with; fails the test if it resolves or rejects with anything else. */
export async function refused(p: Promise<unknown>): Promise<SmtpError> {
  try {
    await p;
  } catch (err) {
    if (isSmtpError(err)) return err;
    throw err;
  }
  throw new Error('expected an SmtpError');
}
