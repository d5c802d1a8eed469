export { CakemailClient, parseRetryAfter } from './client.js';
export type {
  CakemailClientOptions,
  CallOptions,
  CreateListInput,
  EncodedBody,
  ListInfo,
  RetryPolicy,
  SendResult,
  SenderInfo,
  TokenResult,
} from './client.js';
export { CakemailError, CakemailMfaError, isCakemailError, isMfaChallenge, extractApiMessage } from './errors.js';
export type { CakemailErrorKind, CakemailErrorReason, CakemailErrorOptions } from './errors.js';
export { CakemailAuthenticator, AuthSession, DEFAULT_AUTH_CACHE_TTL_MS } from './auth.js';
export type { AuthenticatorOptions, TokenApi } from './auth.js';
export { SenderDirectory } from './senders.js';
export type { SenderApi, SenderDirectoryOptions } from './senders.js';
export { ListResolver, GATEWAY_LIST_NAME } from './lists.js';
export type { ListApi } from './lists.js';
export { parseMessage, readControlHeaders, prepareEmail, PreparedEmail, FingerprintStream, NO_SUBJECT } from './mapping.js';
export type { ParsedMessage, ParsedAttachment, MessageOptions, ResolvedEnvelope, OriginalHeaders } from './mapping.js';
export { attachmentTypeOf, apiFilename, ALLOWED_EXTENSIONS } from './attachments.js';
export { CONTROL_HEADERS, KEPT_HEADERS, isForwardedHeader } from './headers.js';
export { MemoryAcceptedStore, acceptedKey, ACCEPTED_TTL_MS } from './accepted-store.js';
export type { AcceptedStore, MemoryAcceptedStoreOptions } from './accepted-store.js';
export { RedisAcceptedStore } from './redis-accepted-store.js';
export { MemoryInflightMarks, INFLIGHT_MARGIN_MS, DEFAULT_INFLIGHT_WAIT_MS } from './inflight.js';
export type { InflightMarks } from './inflight.js';
export { RedisInflightMarks } from './redis-inflight.js';
export { buildBounce, sendBounce, isBounceExempt, BOUNCE_SUBJECT, BOUNCE_SENDER_NAME } from './bounce.js';
export type { BounceInput, RefusedRecipient } from './bounce.js';
export type { RedisAcceptedStoreOptions } from './redis-accepted-store.js';
export { createRelayBackend, relayConfigSchema } from './relay.js';
export { explainHeaders } from './explain.js';
export type { HeaderMapping } from './explain.js';
export type { RecipientOutcome, RelayedMessage, RelayObserver } from './observer.js';
export type { RelayBackend, RelayConfig, RelayDeps } from './relay.js';
export type {
  AttachmentType,
  EmailAttachment,
  EmailBody,
  EmailContent,
  EmailHeader,
  EmailTracking,
  EmailType,
  Logger,
} from './types.js';
