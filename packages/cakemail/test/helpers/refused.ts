import { isSmtpError, type AuthDecision, type AuthRefusal, type SmtpError } from '@cakemail-smtp/smtp-core';

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

/** The reply of the refusal `p` resolves with; fails the test unless it is a refusal for `reason`. */
export async function authRefused(p: Promise<AuthDecision>, reason: AuthRefusal): Promise<SmtpError> {
  const decision = await p;
  if (decision.ok) throw new Error('expected a refusal');
  if (decision.reason !== reason) throw new Error(`expected a refusal for ${reason}, got ${decision.reason}`);
  return decision.reply;
}
