/**
 * What the services need from the outside world, as narrow interfaces: the adapters implement them
 * in AWS and locally, and a test can hand in a fault-injecting one.
 */

import type { HealthReport } from '../core/admin';
import type { ConversationTurn } from '../core/conversation';
import type {
  DecideInput,
  Decision,
  DeniedDecision,
  ResetScope,
  StatusOptions,
  TokenReservation,
  TokenUsage,
  UserStatus,
} from '../core/limiter/decision';
import type { GlobalWaiter } from '../core/limiter/global/priority';
import type { LimiterSnapshot, LimiterView } from '../core/limiter/item/state';
import type { LimitOverride } from '../core/limiter/kinds/registry';
import type { ClaimTarget, SettleHolder } from '../core/limiter/plan/settle';
import type { Tier } from '../core/limiter/tiers';
import type { MetricName } from '../core/metrics';
import type { ServerMessage } from '../core/protocol';
import type { GlobalWait } from '../core/queue/global-eta';
import type {
  ActiveRequest,
  QueuedRequest,
  QueueMessageBody,
  RequestContent,
  StoredReply,
} from '../core/queue/request';
import type { ProducedReply, ReplyJob } from '../core/reply-job';
import type { SettledLimits } from '../core/status-message';
import type { TeamAdminPort } from './team-port';

/** A server message of protocol v1, as `core/protocol` declares and builds them. */
export type OutgoingMessage = ServerMessage;

/** Posts to one WebSocket connection (`@connections`). */
export interface ConnectionSender {
  send(connectionId: string, message: OutgoingMessage): Promise<'sent' | 'gone'>;
}

/** Finds a user's live connections. */
export interface ConnectionDirectory {
  listByUser(userId: string, nowMs: number): Promise<readonly { readonly connectionId: string }[]>;
}

export type EnqueueOutcome =
  | { readonly kind: 'queued'; readonly position: number; readonly snap: LimiterSnapshot }
  | { readonly kind: 'full'; readonly queued: number }
  | { readonly kind: 'duplicate' }
  /** The user's item stayed busy (or the store is down): nothing was written. */
  | { readonly kind: 'busy' }
  /** Its content could not be written ({@link EnqueueAsk.storeContent}): not queued. */
  | { readonly kind: 'unstored' };

/** A refused request that may wait: its place, the cap of the user's queue, its content's write. */
export interface EnqueueAsk {
  readonly request: QueuedRequest;
  readonly maxQueued: number;
  /** Writes its content, before the enqueue's write; `false`: not written, so not queued. */
  readonly storeContent?: () => Promise<boolean>;
}

/** Thrown by `decide` and `decideOrQueue` when a write's outcome is unknown (services/errors.ts). */
export { OutcomeUnknownError } from './errors';

