/**
 * One typed SMTP error and the named catalogue of the protocol and limit replies
 * (go-smtp's SMTPError, aiosmtpd's named replies). A backend words its own
 * replies with SmtpError, in a table of its own.
 *
 * Only the core turns these into reply lines. Policy code (AUTH, relay) throws
 * them; anything else that is thrown becomes `451 4.3.0` with a generic text and
 * the real error is logged, so no internal detail ever reaches a client.
 */

/** A reply code with its RFC 3463 enhanced status code and the text to send. */
export class SmtpError extends Error {
  override readonly name = 'SmtpError';

  constructor(
    /** Three-digit reply code, 4xx (temporary) or 5xx (permanent). */
    readonly code: number,
    /** Enhanced status code, e.g. `5.7.8`. Always shown. */
    readonly enhancedCode: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(stripControl(message), options);
  }

  /** True for 4xx replies: the client should retry later. */
  get temporary(): boolean {
    return this.code >= 400 && this.code < 500;
  }

  /** What follows the reply code: `5.7.8 Authentication credentials invalid`. */
  get text(): string {
    return `${this.enhancedCode} ${this.message}`;
  }

  /** The reply line without CRLF, e.g. `535 5.7.8 Authentication credentials invalid`. */
  get line(): string {
    return `${this.code} ${this.text}`;
  }

  /** A copy of this reply with another text, same codes. */
  withText(text: string): SmtpError {
    return new SmtpError(this.code, this.enhancedCode, text);
  }
}

/**
 * Reply texts are printable ASCII (RFC 5321 4.2): no control characters, which
 * would split the reply, and no 8-bit text echoed from the client.
 */
function stripControl(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\x00-\x1f\x7f]+/g, ' ').replace(/[^\x20-\x7e]/gu, '?').trim();
}

type Entry = readonly [code: number, enhanced: string, text: string];

const catalogue = {
  // 2xx and 3xx are sent by the library; these are the ones the gateway words itself.
  S421_SHUTTING_DOWN: [421, '4.3.2', 'Service shutting down, try again later'],
  S421_TOO_MANY_CONNECTIONS: [421, '4.7.0', 'Too many connections, try again later'],
  S421_TOO_MANY_FROM_IP: [421, '4.7.0', 'Too many connections from your address, try again later'],
  S421_PROXY_HEADER: [421, '4.7.0', 'Invalid or missing PROXY protocol header, closing connection'],
  S421_IDLE_TIMEOUT: [421, '4.4.2', 'Idle timeout, closing connection'],
  S421_SESSION_TOO_LONG: [421, '4.4.2', 'Session time limit reached, closing connection'],
  S421_TOO_MANY_AUTH_FAILURES: [421, '4.7.0', 'Too many failed authentication attempts, closing connection'],
  S421_TOO_MANY_COMMANDS: [421, '4.7.0', 'Too many commands without a message, closing connection'],
  S421_TOO_MANY_MESSAGES: [421, '4.7.0', 'Too many messages in this session, reconnect to send more'],
  S451_INTERNAL: [451, '4.3.0', 'Temporary internal error, try again later'],
  S451_INFLIGHT_FULL: [451, '4.3.1', 'Insufficient system storage, try again later'],
  S452_INFLIGHT_FULL: [452, '4.3.1', 'Insufficient system storage, try again later'],
  S452_TOO_MANY_RECIPIENTS: [452, '4.5.3', 'Too many recipients'],
  S454_AUTH_UNAVAILABLE: [454, '4.7.0', 'Temporary authentication failure, try again later'],
  S454_AUTH_LOCKED: [454, '4.7.0', 'Too many failed authentication attempts, try again later'],
  S500_LINE_TOO_LONG: [500, '5.5.2', 'Line too long'],
  S501_AUTH_SYNTAX: [501, '5.5.2', 'Invalid base64 in authentication exchange'],
  S503_AUTH_ALREADY: [503, '5.5.1', 'Already authenticated'],
  S504_AUTH_MECHANISM: [504, '5.5.4', 'Unrecognized authentication mechanism'],
  S530_STARTTLS_FIRST: [530, '5.7.0', 'Must issue a STARTTLS command first'],
  S530_AUTH_REQUIRED: [530, '5.7.0', 'Authentication required'],
  S535_AUTH_INVALID: [535, '5.7.8', 'Authentication credentials invalid'],
  S550_BARE_LF: [550, '5.5.2', 'Bare LF line endings are not allowed, use CRLF'],
  S552_MESSAGE_TOO_BIG: [552, '5.3.4', 'Message size exceeds fixed maximum message size'],
  S554_NUL_IN_DATA: [554, '5.6.0', 'Message contains NUL characters'],
} as const satisfies Record<string, Entry>;

export type ReplyName = keyof typeof catalogue;

/** The catalogue as ready-made errors: `throw Replies.S530_AUTH_REQUIRED`. */
export const Replies: { readonly [K in ReplyName]: SmtpError } = Object.freeze(
  Object.fromEntries(
    Object.entries(catalogue).map(([name, [code, enhanced, text]]) => [name, new SmtpError(code, enhanced, text)]),
  ) as { [K in ReplyName]: SmtpError },
);

/** True when `err` is an SmtpError (also across package copies). */
export function isSmtpError(err: unknown): err is SmtpError {
  return err instanceof SmtpError || (err instanceof Error && err.name === 'SmtpError' && 'enhancedCode' in err);
}
