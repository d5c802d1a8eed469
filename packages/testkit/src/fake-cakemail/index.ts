// The fake Cakemail API: a real HTTP server serving the calls the gateway makes,
// with the spec's validation and error shapes, fault switches and a call record.

export { createFakeCakemail, DEFAULT_MAX_BODY_BYTES, DEFAULT_TOKEN_TTL_SECONDS } from './server.js';
export {
  DEFAULT_ACCOUNT_ID,
  DEFAULT_ACCOUNTS,
  DEFAULT_SENDER,
  DEFAULT_USER,
  DEFAULT_USERS,
  MFA_USER,
  MULTI_ACCOUNT_USER,
  OTHER_ACCOUNT_ID,
  OTHER_ACCOUNT_SENDER,
  UNCONFIRMED_SENDER,
} from './seed.js';
export type {
  ActiveFault,
  CountKey,
  EmailAttachment,
  FakeCakemail,
  FakeCakemailOptions,
  Fault,
  FaultEffect,
  FaultSwitches,
  ListRecord,
  RecordedCall,
  RouteKey,
  SeedAccount,
  SeedList,
  SeedSender,
  SeedUser,
  SenderRecord,
  SentEmail,
  SubmitEmailBody,
  SubmitStatus,
} from './types.js';
export type { DevInbox, InboxHeader, InboxNote, InboxRecipientOutcome } from './inbox/index.js';