export interface LimiterPort {
  decide(input: DecideInput, nowMs: number): Promise<Decision>;
  /** A direct decision and, when refused and `queueIfDenied` asks it, the enqueue, as one step. */
  decideOrQueue(
    input: DecideInput,
    nowMs: number,
    queueIfDenied: (denied: DeniedDecision) => EnqueueAsk | undefined,
  ): Promise<{ readonly decision: Decision; readonly slot?: EnqueueOutcome }>;
  /**
   * Settles a reservation to its usage, once. `holder`: whose settle it is — it lands only while
   * that claim (or, `unclaimed`, no runner) holds the request; otherwise `notHolder`.
   */
  reconcile(
    reservation: TokenReservation,
    usage: TokenUsage,
    nowMs: number,
    options?: { readonly endsActive?: boolean; readonly holder?: SettleHolder },
  ): Promise<SettleOutcome>;
  /** The reply runner's claim on an admitted request, before its model runs (one write). */
  claim(userId: string, requestId: string, claim: string, target: ClaimTarget): Promise<ClaimOutcome>;
  /** `history: true` also reads the stored history (admin `usage --history`, one more read). */
  status(userId: string, tier: Tier | undefined, nowMs: number, o?: StatusOptions): Promise<UserStatus>;
  /** The user's item, read fresh unless `fresh: false` allows what this instance last saw. */
  view(
    userId: string,
    claimTier: Tier | undefined,
    nowMs: number,
    options?: { readonly fresh?: boolean },
  ): Promise<LimiterView>;
  enqueue(
    request: QueuedRequest & { readonly userId: string },
    maxQueued: number,
    nowMs: number,
  ): Promise<EnqueueOutcome>;
  removeWaiting(userId: string, requestId: string): Promise<{ removed: boolean; snap: LimiterSnapshot }>;
  /**
   * Moves the lease of the user's active request (a takeover after a crash, or `endsLease`: a
   * failed hand-off ends its own lease now). `full`: its in-flight slot lapsed and none is free.
   */
  takeOver(
    userId: string,
    active: ActiveRequest,
    leaseUntilEpochMs: number,
    options?: { readonly endsLease?: boolean },
  ): Promise<{ ok: boolean; snap: LimiterSnapshot; full?: boolean }>;
  /** Parks the user's wake-up until a reply in flight ends (its settle releases it); `ok: false`: look again. */
  park(userId: string, receiptHandle: string): Promise<{ ok: boolean }>;
  /** Puts the user in line for global capacity (no-op without global limits); leave: out of it. */
  joinGlobalLine(waiter: GlobalWaiter): Promise<void>;
  leaveGlobalLine(userId: string): Promise<void>;
  /** The wait for a global slot, or its `team`'s, of a head like `me` when one binds (core/queue/global-eta.ts). */
  globalWait?(me: Omit<GlobalWaiter, 'limit'>, nowMs: number, team?: string): Promise<GlobalWait | undefined>;
  /**
   * Takes every entry out of the global line that is no longer live (overdue on its waiter's own
   * schedule, or past its deadline); the sweep calls it every minute. Returns whose entries went.
   */
  pruneGlobalLine(nowMs: number): Promise<{ readonly removed: readonly string[] }>;
  /**
   * Gives back the global shares nothing holds any more (a decision whose outcome was unknown and
   * whose undo got no answer, a settle whose release never landed), once each, after their lease
   * and a margin; the sweep calls it every minute. Returns the requests given back (none without
   * global limits).
   */
  releaseOrphanedGlobalShares(
    nowMs: number,
  ): Promise<{ readonly released: readonly { readonly userId: string; readonly requestId: string }[] }>;
}

export type { ClaimTarget, SettleHolder } from '../core/limiter/plan/settle';

export type ClaimOutcome =
  | { readonly kind: 'claimed' }
  /** Another runner claimed this attempt first (a duplicate event): `claim` is its id. */
  | { readonly kind: 'taken'; readonly claim: string }
  /** No longer this attempt's: settled, refunded, taken over, or the id reused since. */
  | { readonly kind: 'gone' };

/** What the sweep needs of the limiter: the chat path's port, whose `pruneGlobalLine` it calls. */
export type SweepLimiterPort = LimiterPort;

export interface SettleOutcome extends SettledLimits {
  readonly applied: boolean;
  /**
   * Not applied, and not this holder's to end: another attempt or runner holds the request, or
   * ended it (a settle of its own whose answer was lost is not this: then only `applied: false`).
   */
  readonly notHolder?: boolean;
  /** A wake-up this settle unparked (it freed an in-flight slot): make it visible now. */
  readonly wakeUp?: string;
  /** The wake-up of whoever is first in line for global capacity, which this settle freed. */
  readonly globalWakeUp?: string;
  /** The next in line's, in order: woken instead when the first is no longer held (awake already). */
  readonly globalWakeUpsAfter?: readonly string[];
  /** Settled, but its global share still held (no answer): reconcile again, or its lease ends it. */
  readonly globalUnreleased?: boolean;
}

/** Waiting requests' content (Requests table, an item per enqueue; TTL ends each, see adapter). */
export interface RequestContentPort {
  putContent(userId: string, request: QueuedRequest, content: RequestContent): Promise<void>;
  /** One consistent read; undefined when the item is missing. */
  getContent(userId: string, request: QueuedRequest): Promise<RequestContent | undefined>;
  deleteContent(userId: string, request: QueuedRequest): Promise<void>;
}

/** The Requests table: replies kept for `resume`, and waiting requests' content. */
export interface ReplyStorePort extends RequestContentPort {
  saveReply(userId: string, requestId: string, message: ServerMessage, nowMs: number): Promise<void>;
  listReplies(userId: string, nowMs: number): Promise<StoredReply[]>;
  deleteReply(userId: string, requestId: string): Promise<void>;
  /** Keeps what a runner produced but could not settle, for the attempt that settles it. */
  keepProduced(userId: string, requestId: string, produced: ProducedReply, nowMs: number): Promise<void>;
  producedReply(userId: string, requestId: string, nowMs: number): Promise<ProducedReply | undefined>;
  dropProduced(userId: string, requestId: string): Promise<void>;
}

