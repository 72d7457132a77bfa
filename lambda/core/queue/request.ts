import type { ConversationRef } from '../conversation';
import type { Tier } from '../limiter/tiers';
import { FUNCTIONS } from '../resources';
import type { ServerMessage } from '../server-messages';

/**
 * A queued chat request, as it waits in its user's limiter item (`q_<requestId>`), beside the
 * user's waiting list (`waiting`, head first): only what decisions, positions, deadlines, tier
 * priority and the sweep need, a few dozen bytes. Its content (the prompt) is in the Requests
 * table ({@link RequestContent}), written once before the enqueue and read once when it starts
 * (issue 22: an item every decision writes holds counters, never content). Keeping the rest in
 * the same item is what makes every step of its life one conditional write on that item:
 *
 *   enqueue ──appends to `waiting`, stores q_<id>──▶ waiting
 *   waiting ──replay admits the head: leaves `waiting`, becomes `act`──▶ active
 *   active ──commit (the reconcile): removes `act`, q_<id> and the reservation──▶ gone
 *   waiting ──cancel / purge / expiry: leaves `waiting`, q_<id> removed──▶ gone
 *
 * Only one write can take a request out of `waiting` (its condition pins the list's head or the
 * entry's index), and only one commit can remove the reservation marker, which is what makes a
 * replay exactly-once over SQS's at-least-once delivery.
 */
export interface QueuedRequest {
  readonly requestId: string;
  /** The connection that sent it: replies go there first. */
  readonly connectionId: string;
  readonly maxTokens?: number;
  /** The model the request names, if any. */
  readonly model?: string;
  readonly claimTier?: Tier;
  /** The token's `team` claim (SPEC §9.4): its replay is decided with the same claim. */
  readonly claimTeam?: string;
  readonly estimatedInputTokens: number;
  readonly enqueuedAtEpochMs: number;
  /** Not started by then: expired (enqueued + MAX_QUEUE_WAIT + 60 s). */
  readonly expiresAtEpochMs: number;
  /**
   * Not admitted before then (epoch ms): the refusal that queued it waits for time — a window's
   * end, a model quota's minute — so it, and every request behind it in its user's queue, waits
   * at least that long (the floor of their ETAs: waitFloorSeconds). Absent when it waits for a
   * slot (a reply ending may free one any moment) or for the requests ahead of it.
   */
  readonly notBeforeEpochMs?: number;
  /**
   * Names this enqueue's content item (random, per enqueue): a request id reused, or a duplicate
   * frame whose enqueue is refused, writes an item of its own and never overwrites the content of
   * the request still waiting under that id.
   */
  readonly contentKey: string;
}

/** What a waiting request carries outside the limiter item: the Requests table, written once. */
export interface RequestContent {
  readonly message: string;
  readonly conversationId?: string;
  /** The conversation's earlier turns its admission counted (SPEC §9.3). */
  readonly conversation?: ConversationRef;
}

/** A waiting request whole: its place in the limiter item and its content. */
export type WaitingRequest = QueuedRequest & RequestContent;

/**
 * How long a waiting request's content item outlives the request's queue deadline: an admission
 * just before the deadline, every attempt's lease after it (a takeover reads the content again),
 * and an hour for a takeover the sweep repairs late. Then DynamoDB's TTL ends it, whatever
 * happened to the request (an enqueue refused after the content was written included).
 */
export const CONTENT_AFTER_DEADLINE_SECONDS = 4 * (FUNCTIONS.reply.timeoutSeconds + 60) + 3600;

/** When a waiting request's content item expires (epoch seconds, DynamoDB TTL). */
export function contentTtlEpochSeconds(request: Pick<QueuedRequest, 'expiresAtEpochMs'>): number {
  return Math.ceil(request.expiresAtEpochMs / 1000) + CONTENT_AFTER_DEADLINE_SECONDS;
}

/** The queued request being answered now (at most one per user: the FIFO group runs one at a time). */
export interface ActiveRequest {
  readonly requestId: string;
  /** Another delivery may take over only after this (epoch ms): a crashed attempt's lease lapses. */
  readonly leaseUntilEpochMs: number;
  /** Attempts started (a takeover counts one more). */
  readonly attempts: number;
  /**
   * The claim of the reply runner answering this attempt (`act.c`), set before its model runs;
   * a takeover rewrites `act` without it, so the claim belongs to one attempt only.
   */
  readonly claim?: string;
}

/**
 * The SQS message body: a wake-up for the user's message group. The processor replays the head of
 * the user's waiting list, whichever request the message was sent for (`requestId` is informative),
 * so the order of replies is the order of the list, the order positions were told in.
 */
export interface QueueMessageBody {
  readonly v: 1;
  readonly userId: string;
  readonly requestId: string;
  /**
   * What made this wake-up, one value per wake-up made: `enqueue:<enqueuedAtEpochMs>` (the request
   * that started the list), `refresh:<messageId>` (the worn message it replaces), `sweep:<epoch ms>`
   * or `head:<epoch ms>` (a repair). Part of the FIFO deduplication id, so a request id reused
   * after its request ended wakes the queue again, while a retry of the same send is still
   * dropped as a duplicate (issue 20, finding 1).
   */
  readonly cause?: string;
}

/** The `cause` of a wake-up (see {@link QueueMessageBody}). */
export const wakeUpCause = {
  enqueue: (enqueuedAtEpochMs: number) => `enqueue:${enqueuedAtEpochMs}`,
  refresh: (messageId: string) => `refresh:${messageId}`,
  sweep: (nowMs: number) => `sweep:${nowMs}`,
  head: (nowMs: number) => `head:${nowMs}`,
} as const;

/** A finished reply kept for `resume` while the user had no connection. */
export interface StoredReply {
  readonly requestId: string;
  /** The server message to deliver. */
  readonly message: ServerMessage;
  readonly storedAtEpochMs: number;
}

/** Has a request that never started waited past its deadline? */
export function isExpired(request: Pick<QueuedRequest, 'expiresAtEpochMs'>, nowMs: number): boolean {
  return nowMs >= request.expiresAtEpochMs;
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
    const { v, userId, requestId, cause } = value as Record<string, unknown>;
    if (v !== 1 || typeof userId !== 'string' || typeof requestId !== 'string') return undefined;
    if (userId.length === 0 || requestId.length === 0) return undefined;
    return typeof cause === 'string' ? { v, userId, requestId, cause } : { v, userId, requestId };
  } catch {
    return undefined;
  }
}
