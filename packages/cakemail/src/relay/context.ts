/** What every session of one relay backend shares: its options, the API client and the stores. */
import type { CakemailAuthenticator } from '../auth.js';
import type { CakemailClient } from '../client.js';
import type { ListResolver } from '../lists.js';
import type { SenderDirectory } from '../senders.js';
import type { EmailType, Logger } from '../types.js';
import type { AcceptedStore } from './accepted-store.js';
import type { InflightMarks } from './inflight.js';
import type { RelayObserver } from './observer.js';
import type { RelayQueue } from './queue.js';

export interface RelayContext {
  readonly cfg: {
    readonly deadlineMs: number;
    readonly emailType: EmailType;
    readonly listId: number | undefined;
    readonly concurrency: number;
    readonly inflightWaitMs: number;
    readonly bounces: boolean;
    readonly hostname: string;
  };
  readonly client: CakemailClient;
  readonly store: AcceptedStore;
  readonly inflight: InflightMarks;
  readonly onBounce: (result: 'sent' | 'failed') => void;
  /** Bounces being sent after the reply; close() waits for them. */
  readonly background: Set<Promise<void>>;
  readonly auth: CakemailAuthenticator;
  readonly senders: SenderDirectory;
  readonly lists: ListResolver;
  readonly logger: Logger;
  readonly onRelayed?: RelayObserver;
  /** QUEUE_MODE `fallback` or `always`; absent when `off`. */
  readonly queue?: RelayQueue;
}
