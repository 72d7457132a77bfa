/**
 * What the services need from the outside world, as narrow interfaces: the adapters implement them
 * in AWS and locally, and a test can hand in a fault-injecting one.
 */

import type { RequestStore, StoredReply, TransitionResult } from '../adapters/request-store';
import type {
  DecideInput,
  Decision,
  Tier,
  TokenReservation,
  TokenUsage,
  UserStatus,
} from '../core/limiter/types';
import type { QueuedRequest, QueueMessageBody, RequestStatus } from '../core/queue/request';

/** A server message of protocol v1: `type`, `timestamp` and the fields of its type. */
export type OutgoingMessage = { readonly type: string; readonly timestamp: number } & Record<string, unknown>;

/** Posts to one WebSocket connection (`@connections`). */
export interface ConnectionSender {
  send(connectionId: string, message: OutgoingMessage): Promise<'sent' | 'gone'>;
}

/** Finds a user's live connections. */
export interface ConnectionDirectory {
  listByUser(userId: string, nowMs: number): Promise<readonly { readonly connectionId: string }[]>;
}

export interface LimiterPort {
  decide(input: DecideInput, nowMs: number): Promise<Decision>;
  reconcile(reservation: TokenReservation, usage: TokenUsage, nowMs: number): Promise<{ applied: boolean }>;
  status(userId: string, claimTier: Tier | undefined, nowMs: number): Promise<UserStatus>;
  enqueue(
    userId: string,
    requestId: string,
    sequenceNumber: string,
    maxQueued: number,
  ): Promise<
    { accepted: true; position: number; queued: readonly string[] } | { accepted: false; queued: number }
  >;
  removeQueued(userId: string, requestId: string): Promise<{ removed: boolean; queued: readonly string[] }>;
}

export interface RequestStorePort {
  create(record: QueuedRequest): Promise<boolean>;
  get(userId: string, requestId: string): Promise<QueuedRequest | undefined>;
  transition(
    userId: string,
    requestId: string,
    from: readonly RequestStatus[],
    to: RequestStatus,
    nowMs: number,
    set?: Parameters<RequestStore['transition']>[5],
  ): Promise<TransitionResult>;
  delete(userId: string, requestId: string): Promise<void>;
  addToTotal(delta: number): Promise<number>;
  total(): Promise<number>;
  saveReply(
    userId: string,
    requestId: string,
    message: Record<string, unknown>,
    nowMs: number,
  ): Promise<void>;
  listReplies(userId: string, nowMs: number): Promise<StoredReply[]>;
  deleteReply(userId: string, requestId: string): Promise<void>;
}

export interface RequestQueuePort {
  /** Sends the pointer; resolves with its SQS sequence number (the FIFO order). */
  send(body: QueueMessageBody): Promise<string>;
  defer(receiptHandle: string, delayMs: number): Promise<void>;
  moveToDeadLetterQueue(rawBody: string, groupId: string, dedupId: string, reason: string): Promise<void>;
}

/** One streamed model event. */
export type ModelEvent =
  | { readonly type: 'chunk'; readonly text: string }
  | {
      readonly type: 'done';
      readonly usage: { readonly inputTokens: number; readonly outputTokens: number };
    };

export interface ModelInput {
  readonly prompt: string;
  /** The reservation's output allowance: the model must not produce more. */
  readonly maxOutputTokens: number;
  readonly requestId: string;
  readonly signal?: AbortSignal;
}

export interface ModelPort {
  stream(input: ModelInput): AsyncIterable<ModelEvent>;
}

/** The SPEC §6 metric names. */
export type MetricName =
  | 'MessageRateLimitExceeded'
  | 'TokenRateLimitExceeded'
  | 'RequestsQueued'
  | 'RequestsProcessed'
  | 'QueueWaitTime'
  | 'TokensConsumed'
  | 'LimiterFailOpen'
  | 'RequestsFailed';

export interface MetricsPort {
  count(name: MetricName, value?: number): void;
  milliseconds(name: MetricName, value: number): void;
}

export interface LogPort {
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}
