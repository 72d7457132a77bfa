import type { LimitName, LimitWarning } from './limiter/kinds/registry';
import type { Tier } from './limiter/tiers';

/** The protocol's error codes (SPEC §3), in `error` and `request_failed` messages. */
export const ERROR_CODES = [
  'RATE_LIMIT_EXCEEDED',
  'QUEUE_FULL',
  'INVALID_REQUEST',
  'MESSAGE_TOO_LARGE',
  'UNKNOWN_ACTION',
  'NOT_FOUND',
  'INTERNAL_ERROR',
  /** The token the connection was opened with has expired: the frame is refused, the connection closed. */
  'TOKEN_EXPIRED',
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

/**
 * Every message the server sends (SPEC §3), each type declared once with its builder. Services
 * send only built messages; `type` and `timestamp` (epoch ms) are on all of them.
 */
interface Base<T extends string> {
  readonly type: T;
  readonly timestamp: number;
}

export interface ReplyUsage {
  readonly inputTokens: number;
  readonly outputTokens: number;
  readonly totalTokens: number;
  /** What the reply cost on its model, in USD. */
  readonly costUsd?: number;
}

export interface StatusLimit {
  readonly name: LimitName;
  readonly limit: number;
  readonly used: number;
  readonly remaining: number;
  readonly resetAt: number;
  readonly unit: 'messages' | 'tokens' | 'usd' | 'requests';
  /** The limit's window (a bucket: the time it takes to refill whole). */
  readonly windowSeconds: number;
  /** Evaluated and reported, never enforced (SPEC §2 v2 shadow limits). */
  readonly shadow: boolean;
}

/**
 * The user's limits in the IETF RateLimit fields' syntax (rate-limit-fields.ts): on `status`,
 * `message_complete` and refusals. Absent when no limit is enforced.
 */
export interface RateLimitStrings {
  readonly rateLimitPolicy?: string;
  readonly rateLimit?: string;
}

export interface QueuePlace {
  readonly requestId: string;
  readonly position: number;
  readonly totalInQueue: number;
  /** Seconds. */
  readonly estimatedWaitTime: number;
  /**
   * The version of the user's waiting list this place was computed from (lambda/core/queue/
   * places.ts): of two notices about one request, the higher version is the newer.
   */
  readonly queueVersion?: number;
  /** Why it waits, on every `queue_position` while a global limit holds the queue (SPEC §9.5). */
  readonly reason?: string;
}

export type MessageAccepted = Base<'message_accepted'> & { readonly requestId: string };
export type Chunk = Base<'chunk'> & {
  readonly requestId: string;
  readonly index: number;
  readonly text: string;
};
export type MessageComplete = Base<'message_complete'> & {
  readonly requestId: string;
  /** Left out (with `textOmitted`) when the message would exceed API Gateway's 128 KB. */
  readonly text?: string;
  readonly textOmitted?: true;
  /**
   * Some `chunk`s of this reply were lost (throttled posts) and its text is not in this message:
   * the whole reply is kept; `resume` delivers it.
   */
  readonly resume?: true;
  readonly usage: ReplyUsage;
  /** The model that answered. */
  readonly model?: string;
  /** The model the request asked for, when a spent cost budget let a cheaper fallback answer. */
  readonly fallbackFrom?: string;
  /** The user's limits after this reply was settled, as `status` gives them (from the settle's write). */
  readonly limits?: readonly StatusLimit[];
  /** The user stopped the reply (`cancel` while it streamed): `text` and `usage` are what was produced. */
  readonly stopped?: true;
} & RateLimitStrings;
export type RequestQueued = Base<'request_queued'> &
  QueuePlace & {
    readonly message: string;
    /** `reason`: one sentence naming the limit, its state and when it frees (limit-reason.ts). */
    readonly details?: { readonly reason: string };
  };
export type QueuePosition = Base<'queue_position'> & QueuePlace;
export type QueueProcessingStarted = Base<'queue_processing_started'> & {
  readonly requestId: string;
  readonly message: string;
};
export type RequestCancelled = Base<'request_cancelled'> & { readonly requestId: string };
export type RequestExpired = Base<'request_expired'> & {
  readonly requestId: string;
  /** Why: not started within MAX_QUEUE_WAIT, or a limit that will not allow it before then. */
  readonly reason: string;
};
export type RequestFailed = Base<'request_failed'> & {
  readonly requestId: string;
  readonly code: ErrorCode;
  readonly message: string;
};
export type StatusMessage = Base<'status'> &
  RateLimitStrings & {
    readonly userId: string;
    readonly tier: Tier;
    readonly limits: readonly StatusLimit[];
    readonly queue: {
      readonly queued: number;
      /** Each waiting request's place and wait (seconds), as `queue_position` would tell it. */
      readonly requests: readonly {
        readonly requestId: string;
        readonly position: number;
        readonly estimatedWaitTime?: number;
      }[];
      /** Why the queue waits, while a global limit holds it (SPEC §9.5). */
      readonly reason?: string;
    };
    /** Stack-wide limits, totals over all users (only when the stack has global limits). */
    readonly global?: readonly SharedLimit[];
    /**
     * The user's team (SPEC §9.4), when the user is in one: its name, where it comes from (the
     * user's record, this token's claim, or the last token's), and its limits' totals over its
     * members, named `team.<limit>` (none set: `[]`).
     */
    readonly team?: {
      readonly name: string;
      readonly source: 'record' | 'token' | 'last token';
      readonly limits: readonly SharedLimit[];
    };
  };

/** A limit many users share (global `global.<limit>`, a team's `team.<limit>`): its totals over them. */
export interface SharedLimit {
  readonly name: string;
  readonly limit: number;
  readonly used: number;
  readonly remaining: number;
  readonly resetAt: number;
  readonly unit: string;
  readonly shadow: boolean;
}
export type Pong = Base<'pong'>;
/** A budget or quota has 20 % or less left (once per limit and window). */
export type LimitWarningMessage = Base<'limit_warning'> & {
  readonly limit: LimitName;
  readonly remaining: number;
  readonly limitValue: number;
  readonly unit: string;
  readonly resetAt: number;
};
export type ErrorMessage = Base<'error'> &
  RateLimitStrings & {
    readonly code: ErrorCode;
    readonly message: string;
    readonly requestId?: string;
    readonly details?: Record<string, unknown>;
  };

export type ServerMessage =
  | MessageAccepted
  | Chunk
  | MessageComplete
  | RequestQueued
  | QueuePosition
  | QueueProcessingStarted
  | RequestCancelled
  | RequestExpired
  | RequestFailed
  | StatusMessage
  | Pong
  | LimitWarningMessage
  | ErrorMessage;

export type ServerMessageType = ServerMessage['type'];

export const messageAccepted = (requestId: string, nowMs: number): MessageAccepted => ({
  type: 'message_accepted',
  timestamp: nowMs,
  requestId,
});

export const chunk = (requestId: string, index: number, text: string, nowMs: number): Chunk => ({
  type: 'chunk',
  timestamp: nowMs,
  requestId,
  index,
  text,
});

export const messageComplete = (
  requestId: string,
  text: string,
  usage: ReplyUsage,
  nowMs: number,
  served: { readonly model?: string; readonly fallbackFrom?: string; readonly stopped?: boolean } = {},
): MessageComplete => ({
  type: 'message_complete',
  timestamp: nowMs,
  requestId,
  text,
  usage,
  ...(served.model === undefined ? {} : { model: served.model }),
  ...(served.fallbackFrom === undefined ? {} : { fallbackFrom: served.fallbackFrom }),
  ...(served.stopped ? { stopped: true as const } : {}),
});

export const requestQueued = (
  place: QueuePlace,
  message: string,
  nowMs: number,
  reason?: string,
): RequestQueued => ({
  type: 'request_queued',
  timestamp: nowMs,
  ...place,
  message,
  ...(reason === undefined ? {} : { details: { reason } }),
});

export const queuePosition = (place: QueuePlace, nowMs: number): QueuePosition => ({
  type: 'queue_position',
  timestamp: nowMs,
  ...place,
});

export const queueProcessingStarted = (requestId: string, nowMs: number): QueueProcessingStarted => ({
  type: 'queue_processing_started',
  timestamp: nowMs,
  requestId,
  message: 'Your queued request is being processed.',
});

export const requestCancelled = (requestId: string, nowMs: number): RequestCancelled => ({
  type: 'request_cancelled',
  timestamp: nowMs,
  requestId,
});

export const requestExpired = (requestId: string, reason: string, nowMs: number): RequestExpired => ({
  type: 'request_expired',
  timestamp: nowMs,
  requestId,
  reason,
});

export const requestFailed = (requestId: string, message: string, nowMs: number): RequestFailed => ({
  type: 'request_failed',
  timestamp: nowMs,
  requestId,
  code: 'INTERNAL_ERROR',
  message,
});

export const pong = (nowMs: number): Pong => ({ type: 'pong', timestamp: nowMs });

export const limitWarning = (warning: LimitWarning, nowMs: number): LimitWarningMessage => ({
  type: 'limit_warning',
  timestamp: nowMs,
  limit: warning.limit,
  remaining: warning.remaining,
  limitValue: warning.limitValue,
  unit: warning.unit,
  resetAt: warning.resetAtEpochMs,
});
