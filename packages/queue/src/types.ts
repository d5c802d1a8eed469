/** The public shapes of the queue: what goes in, what a worker sees, what comes out. */

/** A message handed to `enqueue`. `body` and `session` are sealed at rest; the rest is clear metadata. */
export interface QueueMessage<Body = unknown, Session = unknown> {
  /** The Cakemail account id the message is sent from. */
  readonly account: string;
  /** The envelope sender (MAIL FROM); a bounce goes back to it. */
  readonly sender: string;
  /** The recipients Cakemail has not accepted yet. */
  readonly recipients: readonly string[];
  /** The prepared request (JSON-serialisable); encrypted at rest. */
  readonly body: Body;
  /** The Cakemail session (access and refresh token, never the password); encrypted at rest. */
  readonly session: Session;
  /** True for a bounce: a bounce that fails is dropped, never bounced. */
  readonly isBounce?: boolean;
  /** The last error that made the caller queue it (for `list`), if any. */
  readonly lastError?: string;
}

export type EnqueueResult =
  | { readonly status: 'queued'; readonly id: string; readonly size: number }
  | { readonly status: 'full'; readonly size: number; readonly bytes: number; readonly maxBytes: number };

/** What `deliver` and `bounce` get: one attempt at one queued message. */
export interface QueuedJob<Body = unknown, Session = unknown> {
  readonly id: string;
  readonly account: string;
  readonly sender: string;
  /** The recipients still to deliver in this attempt. */
  readonly recipients: readonly string[];
  readonly body: Body;
  readonly session: Session;
  readonly isBounce: boolean;
  /** Epoch milliseconds when the message was queued. */
  readonly queuedAt: number;
  /** 1 for the first attempt. */
  readonly attempt: number;
  readonly lastError: string | undefined;
  /** Bytes the message holds in the queue. */
  readonly size: number;
  /** True when an earlier attempt started and never finished (a crash): a send may have gone out. */
  readonly resumed: boolean;
}

/** One recipient's outcome of an attempt. */
export type RecipientOutcome =
  | { readonly kind: 'accepted'; readonly id?: string }
  | { readonly kind: 'temporary'; readonly reason: string; readonly retryAfterMs?: number }
  | {
      readonly kind: 'permanent';
      /** Enhanced status code for the DSN, e.g. `5.7.1`. */
      readonly status: string;
      /** The reason, in Cakemail's words, e.g. `http; 403 sender not confirmed`. */
      readonly reason: string;
    };

export interface DeliverResult<Session = unknown> {
  /** One outcome per recipient of the job; a recipient left out counts as temporary. */
  readonly outcomes: ReadonlyMap<string, RecipientOutcome>;
  /** The session after a token refresh, stored (sealed) for the next attempt. */
  readonly session?: Session;
}

/** A recipient the queue gives up on. */
export interface BounceFailure {
  readonly recipient: string;
  readonly status: string;
  readonly reason: string;
  /** Why it is bounced: Cakemail refused it, it stayed queued past `maxAgeMs`, or an operator returned it. */
  readonly cause: 'permanent' | 'expired' | 'operator';
}

export type DeliverFn<Body, Session> = (job: QueuedJob<Body, Session>, signal: AbortSignal) => Promise<DeliverResult<Session>>;
export type BounceFn<Body, Session> = (job: QueuedJob<Body, Session>, failures: readonly BounceFailure[]) => Promise<void>;

/** One line of `list()`: metadata only, never a body or a token. */
export interface QueueEntry {
  readonly id: string;
  readonly account: string;
  readonly sender: string;
  readonly recipients: readonly string[];
  readonly state: string;
  readonly queuedAt: number;
  readonly ageSeconds: number;
  readonly attempts: number;
  readonly lastError: string | undefined;
  /** Epoch milliseconds of the next attempt when the message waits for a retry. */
  readonly nextAttemptAt: number | undefined;
  readonly size: number;
  readonly isBounce: boolean;
  /** The key id that seals it. */
  readonly keyId: string | undefined;
}

export interface QueueStats {
  readonly depth: number;
  readonly bytes: number;
  readonly oldestAgeSeconds: number;
  readonly possibleDuplicates: number;
}
