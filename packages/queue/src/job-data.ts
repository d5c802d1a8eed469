/** What a BullMQ job holds: clear metadata plus one sealed value (body and session). */
import type { BounceFailure } from './types.js';

export interface JobData {
  readonly v: 1;
  readonly account: string;
  readonly sender: string;
  /** Recipients still to deliver. */
  readonly recipients: readonly string[];
  readonly isBounce: boolean;
  readonly queuedAt: number;
  readonly size: number;
  /** Attempts made so far. */
  readonly attempts: number;
  readonly lastError: string | null;
  /** Recipients given up on whose bounce has not gone out yet. */
  readonly failures: readonly BounceFailure[];
  /** The body and the session, sealed (see secret.ts and crypto.ts). */
  readonly sealed: string;
}

/** A queue id: 20 hex digits, safe in an SMTP reply and a Redis key. */
export const QUEUE_ID = /^[0-9a-f]{20}$/;

/** Error texts are kept short and on one line in job metadata. */
export function shortError(text: string): string {
  return text.replace(/[\r\n\t]+/g, ' ').slice(0, 300);
}

/** BullMQ's attempt cap: retries end by age (`maxAgeMs`), not by count. */
export const MAX_ATTEMPTS = 1_000_000;
/** The job's backoff type, computed by the workers' strategy. */
export const BACKOFF_TYPE = 'smtp-gateway';
