import type { StoreBreaker } from '../core/limiter/breaker';
import type { GlobalLimitState, GlobalWaiter } from '../core/limiter/global';
import type { ClaimTarget, SettleHolder } from '../core/limiter/plan';
import type { LimiterSnapshot, LimiterView } from '../core/limiter/snapshot';
import type {
  DecideInput,
  Decision,
  DeniedDecision,
  Limiter,
  LimitOverride,
  ResetScope,
  Tier,
  TokenReservation,
  TokenUsage,
  UserStatus,
} from '../core/limiter/types';
import type { ActiveRequest, WaitingRequest } from '../core/queue/request';
import type {
  ClaimOutcome,
  EnqueueAsk,
  EnqueueOutcome,
  SettleOutcome,
  SweepLimiterPort,
} from '../services/ports';
import { AdminOps } from './limiter/admin-ops';
import { Admission } from './limiter/admission';
import { LimiterContext } from './limiter/context';
import type { GlobalCounters } from './limiter/global-counters';
import type { DynamoLimiterOptions } from './limiter/options';
import { QueueOps } from './limiter/queue-ops';
import { Settles } from './limiter/settle';
import type { TopBy, UserUsageToday } from './limiter/usage-index';

export {
  LimiterBusyError,
  LimiterOutcomeUnknownError,
  LimiterStoreError,
  LimiterUnavailableError,
} from './limiter/errors';
export type { DynamoLimiterOptions } from './limiter/options';

type Released = { readonly released: readonly { readonly userId: string; readonly requestId: string }[] };
type PolicyChange = { before: LimiterSnapshot; after: LimiterSnapshot };

/**
 * The limiter on DynamoDB: every limit of a user, and the user's waiting queue, in one item; every
 * decision one conditional UpdateItem (see docs/limiter.md). Plans are made from the last item this
 * instance saw for the user; a failed condition returns the item as it is, and the next plan is
 * made from that.
 *
 * Faults are never permission (SPEC §2 Bursts, §6): contention, throttling or slowness on one
 * user's item are retried a bounded number of times and then refused as `busy`; only when the
 * breaker says the store is down for everyone does the fail policy apply.
 *
 * A facade: decisions in {@link Admission}, settles and claims in {@link Settles}, the waiting list
 * and the global line in {@link QueueOps}, status and the admin's writes in {@link AdminOps}; the
 * decisions they build and the amounts they settle come from core/limiter/decide.
 */
export class DynamoLimiter implements Limiter, SweepLimiterPort {
  readonly breaker: StoreBreaker;
  /** The global counters, when the stack has global limits. */
  readonly global?: GlobalCounters;
  private readonly admission: Admission;
  private readonly settles: Settles;
  private readonly queue: QueueOps;
  private readonly admin: AdminOps;

  constructor(options: DynamoLimiterOptions) {
    const ctx = new LimiterContext(options);
    this.breaker = ctx.breaker;
    this.global = ctx.global;
    this.queue = new QueueOps(ctx);
    this.admission = new Admission(ctx, this.queue);
    this.settles = new Settles(ctx);
    this.admin = new AdminOps(ctx);
  }

  decide(input: DecideInput, nowMs: number): Promise<Decision> {
    return this.admission.decide(input, nowMs);
  }

  decideOrQueue(
    input: DecideInput,
    nowMs: number,
    queueIfDenied: (denied: DeniedDecision) => EnqueueAsk | undefined,
  ): Promise<{ readonly decision: Decision; readonly slot?: EnqueueOutcome }> {
    return this.admission.decideOrQueue(input, nowMs, queueIfDenied);
  }

  reconcile(
    reservation: TokenReservation,
    usage: TokenUsage,
    nowMs: number,
    options: { readonly endsActive?: boolean; readonly holder?: SettleHolder } = {},
  ): Promise<SettleOutcome> {
    return this.settles.reconcile(reservation, usage, nowMs, options);
  }

  claim(userId: string, requestId: string, claim: string, target: ClaimTarget): Promise<ClaimOutcome> {
    return this.settles.claim(userId, requestId, claim, target);
  }

  view(
    userId: string,
    claimTier: Tier | undefined,
    nowMs: number,
    options?: { readonly fresh?: boolean },
  ): Promise<LimiterView> {
    return this.admin.view(userId, claimTier, nowMs, options);
  }

  status(userId: string, claimTier: Tier | undefined, nowMs: number): Promise<UserStatus> {
    return this.admin.status(userId, claimTier, nowMs);
  }

  enqueue(
    request: WaitingRequest & { readonly userId: string },
    maxQueued: number,
    nowMs: number,
  ): Promise<EnqueueOutcome> {
    return this.queue.enqueue(request, maxQueued, nowMs);
  }

  removeWaiting(userId: string, requestId: string): Promise<{ removed: boolean; snap: LimiterSnapshot }> {
    return this.queue.removeWaiting(userId, requestId);
  }

  takeOver(
    userId: string,
    active: ActiveRequest,
    leaseUntilEpochMs: number,
    options: { readonly endsLease?: boolean } = {},
  ): Promise<{ ok: boolean; snap: LimiterSnapshot; full?: boolean }> {
    return this.queue.takeOver(userId, active, leaseUntilEpochMs, options);
  }

  endStuckActive(userId: string): Promise<string | undefined> {
    return this.queue.endStuckActive(userId);
  }

  park(userId: string, receiptHandle: string): Promise<{ ok: boolean }> {
    return this.queue.park(userId, receiptHandle);
  }

  joinGlobalLine(waiter: GlobalWaiter): Promise<void> {
    return this.queue.joinGlobalLine(waiter);
  }

  leaveGlobalLine(userId: string): Promise<void> {
    return this.queue.leaveGlobalLine(userId);
  }

  pruneGlobalLine(nowMs: number): Promise<{ readonly removed: readonly string[] }> {
    return this.queue.pruneGlobalLine(nowMs);
  }

  releaseOrphanedGlobalShares(nowMs: number): Promise<Released> {
    return this.queue.releaseOrphanedGlobalShares(nowMs);
  }

  top(
    by: TopBy,
    limit: number,
    nowMs: number,
  ): Promise<{ users: UserUsageToday[]; global?: GlobalLimitState[] }> {
    return this.admin.top(by, limit, nowMs);
  }

  reset(userId: string, scope: ResetScope, nowMs: number): Promise<void> {
    return this.admin.reset(userId, scope, nowMs);
  }

  setTier(userId: string, tier: Tier | null): Promise<PolicyChange> {
    return this.admin.setTier(userId, tier);
  }

  setOverride(userId: string, override: LimitOverride): Promise<PolicyChange> {
    return this.admin.setOverride(userId, override);
  }

  clearOverride(userId: string): Promise<PolicyChange> {
    return this.admin.clearOverride(userId);
  }
}
