import type { Tier, TokenReservation } from '../limiter/types';

/**
 * A queued chat request and its life. The status moves only forward, each step by a conditional
 * write, which is what makes processing exactly-once over SQS's at-least-once delivery:
 *
 *   queued ──replay admitted──▶ processing ──reply delivered or stored──▶ done
 *     │                             │
 *     ├─cancel / purge─▶ cancelled  └─failed for good─▶ failed
 *     └─not started in time─▶ expired
 */
export type RequestStatus = 'queued' | 'processing' | 'done' | 'cancelled' | 'expired' | 'failed';

export const TERMINAL_STATUSES: readonly RequestStatus[] = ['done', 'cancelled', 'expired', 'failed'];

export interface QueuedRequest {
  readonly userId: string;
  readonly requestId: string;
  /** The connection that sent it: replies go there first. */
  readonly connectionId: string;
  readonly message: string;
  readonly conversationId?: string;
  readonly maxTokens?: number;
  readonly claimTier?: Tier;
  readonly estimatedInputTokens: number;
  readonly enqueuedAtEpochMs: number;
  /** Not started by then: expired (enqueued + MAX_QUEUE_WAIT + 60 s). */
  readonly expiresAtEpochMs: number;
  readonly status: RequestStatus;
  /** Processing attempts started (crash recovery counts them). */
  readonly attempts: number;
  /** Set when the replay was admitted; a retried attempt reuses it instead of deciding again. */
  readonly reservation?: TokenReservation;
  /** While processing: another delivery must not start before this (epoch ms). */
  readonly leaseUntilEpochMs?: number;
  readonly startedAtEpochMs?: number;
  /** The `message_complete`, recorded with `done` before it is sent (a retry re-sends, never re-runs). */
  readonly reply?: Record<string, unknown>;
  readonly usage?: { readonly inputTokens: number; readonly outputTokens: number };
  /** Set once the recorded reply reached a connection or was kept for `resume`. */
  readonly delivered?: boolean;
}

/** The SQS message body: a pointer to the record, never the message text. */
export interface QueueMessageBody {
  readonly v: 1;
  readonly userId: string;
  readonly requestId: string;
}

export function isTerminal(status: RequestStatus): boolean {
  return TERMINAL_STATUSES.includes(status);
}

/** Has a request that never started waited past its deadline? */
export function isExpired(
  request: Pick<QueuedRequest, 'status' | 'expiresAtEpochMs'>,
  nowMs: number,
): boolean {
  return request.status === 'queued' && nowMs >= request.expiresAtEpochMs;
}

export function queueDeadlineEpochMs(enqueuedAtEpochMs: number, maxQueueWaitSeconds: number): number {
  return enqueuedAtEpochMs + (maxQueueWaitSeconds + 60) * 1000;
}

/**
 * Parses an SQS body; `undefined` for anything that is not a request pointer (a poison message).
 */
export function parseQueueMessageBody(body: string): QueueMessageBody | undefined {
  try {
    const value: unknown = JSON.parse(body);
    if (typeof value !== 'object' || value === null) return undefined;
    const { v, userId, requestId } = value as Record<string, unknown>;
    if (v !== 1 || typeof userId !== 'string' || typeof requestId !== 'string') return undefined;
    if (userId.length === 0 || requestId.length === 0) return undefined;
    return { v, userId, requestId };
  } catch {
    return undefined;
  }
}
