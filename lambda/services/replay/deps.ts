import { FUNCTIONS, QUEUES } from '../../core/resources';
import type {
  ConnectionDirectory,
  ConnectionSender,
  EventsPort,
  LimiterPort,
  LogPort,
  MetricsPort,
  ReplyHandoffPort,
  ReplyStorePort,
  RequestQueuePort,
} from '../ports';
import { ReplyChannel } from '../reply-channel';

export interface ReplaySettings {
  /**
   * How long one attempt holds the user's active request: the reply runner's Timeout and a margin.
   * A redelivery inside it waits; after it (the runner died) the next delivery takes over.
   */
  readonly leaseMs: number;
  /** Attempts (crashes or model failures) before a request fails for good. @default 3 */
  readonly maxAttempts: number;
  /** Waits up to this long in-process for the limiter instead of hiding the message. @default 10_000 */
  readonly maxInProcessWaitMs: number;
  /** The configured model's maximum output per reply: caps every allowance. @default none */
  readonly modelMaxOutputTokens?: number;
  /**
   * A wake-up received this many times is replaced by a fresh one before it serves again, so no
   * backlog, however long, spends the queue's `maxReceiveCount` and lands in the DLQ with the
   * user's list orphaned (issue 20, finding 2). Well below `maxReceiveCount`: a replacement whose
   * send fails is tried again on each later receive. @default maxReceiveCount / 5 (100)
   */
  readonly refreshAfterReceives?: number;
}

/** A wake-up is replaced after this many receives (ReplaySettings.refreshAfterReceives). */
export const REFRESH_AFTER_RECEIVES = Math.floor(QUEUES.requests.maxReceiveCount / 5);

export const DEFAULT_REPLAY_SETTINGS: ReplaySettings = Object.freeze({
  leaseMs: (FUNCTIONS.reply.timeoutSeconds + 60) * 1000,
  maxAttempts: 3,
  maxInProcessWaitMs: 10_000,
  refreshAfterReceives: REFRESH_AFTER_RECEIVES,
});

export interface ReplayDeps {
  readonly limiter: LimiterPort;
  readonly store: ReplyStorePort;
  readonly queue: RequestQueuePort;
  readonly sender: ConnectionSender;
  readonly directory: ConnectionDirectory;
  readonly handoff: ReplyHandoffPort;
  readonly metrics: MetricsPort;
  readonly log: LogPort;
  /** Where `Budget Threshold Crossed` goes (SPEC §9.5); none: not published. */
  readonly events?: EventsPort;
  readonly settings: ReplaySettings;
  readonly now: () => number;
  readonly sleep: (ms: number) => Promise<void>;
}

/** One SQS record, as the processor sees it. */
export interface QueueRecord {
  readonly messageId: string;
  readonly receiptHandle: string;
  readonly body: string;
  readonly groupId: string;
  readonly deduplicationId: string;
  /** SQS's `ApproximateReceiveCount` of this delivery (1 for the first). @default 1 */
  readonly receiveCount?: number;
}

/** `done`: delete the message. `retry`: keep it (its visibility was set for the next try). */
export type ReplayResult = 'done' | 'retry';

/** A step of serving a user's queue: an end of this delivery, or `look-again` at the item. */
export type ReplayStep = ReplayResult | 'look-again';

/** The model that answers an admitted request, and the one it replaced if a fallback does. */
export interface Served {
  readonly model?: string;
  readonly fallbackFrom?: string;
}

/** Hides the wake-up for `delayMs` (at least 0) and keeps it. */
export async function defer(deps: ReplayDeps, record: QueueRecord, delayMs: number): Promise<ReplayResult> {
  await deps.queue.defer(record.receiptHandle, Math.max(0, delayMs));
  return 'retry';
}

export function channelOf(deps: ReplayDeps, userId: string, connectionId: string): ReplyChannel {
  return new ReplyChannel(userId, connectionId, deps);
}
