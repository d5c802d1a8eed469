// What apps/gateway imports: the relay backend and its shared store, the development inbox's
// observer type, and the API client that `smtp-gateway doctor` calls directly.
export { createRelayBackend } from './relay/backend.js';
export type { RelayBackend, RelayConfig, RelayDeps } from './relay/backend.js';
export type { QueueMode, RelayQueue, QueuedBody, QueuedSession, QueueHandlers } from './relay/queue.js';
export type { RelayObserver } from './relay/observer.js';
export { RedisAcceptedStore } from './relay/redis-accepted-store.js';
export { CakemailClient } from './client.js';
export type { CallOptions, SenderInfo, TokenResult, UpstreamAttempt, UpstreamOutcome } from './client.js';
export { CakemailError, isMfaChallenge } from './errors.js';
export { GATEWAY_LIST_NAME } from './lists.js';
