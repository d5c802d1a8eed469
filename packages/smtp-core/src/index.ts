export { SmtpError, Replies, reply, isSmtpError } from './errors.js';
export type { ReplyName } from './errors.js';
export type {
  Backend,
  Session,
  ConnectionInfo,
  Credentials,
  AuthMechanism,
  MailOptions,
  DataInfo,
  TlsState,
} from './session.js';
