export { openQueue, MessageQueue, QueueUnavailableError, QUEUE_DEFAULTS } from './queue.js';
export type { QueueOptions, QueueLogger, RetryOutcome, RemoveOutcome, BounceOutcome } from './queue.js';
export type { Workers, WorkerOptions } from './workers.js';
export { parseKeyRing, KeyRingError, fingerprint } from './crypto.js';
export type { KeyRing, QueueKey } from './crypto.js';
export { retryDelay } from './backoff.js';
export type { RedisCheck } from './redis-check.js';
export type {
  QueueMessage,
  EnqueueResult,
  QueuedJob,
  RecipientOutcome,
  DeliverResult,
  BounceFailure,
  DeliverFn,
  BounceFn,
  QueueEntry,
  QueueStats,
} from './types.js';
export { formatQueueList } from './mailq.js';
