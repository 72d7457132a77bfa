import type { Tier } from '../../core/limiter/tiers';
import type {
  ConnectionDirectory,
  ConnectionSender,
  ConversationPort,
  EventsPort,
  LimiterPort,
  LogPort,
  MetricsPort,
  ReplyHandoffPort,
  ReplyStorePort,
  RequestQueuePort,
} from '../ports';
import { ReplyChannel } from '../reply-channel';
import type { StopMarkPort } from '../shared/stop-marks';

export interface ChatServiceDeps {
  readonly limiter: LimiterPort;
  /** Kept replies and waiting requests' content, and the stop marks `cancel` leaves. */
  readonly store: ReplyStorePort & StopMarkPort;
  readonly queue: RequestQueuePort;
  readonly sender: ConnectionSender;
  readonly directory: ConnectionDirectory;
  readonly handoff: ReplyHandoffPort;
  readonly metrics: MetricsPort;
  readonly log: LogPort;
  /** Conversations' turns (SPEC §9.3); without it a `conversationId` carries nothing. */
  readonly conversations?: ConversationPort;
  /** Where `Budget Threshold Crossed` goes (SPEC §9.5); none: not published. */
  readonly events?: EventsPort;
  readonly settings: {
    readonly maxQueuedPerUser: number;
    readonly maxQueueWaitSeconds: number;
    /** The configured model's maximum output per reply: caps every allowance. */
    readonly modelMaxOutputTokens?: number;
    /** Earlier turns a conversation's message carries. @default 20 */
    readonly conversationTurns?: number;
    /** Each tier's `maxInputTokens`: a message's earlier turns stop there. */
    readonly maxInputTokens?: Partial<Record<Tier, number>>;
  };
  readonly now: () => number;
  /** The id of a request the client sent without one. @default a random UUID */
  readonly newRequestId?: () => string;
}

export interface SendMessageInput {
  readonly message: string;
  readonly requestId?: string;
  readonly conversationId?: string;
  readonly maxTokens?: number;
  readonly model?: string;
}

/** A refusal, mapped to a protocol `error` by the handler. */
export interface Refusal {
  readonly kind: 'refused';
  readonly code: 'RATE_LIMIT_EXCEEDED' | 'QUEUE_FULL' | 'INVALID_REQUEST' | 'NOT_FOUND' | 'INTERNAL_ERROR';
  readonly message: string;
  readonly requestId?: string;
  readonly details?: Record<string, unknown>;
  /** A refusal by a limit: the user's limits in the IETF RateLimit fields' syntax (SPEC §9.3). */
  readonly rateLimitPolicy?: string;
  readonly rateLimit?: string;
}

export type SendOutcome =
  /** Admitted and handed to the reply runner, which streams the reply. */
  | { readonly kind: 'handed-off'; readonly requestId: string }
  | { readonly kind: 'queued'; readonly requestId: string; readonly position: number }
  | Refusal;

/** Where a request's messages go: its connection, else the user's others (SPEC §4). */
export function channelOf(deps: ChatServiceDeps, userId: string, connectionId: string): ReplyChannel {
  return new ReplyChannel(userId, connectionId, deps);
}