export interface RequestQueuePort {
  /** Wakes the processor for the user's message group. */
  send(body: QueueMessageBody): Promise<void>;
  defer(receiptHandle: string, delayMs: number): Promise<void>;
  moveToDeadLetterQueue(rawBody: string, groupId: string, dedupId: string, reason: string): Promise<void>;
  /** Requests waiting in the queue for all users (SQS's own counters: no scan). */
  depth(): Promise<number>;
}

/** Hands an admitted request to the reply runner (an asynchronous invocation: returns at once). */
export interface ReplyHandoffPort {
  handOff(job: ReplyJob): Promise<void>;
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
  readonly turns?: readonly ConversationTurn[]; // the conversation's earlier turns, oldest first (§9.3)
  /** The reservation's output allowance: the model must not produce more. */
  readonly maxOutputTokens: number;
  readonly requestId: string;
  readonly signal?: AbortSignal;
}

export interface ModelPort {
  stream(input: ModelInput): AsyncIterable<ModelEvent>;
}

/** What a model throws for a fault worth another attempt (throttling, timeouts). */
export interface RetryableError {
  readonly retryable: true;
}

export type { MetricName } from '../core/metrics';
export type { ConversationPort } from './conversation-port';

export interface MetricsPort {
  /** `dimensions`: a metric of its own with these dimensions (e.g. `StateRepaired` by `kind`). */
  count(name: MetricName, value?: number, dimensions?: Readonly<Record<string, string>>): void;
  milliseconds(name: MetricName, value: number): void;
}

export interface LogPort {
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

/** Operational events (SPEC §9.5): the account's default EventBridge bus in AWS, the log locally. */
export interface EventsPort {
  /** Publishes one event of source `chat-limiter`. */
  publish(detailType: string, detail: Readonly<Record<string, unknown>>): Promise<void>;
}

/** A user the sweep index says is due: its id and the look-after it was found with. */
export interface DueUser {
  readonly userId: string;
  readonly sweepAfterEpochMs: number;
}

/** The sweep's own reads and writes of the Limits table (lambda/core/queue/sweep.ts). */
export interface SweepIndexPort {
  /** Users due by `nowMs`, every bucket of the sparse index (queries, no scan), at most `limit`. */
  due(nowMs: number, limit: number): Promise<DueUser[]>;
  /**
   * Moves the user's next look, only if it is still the one it was found with and the waiting
   * list still has `waiting` entries (what the look was computed from); `false` otherwise.
   */
  reschedule(user: DueUser, nextLookEpochMs: number, waiting: number): Promise<boolean>;
  /**
   * Takes the user out of the index, only if the item holds nothing needing an end (no waiting,
   * no active request, no in-flight slot) and its look-after is the one it was found with.
   */
  clear(user: DueUser): Promise<boolean>;
  /** Drops in-flight slots past their lease, each only if its lease is still the one seen. */
  dropSlots(userId: string, slots: readonly (readonly [string, number])[]): Promise<boolean>;
}

/** What the admin operations need of the limiter besides the chat path. */
export interface AdminLimiterPort extends LimiterPort, TeamAdminPort {
  reset(userId: string, scope: ResetScope, nowMs: number): Promise<void>;
  /**
   * Ends the user's active request when it can no longer be settled (its data or reservation is
   * gone) and so blocks the user's queue; returns its id, or undefined if there was none.
   */
  endStuckActive(userId: string): Promise<string | undefined>;
  setTier(userId: string, tier: Tier | null): Promise<unknown>;
  setOverride(userId: string, override: LimitOverride): Promise<unknown>;
  clearOverride(userId: string): Promise<unknown>;
}

/** The tables and queues `health` probes. */
export type HealthTable = keyof HealthReport['tables'];
export type HealthQueue = keyof HealthReport['queues'];

/** Probes for `health`: each call throws when the resource does not answer. */
export interface HealthProbePort {
  /** Reads an item nobody writes: any answer (even "no item") means the table answers. */
  probeTable(table: HealthTable): Promise<void>;
  /** The queue's depth: visible plus in-flight messages. */
  queueDepth(queue: HealthQueue): Promise<number>;
  /** The state of this function instance's limiter breaker. */
  breakerState(): 'closed' | 'open';
}
