import { ENV, type EnvName } from './env';

export interface QueueDefinition {
  readonly id: string;
  /** Base name; FIFO queue names end in `.fifo`. */
  readonly name: string;
  readonly fifo: boolean;
  readonly contentBasedDeduplication: boolean;
  readonly visibilityTimeoutSeconds: number;
  readonly retentionSeconds: number;
  /** Receives before a message moves to the dead-letter queue. */
  readonly maxReceiveCount?: number;
  /** Key in {@link QUEUES} of this queue's dead-letter queue. */
  readonly deadLetterQueue?: string;
  readonly env?: EnvName;
}

export const QUEUES = {
  /**
   * Requests waiting for the limiter; group = user, so a user's requests never overtake each other.
   * Deferrals re-receive a message, so the receive budget is sized for a 900 s wait at one retry
   * per 3 s refill, with headroom. Requests that fail for good do not burn this budget: the
   * processor moves them to the DLQ itself and tells the user; redrive is the backstop for crashes.
   */
  requests: {
    id: 'RequestQueue',
    name: 'chat-limiter-requests.fifo',
    fifo: true,
    contentBasedDeduplication: false,
    visibilityTimeoutSeconds: 120,
    retentionSeconds: 4 * 24 * 3600,
    maxReceiveCount: 500,
    deadLetterQueue: 'dlq',
    env: ENV.requestQueueUrl,
  },
  dlq: {
    id: 'RequestDeadLetterQueue',
    name: 'chat-limiter-requests-dlq.fifo',
    fifo: true,
    contentBasedDeduplication: false,
    visibilityTimeoutSeconds: 120,
    retentionSeconds: 14 * 24 * 3600,
    env: ENV.deadLetterQueueUrl,
  },
} as const satisfies Record<string, QueueDefinition>;

export type QueueKey = keyof typeof QUEUES;
