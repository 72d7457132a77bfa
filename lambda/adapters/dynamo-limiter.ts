import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { type BreakerState, StoreBreaker } from '../core/limiter/breaker';
import { dayNumber, evaluate } from '../core/limiter/evaluate';
import {
  type GlobalLimit,
  type GlobalLimitState,
  type GlobalLimits,
  type GlobalReservation,
  type GlobalWaiter,
  hasGlobalLimits,
  mayGoNow,
  priorityOrder,
  waitBehindMs,
} from '../core/limiter/global';
import { HISTORY_DAYS, usageHistory } from '../core/limiter/history';
import { LIMIT_KINDS, resetAttributes } from '../core/limiter/kinds';
import {
  type AdmissionPlan,
  type ClaimTarget,
  ExpressionWriter,
  holdsRequest,
  isStuckActive,
  POLICY_TTL_SECONDS,
  planAdmission,
  planClaim,
  planEndStuckActive,
  planEnqueue,
  planPark,
  planRemoveWaiting,
  planSettle,
  planTakeover,
  type SettleHolder,
  usageDayKey,
} from '../core/limiter/plan';
import { effectivePolicy, modelFor, type TierLimits } from '../core/limiter/policy';
import {
  EMPTY_SNAPSHOT,
  type LimiterSnapshot,
  type LimiterView,
  type PendingReservation,
} from '../core/limiter/snapshot';
import type {
  AllowedDecision,
  DecideInput,
  Decision,
  DeniedDecision,
  Limiter,
  LimitOverride,
  LimitPolicy,
  LimitState,
  ResetScope,
  Tier,
  TokenReservation,
  TokenUsage,
  UserStatus,
} from '../core/limiter/types';
import { DAY_MS, monthNumber } from '../core/limiter/windows';
import { costMicroUsd, ECHO_MODEL, type ModelSpec, usdToMicroUsd } from '../core/models';
import type { ActiveRequest, WaitingRequest } from '../core/queue/request';
import { FUNCTIONS } from '../core/resources';
import type {
  ClaimOutcome,
  EnqueueAsk,
  EnqueueOutcome,
  SettleOutcome,
  SweepLimiterPort,
} from '../services/ports';
import {
  LimiterBusyError,
  LimiterOutcomeUnknownError,
  LimiterStoreError,
  LimiterUnavailableError,
  StoreFaultError,
} from './limiter/errors';
import { GlobalCounters, type GlobalHold } from './limiter/global-counters';
import { type TopBy, topUsersToday, type UserUsageToday } from './limiter/usage-index';
import { describeError, MAX_TRANSIENT_RETRIES, UNKNOWN, UserItems } from './limiter/user-items';

/** What one decision carries across its rounds and retries. */
interface DecideState extends GlobalHold {
  ambiguousWrite: boolean;
  /**
   * A write of this decision was cut by a connection reset: taken as never landed for busy and the
   * breaker (see `mayHaveLanded`), but the store may have applied it before the reset — so a later
   * round that finds this request's marker takes it as this decision's admission, never as a
   * duplicate (a client told "refused" while counted).
   */
  resetWrite?: boolean;
  /**
   * This decision has itself read the item, or had it returned by a write: the belief is then the
   * item as it was after the frame arrived, whatever the clock says (equal milliseconds tell
   * nothing of order).
   */
  sawItem?: boolean;
  /**
   * Taken from a global shard in this decision, not yet made permanent by the user's write
   * (`globalUnsure`: maybe taken — its write got no answer and the shard was not read since).
   */
  globalHeld?: GlobalReservation;
  /** The user was among those waiting for global capacity (unregistered once admitted). */
  waitedForGlobal?: boolean;
  /** How full the shard's share of the global daily cost is after this admission (%). */
  globalCostPercent?: number;
  /** The last try failed at a global item (a shard or the line), not at the user's own item. */
  globalFailed?: boolean;
}

export {
  LimiterBusyError,
  LimiterOutcomeUnknownError,
  LimiterStoreError,
  LimiterUnavailableError,
} from './limiter/errors';

export interface DynamoLimiterOptions {
  readonly client: DynamoDBClient;
  readonly tableName: string;
  readonly tiers: TierLimits;
  /** What a decision does while the store is down for everyone (breaker open). @default 'open' */
  readonly failPolicy?: 'open' | 'closed';
  /** Per-call timeout of the limiter's DynamoDB calls. @default 2000 */
  readonly timeoutMs?: number;
  /** Called when a decision fails open (WARN log with the cause, `LimiterFailOpen` metric). */
  readonly onFailOpen?: (cause: string) => void;
  /** The models the stack offers, with prices. @default the echo model */
  readonly models?: readonly ModelSpec[];
  /** Called when giving back to a global shard failed (logs). */
  readonly onGlobalError?: (operation: string, cause: string) => void;
  /** Called when the breaker opens or closes (logs). */
  readonly onBreakerChange?: (state: BreakerState, detail: { readonly cause?: string }) => void;
  /** The breaker's silence before it opens. @default 3000 */
  readonly breakerSilenceMs?: number;
  /**
   * How long a direct request holds its in-flight slot if its runner never settles: the reply
   * runner's Timeout and a margin (a replayed request's lease is the processor's). The runner
   * never answers past it. @default (reply runner Timeout + 60 s)
   */
  readonly inFlightLeaseMs?: number;
  /** Stack-wide limits, sharded (SPEC §2 v2 "Global limits"). @default none */
  readonly global?: GlobalLimits;
  /**
   * Priority when a global limit binds: a waiting request this close to its deadline goes before
   * every tier. @default 60_000
   */
  readonly priorityUrgentMs?: number;
  /** How long an instance trusts its view of who waits for global capacity. @default 1000 */
  readonly globalWaitersTtlMs?: number;
  /** Users whose last known item is kept for planning. @default 10_000 */
  readonly cacheSize?: number;
  readonly clock?: () => number;
}

/** Rounds of plan-write-fail per operation: each failed condition brings the item as it is. */
const MAX_CONTENTION_ROUNDS = 8;

/** What a busy user's refusal tells the client to wait. */
const BUSY_RETRY_AFTER_MS = 1000;

const userKey = (userId: string) => `user#${userId}`;
const userIdOf = (key: string) => key.slice('user#'.length);

/** The marker a reservation left, as the reservation itself describes it. */
function pendingOf(reservation: TokenReservation): PendingReservation {
  return {
    day: reservation.dayNumber,
    month: monthNumber(reservation.dayNumber * DAY_MS),
    inputTokens: reservation.inputTokens,
    outputAllowance: reservation.outputAllowance,
    tokenEpoch: reservation.tokenEpoch ?? 0,
    costEpoch: reservation.costEpoch ?? 0,
    costMicroUsd: reservation.reservedCostMicroUsd ?? 0,
  };
}

const isCostLimit = (limit: string | undefined) => limit === 'dailyCostUsd' || limit === 'monthlyCostUsd';

/**
 * The limiter on DynamoDB: every limit of a user, and the user's waiting queue, in one item; every
 * decision one conditional UpdateItem (see docs/limiter.md). Plans are made from the last item this
 * instance saw for the user; a failed condition returns the item as it is, and the next plan is
 * made from that.
 *
 * Faults are never permission (SPEC §2 Bursts, §6): contention, throttling or slowness on one
 * user's item are retried a bounded number of times and then refused as `busy`; only when the
 * breaker says the store is down for everyone does the fail policy apply.
 */
export class DynamoLimiter implements Limiter, SweepLimiterPort {
  private readonly tiers: TierLimits;
  private readonly failPolicy: 'open' | 'closed';
  private readonly onFailOpen?: (cause: string) => void;
  private readonly items: UserItems;
  private readonly models: readonly ModelSpec[];
  private readonly inFlightLeaseMs: number;
  private readonly client: DynamoDBClient;
  private readonly tableName: string;
  /** The global counters, when the stack has global limits. */
  readonly global?: GlobalCounters;
  private readonly priorityUrgentMs: number;
  private readonly onGlobalError?: (operation: string, cause: string) => void;
  /**
   * Items that stayed busy through every retry: until when, and the last frame (by arrival) that
   * was already waiting behind that decision. Only those frames are refused without a call.
   */
  private readonly busyUntil = new Map<
    string,
    { readonly untilMs: number; readonly throughArrival: number }
  >();
  /** Frames of this instance numbered as they arrive (decide / decideOrQueue). */
  private arrivals = 0;
  /**
   * Settles of this instance whose write got no answer, by user key and request id, with the
   * wake-up each took out of the item: a later call for the same request (the runner tries the
   * settle again) that finds the marker gone knows the write landed, and still releases it.
   */
  private readonly lostSettles = new Map<string, { readonly wakeUp?: string }>();
  readonly breaker: StoreBreaker;

  constructor(options: DynamoLimiterOptions) {
    this.tiers = options.tiers;
    this.failPolicy = options.failPolicy ?? 'open';
    this.onFailOpen = options.onFailOpen;
    this.models = options.models ?? [ECHO_MODEL];
    this.client = options.client;
    this.tableName = options.tableName;
    this.inFlightLeaseMs = options.inFlightLeaseMs ?? (FUNCTIONS.reply.timeoutSeconds + 60) * 1000;
    this.breaker = new StoreBreaker({
      silenceMs: options.breakerSilenceMs,
      clock: options.clock,
      onChange: options.onBreakerChange,
    });
    this.items = new UserItems({
      client: options.client,
      tableName: options.tableName,
      breaker: this.breaker,
      timeoutMs: options.timeoutMs,
      cacheSize: options.cacheSize,
      clock: options.clock,
    });
    this.priorityUrgentMs = options.priorityUrgentMs ?? 60_000;
    this.onGlobalError = options.onGlobalError;
    if (hasGlobalLimits(options.global)) {
      this.global = new GlobalCounters(
        this.items,
        options.client,
        options.tableName,
        options.global,
        options.globalWaitersTtlMs,
        options.onGlobalError,
      );
    }
  }

  async decide(input: DecideInput, nowMs: number): Promise<Decision> {
    const key = userKey(input.userId);
    const arrivedAtMs = Math.min(this.items.clock(), input.seenSinceMs ?? Number.POSITIVE_INFINITY);
    const arrival = ++this.arrivals;
    return this.items.lane(key, () => this.decideInLane(key, input, nowMs, arrivedAtMs, arrival));
  }

  /**
   * Decides a direct request and, if it is refused and `queueIfDenied` says it may wait, puts it at
   * the end of the user's waiting list — both in the user's lane, so the queue a refusal sees is
   * the one the previous frame left, and a burst over a full queue costs no write at all.
   */
  async decideOrQueue(
    input: DecideInput,
    nowMs: number,
    queueIfDenied: (denied: DeniedDecision) => EnqueueAsk | undefined,
  ): Promise<{ readonly decision: Decision; readonly slot?: EnqueueOutcome }> {
    const key = userKey(input.userId);
    const arrivedAtMs = this.items.clock();
    const arrival = ++this.arrivals;
    return this.items.lane(key, async () => {
      const decision = await this.decideInLane(key, input, nowMs, arrivedAtMs, arrival);
      if (decision.allowed) return { decision };
      const ask = queueIfDenied(decision);
      if (!ask) return { decision };
      try {
        return { decision, slot: await this.enqueueInLane(key, ask.request, ask.maxQueued, nowMs) };
      } catch (err) {
        if (err instanceof LimiterBusyError || err instanceof LimiterUnavailableError) {
          return { decision, slot: { kind: 'busy' } };
        }
        throw err;
      }
    });
  }

  private async decideInLane(
    key: string,
    input: DecideInput,
    nowMs: number,
    arrivedAtMs: number,
    arrival: number,
  ): Promise<Decision> {
    const state: DecideState = { ambiguousWrite: false };
    const done = await this.decideHolding(key, input, nowMs, arrivedAtMs, arrival, state).then(
      (decision) => ({ decision }),
      (error: unknown) => ({ error }),
    );
    // Taken from a global shard and then not admitted by the user's own write: given back whole
    // (its message too), so a request refused after all is charged nothing anywhere. A shard that
    // does not answer the give-back may still hold the share: then the outcome is not known, and
    // the client must not be told that nothing was counted (the share ends with its lease).
    if (state.globalHeld && !(await this.undoGlobal(input.requestId, state.globalHeld))) {
      throw new LimiterOutcomeUnknownError({ cause: 'error' in done ? done.error : undefined });
    }
    if ('error' in done) throw done.error;
    return done.decision;
  }

  private async decideHolding(
    key: string,
    input: DecideInput,
    nowMs: number,
    arrivedAtMs: number,
    arrival: number,
    state: DecideState,
  ): Promise<Decision> {
    const isReplay = input.queue?.mode === 'replay';
    // An item found busy stays so for the retryAfter its refusal told, for the frames that were
    // already behind it in the lane: they are refused the same way without piling more calls onto
    // it. A frame that arrives after that verdict asks the store itself, once, without retries
    // (SPEC §6: "busy" only for an item that is contended, throttled or slow now, never from a
    // memory of an earlier fault; one call is all a frame spends on an item just found busy).
    const marked = isReplay ? undefined : this.busyUntil.get(key);
    const stillBusy = marked !== undefined && marked.untilMs > this.items.clock();
    if (stillBusy && arrival <= marked.throughArrival) return this.busy(input, nowMs);
    try {
      const decision = await this.items.withRetries(
        () => this.decideOnStore(key, input, nowMs, arrivedAtMs, state),
        stillBusy ? 0 : MAX_TRANSIENT_RETRIES,
      );
      if (decision.allowed) state.globalHeld = undefined;
      return decision;
    } catch (err) {
      // A write that got no answer may have landed: "busy, nothing counted" only if it did not (a
      // replay that landed is handed off by this delivery, not after its lease).
      if (err instanceof LimiterBusyError && state.ambiguousWrite) {
        return await this.resolveAmbiguous(key, input, nowMs, state, err);
      }
      // A replay must leave the waiting list in the same write that admits it, so it never
      // fails open or closed: the processor tries again later.
      if (isReplay) throw err;
      if (err instanceof LimiterUnavailableError) return this.failed(input, err, nowMs);
      if (err instanceof LimiterBusyError) {
        // A throttled shard is not the user's item: the user's next frame tries again.
        if (!state.globalFailed) this.markBusy(key);
        return this.busy(input, nowMs);
      }
      throw err;
    }
  }

  /**
   * Every retry ran out after a write whose answer was lost: one more read of the item says whether
   * that write landed (its marker is there: the admission it made, counted once, is the decision)
   * or not (then "busy" is the truth). No answer to the read either: the outcome is unknown, and
   * the decision throws rather than tell the client that nothing was counted.
   */
  private async resolveAmbiguous(
    key: string,
    input: DecideInput,
    nowMs: number,
    state: DecideState,
    busy: LimiterBusyError,
  ): Promise<Decision> {
    let snap: LimiterSnapshot;
    try {
      // One look: the retries already spent the operation's budget of waiting.
      snap = await this.items.read(key);
    } catch (err) {
      // No answer, throttled, or the breaker open: the store could not say.
      if (err instanceof LimiterStoreError) {
        // The store is down for everyone (the breaker opened, on this read or before it): then the
        // fail policy decides, as for every decision while it is open (SPEC §6) — fail open admits
        // uncounted (logged and metered), fail closed refuses as unavailable. A replay neither.
        if (this.breaker.state === 'open' && input.queue?.mode !== 'replay') {
          return this.failed(input, err, nowMs);
        }
        // Frames behind it in the lane are refused as busy without a call (for them that is true).
        this.markBusy(key);
        throw new LimiterOutcomeUnknownError({ cause: err });
      }
      throw err;
    }
    const policy = this.policyOf(snap, input.claimTier, nowMs);
    const pending = snap.reservations[input.requestId];
    const model =
      this.models.find((m) => m.id === pending?.model) ??
      modelFor(policy, this.models, input.model) ??
      ECHO_MODEL;
    const evaluation = evaluate(policy, snap, this.askOn(input, model), nowMs);
    const landed = this.landedAdmission(input, snap, evaluation);
    if (!landed) {
      if (input.queue?.mode === 'replay') throw busy;
      this.markBusy(key);
      return this.busy(input, nowMs);
    }
    const served = { model: model.id, price: model };
    const decision = this.allowed(input, snap, policy, landed, nowMs, served, state.globalHeld);
    state.globalHeld = undefined;
    return decision;
  }

  /** Gives a share back whole; false when its shard did not answer (it may still hold it). */
  private async undoGlobal(requestId: string, held: GlobalReservation): Promise<boolean> {
    if (!this.global) return true;
    return this.global
      .release(requestId, held, { tokens: held.tokens, costMicroUsd: held.costMicroUsd }, true)
      .then(
        () => true,
        (err) => {
          this.onGlobalError?.('undo', describeError(err));
          return false;
        },
      );
  }

  private rememberLostSettle(lostKey: string, lost: { readonly wakeUp?: string }): void {
    this.lostSettles.delete(lostKey);
    this.lostSettles.set(lostKey, lost);
    // Bounded: the oldest go first (their runners have long given up).
    if (this.lostSettles.size > 1000) this.lostSettles.delete(this.lostSettles.keys().next().value!);
  }

  private markBusy(key: string): void {
    this.busyUntil.set(key, {
      untilMs: this.items.clock() + BUSY_RETRY_AFTER_MS,
      throughArrival: this.arrivals,
    });
    if (this.busyUntil.size > 1000) {
      const now = this.items.clock();
      for (const [k, { untilMs }] of this.busyUntil) if (untilMs <= now) this.busyUntil.delete(k);
    }
  }

  private async decideOnStore(
    key: string,
    input: DecideInput,
    nowMs: number,
    arrivedAtMs: number,
    state: DecideState,
  ): Promise<Decision> {
    const queue = input.queue ?? { mode: 'direct' as const };
    const leaseUntilEpochMs =
      queue.mode === 'replay' ? queue.leaseUntilEpochMs : nowMs + this.inFlightLeaseMs;
    for (let round = 0; round < MAX_CONTENTION_ROUNDS; round++) {
      const belief = this.items.belief(key) ?? UNKNOWN;
      const policy = this.policyOf(belief.snap, input.claimTier, nowMs);
      // The model: the one the request names, else the tier's default; one the tier may not use is
      // refused (INVALID_REQUEST), and nothing is counted.
      const chosen = modelFor(policy, this.models, input.model);
      if (!chosen) return this.modelRefused(input, belief.snap, policy, nowMs);
      const plan = (model: ModelSpec) =>
        planAdmission({
          policy,
          belief: belief.snap,
          ask: this.askOn(input, model),
          requestId: input.requestId,
          queue,
          leaseUntilEpochMs,
          usageKey: usageDayKey(input.userId, nowMs),
          sweepUserId: input.userId,
          nowMs,
        });
      let model = chosen;
      let planned = plan(model);
      // Soft landing: a spent cost budget lets the tier's cheaper fallback model answer instead.
      const fallback = policy.fallbackModel
        ? this.models.find((m) => m.id === policy.fallbackModel)
        : undefined;
      if (
        planned.kind === 'reject' &&
        fallback &&
        fallback.id !== chosen.id &&
        isCostLimit(planned.evaluation.blocking?.limit)
      ) {
        const landed = plan(fallback);
        if (landed.kind === 'write') {
          model = fallback;
          planned = landed;
        }
      }
      const served = {
        model: model.id,
        fallbackFrom: model.id === chosen.id ? undefined : chosen.id,
        price: model,
      };
      if (planned.kind === 'write') {
        if (this.global) {
          state.globalFailed = true;
          const refused = await this.takeGlobal(
            input,
            planned,
            model,
            belief.snap,
            policy,
            nowMs,
            arrivedAtMs,
            state,
          );
          state.globalFailed = false;
          if (refused) return refused;
        }
        let result: Awaited<ReturnType<UserItems['write']>>;
        try {
          result = await this.items.write(key, planned.plan);
        } catch (err) {
          // No answer: the write may or may not have landed. Its marker will tell (below).
          if (err instanceof StoreFaultError) {
            if (err.mayHaveLanded) state.ambiguousWrite = true;
            else state.resetWrite = true;
          }
          throw err;
        }
        state.sawItem = true;
        if (result.ok) {
          const allowed = {
            ...this.allowed(input, result.snap, policy, planned, nowMs, served, state.globalHeld),
            ...(state.globalCostPercent !== undefined ? { globalCostPercent: state.globalCostPercent } : {}),
          };
          if (state.waitedForGlobal) {
            // Out of the line: its turn came. A line that does not answer now prunes the entry
            // later (it is overdue within WAITER_STALE_MS of the waiter's schedule).
            await this.global
              ?.unregister(input.userId, nowMs, this.priorityUrgentMs)
              .catch((err) => this.onGlobalError?.('leave line', describeError(err)));
          }
          return allowed;
        }
        continue;
      }
      if (planned.kind === 'already-admitted')
        return this.allowed(input, belief.snap, policy, planned, nowMs, served);
      if (state.ambiguousWrite || state.resetWrite) {
        const landed = this.landedAdmission(input, belief.snap, planned.evaluation);
        if (landed) return this.allowed(input, belief.snap, policy, landed, nowMs, served, state.globalHeld);
      }
      // A refusal (a limit, or a duplicate id: SPEC §3 lets an id be reused once its request ended)
      // is decided only from the item as it was after this frame arrived: then the decision is the
      // one the store would have made for it at that moment. That is an item this decision read or
      // had returned by a write, or one seen by a call sent after the arrival — strictly after: a
      // call sent in the same millisecond may have been sent before (clocks tick coarsely), and an
      // item the caller has seen (`seenSinceMs`) is as new as the caller's own view. An older
      // belief is confirmed by a read first (one call).
      const fresh =
        state.sawItem ||
        belief.observedAtMs > arrivedAtMs ||
        (input.seenSinceMs !== undefined && belief.observedAtMs >= input.seenSinceMs);
      if (fresh) return this.denied(input, planned, belief.snap, policy, nowMs);
      await this.items.read(key);
      state.sawItem = true;
    }
    throw new LimiterBusyError({ cause: new LimiterStoreError('contention outlasted every round') });
  }

  /**
   * After a write whose answer was lost (issue 20, finding 7): did it land? The item tells — this
   * request's reservation marker is there (direct: the marker; replay: the marker and the request
   * made the user's active one, which only this admission writes). Then that write is this
   * decision, counted once, and the client is told so, never "busy, nothing counted".
   */
  private landedAdmission(
    input: DecideInput,
    snap: LimiterSnapshot,
    evaluation: Extract<AdmissionPlan, { kind: 'already-admitted' }>['evaluation'],
  ): Extract<AdmissionPlan, { kind: 'already-admitted' }> | undefined {
    const pending = snap.reservations[input.requestId];
    if (!pending) return undefined;
    if (input.queue?.mode === 'replay' && snap.active?.requestId !== input.requestId) return undefined;
    return {
      kind: 'already-admitted',
      inputTokens: pending.inputTokens,
      outputAllowance: pending.outputAllowance,
      day: pending.day,
      tokenEpoch: pending.tokenEpoch ?? 0,
      costEpoch: pending.costEpoch ?? 0,
      evaluation,
    };
  }

  /**
   * The global part of an admission the user's limits allow (SPEC §2 v2): first, priority — if
   * someone is waiting for global capacity who goes before this request (a higher tier, an older
   * request of the same tier, or one near its deadline), it waits too; then one shard write. A
   * reservation taken in an earlier round of this decision is kept if it still covers this plan.
   * Returns the refusal, or undefined when the request holds its global share.
   */
  private async takeGlobal(
    input: DecideInput,
    planned: Extract<AdmissionPlan, { kind: 'write' }>,
    model: ModelSpec,
    snap: LimiterSnapshot,
    policy: LimitPolicy,
    nowMs: number,
    arrivedAtMs: number,
    state: DecideState,
  ): Promise<DeniedDecision | undefined> {
    const global = this.global!;
    const reservation = planned.evaluation.reservation!;
    const weight = model.messageWeight ?? 1;
    if (state.globalHeld && state.globalUnsure) {
      // An earlier try of this decision got no answer from that shard: its entry for the request
      // says whether the share was taken.
      if (!(await global.holds(input.requestId, state.globalHeld.shard))) state.globalHeld = undefined;
      state.globalUnsure = false;
    }
    const held = state.globalHeld;
    if (held) {
      if (
        held.tokens >= reservation.reservedTokens &&
        held.costMicroUsd >= reservation.reservedCostMicroUsd
      ) {
        return undefined;
      }
      // Kept as held while its shard does not answer the give-back (see decideInLane).
      if (!(await this.undoGlobal(input.requestId, held))) throw new LimiterOutcomeUnknownError();
      state.globalHeld = undefined;
    }
    const tier = this.tierOf(snap, input.claimTier);
    const queue = input.queue;
    const replay = queue?.mode === 'replay' ? queue : undefined;
    const me: GlobalWaiter = {
      userId: input.userId,
      tier,
      enqueuedAtEpochMs: replay?.enqueuedAtEpochMs ?? nowMs,
      deadlineEpochMs: replay?.deadlineEpochMs ?? Number.POSITIVE_INFINITY,
      seenAtEpochMs: nowMs,
      limit: 'requestsInFlight',
    };
    // A queued request reads who waits (its turn decides who goes first); a direct one trusts this
    // instance's view of the last second (it only decides whether to queue behind them).
    const waiters = await global.waiters({ fresh: replay !== undefined, nowMs });
    state.waitedForGlobal = waiters.some((w) => w.userId === input.userId);
    if (!mayGoNow(me, waiters, nowMs, this.priorityUrgentMs)) {
      // Behind them until the first in line may go (waitBehindMs: a second, or until its wake-up at
      // a window's start): a request that would wait past MAX_QUEUE_WAIT for it is refused now, not
      // queued to expire.
      const first = priorityOrder(waiters, nowMs, this.priorityUrgentMs)[0]!;
      const retryAfterMs = waitBehindMs(first, nowMs);
      return this.globalDenied(input, snap, policy, nowMs, first.limit, retryAfterMs, planned);
    }
    const admission = await global.admit(
      {
        requestId: input.requestId,
        userId: input.userId,
        tokens: reservation.reservedTokens,
        costMicroUsd: reservation.reservedCostMicroUsd,
        weight,
        leaseUntilEpochMs: replay?.leaseUntilEpochMs ?? nowMs + this.inFlightLeaseMs,
      },
      nowMs,
      arrivedAtMs,
      state,
    );
    if (!admission.ok) {
      return this.globalDenied(input, snap, policy, nowMs, admission.limit, admission.retryAfterMs, planned);
    }
    state.globalHeld = admission.taken;
    state.globalCostPercent = admission.costPercent;
    return undefined;
  }

  private globalDenied(
    input: DecideInput,
    snap: LimiterSnapshot,
    policy: LimitPolicy,
    nowMs: number,
    limit: GlobalLimit,
    retryAfterMs: number,
    planned: Extract<AdmissionPlan, { kind: 'write' }>,
  ): DeniedDecision {
    return {
      allowed: false,
      tier: this.tierOf(snap, input.claimTier),
      policy,
      limit: `global.${limit}`,
      retryAfterMs,
      resetAtEpochMs: nowMs + retryAfterMs,
      limits: planned.evaluation.limits,
      queued: snap.waiting.length,
    };
  }

  private denied(
    input: DecideInput,
    planned: Exclude<AdmissionPlan, { kind: 'write' | 'already-admitted' }>,
    snap: LimiterSnapshot,
    policy: LimitPolicy,
    nowMs: number,
  ): DeniedDecision {
    const blocking = planned.kind === 'reject' ? planned.evaluation.blocking : undefined;
    const limit: DeniedDecision['limit'] =
      planned.kind === 'duplicate' ? 'duplicate' : (blocking?.limit ?? 'queue');
    return {
      allowed: false,
      tier: this.tierOf(snap, input.claimTier),
      policy,
      limit,
      retryAfterMs: blocking?.retryAfterMs ?? 0,
      resetAtEpochMs: blocking?.resetAtEpochMs ?? nowMs,
      limits: planned.evaluation.limits,
      queued: snap.waiting.length,
    };
  }

  private allowed(
    input: DecideInput,
    snap: LimiterSnapshot,
    policy: LimitPolicy,
    planned: Extract<AdmissionPlan, { kind: 'write' | 'already-admitted' }>,
    nowMs: number,
    served: { readonly model: string; readonly fallbackFrom?: string; readonly price: ModelSpec },
    global?: GlobalReservation,
  ): AllowedDecision {
    const reservation =
      planned.kind === 'write'
        ? {
            ...planned.evaluation.reservation!,
            dayNumber: planned.day,
            tokenEpoch: snap.te,
            costEpoch: snap.ce,
            // Where this admission left the tokens-per-minute bucket: bounds its settle's refund.
            ...(planned.movesBucket && snap.ttat !== undefined ? { bucketAfterEpochMs: snap.ttat } : {}),
          }
        : {
            inputTokens: planned.inputTokens,
            outputAllowance: planned.outputAllowance,
            reservedTokens: planned.inputTokens + planned.outputAllowance,
            reservedCostMicroUsd: snap.reservations[input.requestId]?.costMicroUsd ?? 0,
            dayNumber: planned.day,
            tokenEpoch: planned.tokenEpoch,
            costEpoch: planned.costEpoch,
          };
    return {
      allowed: true,
      tier: this.tierOf(snap, input.claimTier),
      policy,
      waiting: snap.waiting,
      reservation: {
        userId: input.userId,
        requestId: input.requestId,
        claimTier: input.claimTier,
        price: {
          inputUsdPerMillion: served.price.inputUsdPerMillion,
          outputUsdPerMillion: served.price.outputUsdPerMillion,
        },
        ...reservation,
        ...(global ? { global } : {}),
      },
      limits: this.limitsOf(policy, snap, nowMs),
      failedOpen: false,
      inFlightUntilEpochMs: snap.inFlight?.[input.requestId],
      model: served.model,
      fallbackFrom: served.fallbackFrom,
      shadowExceeded: planned.evaluation.shadowExceeded.map((b) => b.limit),
      warnings: planned.kind === 'write' ? planned.warnings : [],
    };
  }

  /** The request, as the limits see it on this model: its price, and its maximum output. */
  private askOn(input: DecideInput, model: ModelSpec): DecideInput {
    return {
      ...input,
      model: model.id,
      price: model,
      messageWeight: model.messageWeight,
      modelMaxOutputTokens: Math.min(
        input.modelMaxOutputTokens ?? Number.POSITIVE_INFINITY,
        model.maxOutputTokens,
      ),
    };
  }

  private modelRefused(
    input: DecideInput,
    snap: LimiterSnapshot,
    policy: LimitPolicy,
    nowMs: number,
  ): DeniedDecision {
    return {
      allowed: false,
      tier: this.tierOf(snap, input.claimTier),
      policy,
      limit: 'model',
      retryAfterMs: 0,
      resetAtEpochMs: nowMs,
      limits: this.limitsOf(policy, snap, nowMs),
      queued: snap.waiting.length,
    };
  }

  private busy(input: DecideInput, nowMs: number): DeniedDecision {
    const snap = this.items.belief(userKey(input.userId))?.snap ?? EMPTY_SNAPSHOT;
    const policy = this.policyOf(snap, input.claimTier, nowMs);
    // Spread the retries of a busy burst over the next second or two.
    const retryAfterMs = BUSY_RETRY_AFTER_MS + Math.floor(Math.random() * BUSY_RETRY_AFTER_MS);
    return {
      allowed: false,
      tier: this.tierOf(snap, input.claimTier),
      policy,
      limit: 'busy',
      retryAfterMs,
      resetAtEpochMs: nowMs + retryAfterMs,
      limits: this.limitsOf(policy, snap, nowMs),
      queued: snap.waiting.length,
    };
  }

  private failed(input: DecideInput, err: unknown, nowMs: number): Decision {
    const snap = this.items.belief(userKey(input.userId))?.snap ?? EMPTY_SNAPSHOT;
    const policy = this.policyOf(snap, input.claimTier, nowMs);
    const tier = this.tierOf(snap, input.claimTier);
    if (this.failPolicy === 'closed') {
      return {
        allowed: false,
        tier,
        policy,
        limit: 'unavailable',
        retryAfterMs: 1000,
        resetAtEpochMs: nowMs + 1000,
        limits: [],
        queued: 0,
      };
    }
    const model = modelFor(policy, this.models, input.model);
    if (!model) return this.modelRefused(input, snap, policy, nowMs);
    this.onFailOpen?.(describeError((err as { cause?: unknown }).cause ?? err));
    const outputAllowance = Math.min(input.maxTokens ?? policy.defaultMaxOutputTokens, model.maxOutputTokens);
    return {
      allowed: true,
      tier,
      policy,
      model: model.id,
      waiting: [],
      reservation: {
        userId: input.userId,
        requestId: input.requestId,
        dayNumber: dayNumber(nowMs),
        inputTokens: input.estimatedInputTokens,
        outputAllowance,
        reservedTokens: input.estimatedInputTokens + outputAllowance,
      },
      limits: [],
      failedOpen: true,
    };
  }

  /**
   * Settles a reservation to the actual usage, once per request id: refunds what was reserved and
   * not used, or charges more (never past the budget) when the input estimate was low. For a
   * queued request it also ends it as the user's active request, in the same write.
   */
  async reconcile(
    reservation: TokenReservation,
    usage: TokenUsage,
    nowMs: number,
    options: { readonly endsActive?: boolean; readonly holder?: SettleHolder } = {},
  ): Promise<SettleOutcome> {
    const key = userKey(reservation.userId);
    const inputTokens = Math.max(0, usage.inputTokens);
    const outputTokens = Math.max(0, usage.outputTokens);
    const price = reservation.price ?? { inputUsdPerMillion: 0, outputUsdPerMillion: 0 };
    const actualCost = costMicroUsd(price, inputTokens, outputTokens);
    // A settle write whose answer was lost (issue 20, finding 7): the wake-up it took out of the
    // item, if it landed. The marker tells: gone after such a write, the write landed, and what
    // follows a settle (the shard release, the parked wake-up) must still happen.
    const lostKey = `${key}\n${reservation.requestId}`;
    let lost = this.lostSettles.get(lostKey);
    const outcome = await this.items.lane(key, () =>
      this.items.withRetries(async (): Promise<SettleOutcome> => {
        // Plan from what this instance believes; the write pins it, so a stale belief reads again.
        const known = lost ? undefined : this.items.belief(key)?.snap;
        let snap = known ?? (await this.items.read(key));
        let fresh = known === undefined;
        for (let round = 0; round < MAX_CONTENTION_ROUNDS; round++) {
          // Not in what this instance saw (another instance made it): the reservation says what the
          // marker holds, and the write's condition on the marker decides. Only an item read or
          // returned by the store may say it was settled already.
          const seen = snap.reservations[reservation.requestId];
          const { holder, endsActive = false } = options;
          if (!seen && fresh) {
            if (lost) {
              this.lostSettles.delete(lostKey);
              // Ours landed. Its parked wake-up is released unless the item holds it still.
              const wakeUp =
                lost.wakeUp !== undefined && snap.parkedWakeUp !== lost.wakeUp ? lost.wakeUp : undefined;
              return { applied: true, wakeUp };
            }
            // Settled already, by another attempt (or the sweep): a claim's settle must not speak
            // for the request then.
            const byOther = holder !== undefined && 'claim' in holder;
            return byOther ? { applied: false, notHolder: true } : { applied: false };
          }
          // Another attempt holds the request now (taken over, or claimed by another runner): its
          // settle, not this one, ends it.
          if (fresh && holder && !holdsRequest(snap, reservation.requestId, holder, endsActive)) {
            return { applied: false, notHolder: true };
          }
          const pending = seen ?? pendingOf(reservation);
          const policy = this.policyOf(snap, reservation.claimTier, nowMs);
          // > 0 refund, < 0 charge; charging more than reserved never takes a budget past its limit.
          const tokens = reservation.reservedTokens - inputTokens - outputTokens;
          const cost = (pending.costMicroUsd ?? 0) - actualCost;
          const input = { policy, snap, nowMs, model: price };
          const left = (unit: 'tokens' | 'usd') =>
            Math.min(
              ...LIMIT_KINDS.filter((k) => k.unit === unit).map((k) => {
                const state = k.state(input);
                if (!state) return Number.POSITIVE_INFINITY;
                return unit === 'usd' ? usdToMicroUsd(state.remaining) : state.remaining;
              }),
            );
          const capped = {
            tokens: tokens < 0 ? -Math.max(0, Math.min(-tokens, left('tokens'))) : tokens,
            costMicroUsd: cost < 0 ? -Math.max(0, Math.min(-cost, left('usd'))) : cost,
          };
          let result: Awaited<ReturnType<UserItems['write']>>;
          try {
            result = await this.items.write(
              key,
              planSettle({
                policy,
                belief: snap,
                requestId: reservation.requestId,
                pending,
                delta: capped,
                nowMs,
                endsActive,
                holder,
                bucketAfterEpochMs: reservation.bucketAfterEpochMs,
                // What the sweep gives back of a share whose release never lands: the rest.
                ...(this.global
                  ? { charged: { tokens: inputTokens + outputTokens, costMicroUsd: actualCost } }
                  : {}),
              }),
            );
          } catch (err) {
            // No answer: it may have landed. The next try reads the item to tell. For a claim's
            // own settle even a reset counts: a store cut mid-answer (a reset after the write was
            // applied) must not make the runner take its own landed settle for another attempt's
            // and end without a word (found by test/e2e/faults.test.ts under load).
            if (
              err instanceof StoreFaultError &&
              (err.mayHaveLanded || (options.holder !== undefined && 'claim' in options.holder))
            ) {
              lost = { wakeUp: snap.parkedWakeUp };
              this.rememberLostSettle(lostKey, lost);
            }
            throw err;
          }
          // A wake-up parked until a slot freed was taken out by this write: the caller releases it.
          if (result.ok) {
            this.lostSettles.delete(lostKey);
            return { applied: true, wakeUp: snap.parkedWakeUp };
          }
          snap = result.snap;
          fresh = true;
        }
        throw new LimiterStoreError(`reconcile of ${reservation.requestId} did not settle`);
      }),
    );
    if (!this.global) return outcome;
    // The same request's share of the global counters: its slot, and the unused tokens and cost,
    // back to the shard it was taken from, once the user's settle is done — by this call, or by
    // one whose answer was lost (its retry finds the reservation gone: not "applied" here, but
    // settled). The release is conditioned on the shard's entry for the request, so it gives back
    // once however many settles come; a reservation still pending (not settled) keeps its share.
    if (!outcome.applied && this.items.belief(key)?.snap.reservations[reservation.requestId] !== undefined) {
      return outcome;
    }
    // A reservation rebuilt from the user's item (a taken-over or failed queued request) does not
    // say which shard holds its share: the shards' entries do (one read each, only then).
    // A shard that does not answer (an outage, throttling past the retries) leaves the share held:
    // the outcome says so (`globalUnreleased`), and this instance remembers the settle as landed,
    // so the caller's next reconcile of the request is told the same outcome and gives it back.
    const unreleased = (operation: string) => (err: unknown) => {
      this.onGlobalError?.(operation, describeError(err));
      if (outcome.applied) this.rememberLostSettle(lostKey, { wakeUp: outcome.wakeUp });
      return 'unreleased' as const;
    };
    const global = reservation.global ?? (await this.global.find(reservation).catch(unreleased('find')));
    if (global === 'unreleased') return { ...outcome, globalUnreleased: true };
    if (!global) return outcome;
    const released = await this.global
      .release(
        reservation.requestId,
        global,
        {
          tokens: Math.max(0, global.tokens - inputTokens - outputTokens),
          costMicroUsd: Math.max(0, global.costMicroUsd - actualCost),
        },
        false,
      )
      .catch(unreleased('release'));
    if (released === 'unreleased') return { ...outcome, globalUnreleased: true };
    // Capacity freed: wake whoever is first in line for it (its processor checks its turn).
    const next = await this.global.nextInLine(nowMs, this.priorityUrgentMs).catch(() => undefined);
    return next?.wakeUp ? { ...outcome, globalWakeUp: next.wakeUp } : outcome;
  }

  /**
   * The reply runner's claim on a request before its model runs (see {@link planClaim}): one
   * conditional write. `claimed`: this runner answers it. `taken`: another runner claimed this
   * attempt (a duplicate event; `claim` is theirs). `gone`: the request is no longer this
   * attempt's (settled, refunded, taken over, or its id reused).
   */
  async claim(userId: string, requestId: string, claim: string, target: ClaimTarget): Promise<ClaimOutcome> {
    const key = userKey(userId);
    return this.items.lane(key, () =>
      this.items.withRetries(async () => {
        const result = await this.items.write(key, planClaim(requestId, claim, target));
        if (result.ok) return { kind: 'claimed' };
        const { snap } = result;
        const held =
          target.source === 'queue'
            ? snap.active?.requestId === requestId &&
              snap.active.attempts === target.attempts &&
              snap.active.leaseUntilEpochMs === target.leaseUntilEpochMs
              ? snap.active.claim
              : undefined
            : snap.reservations[requestId]?.claim;
        // Our own claim, landed on an earlier try whose answer was lost.
        if (held === claim) return { kind: 'claimed' };
        return held === undefined ? { kind: 'gone' } : { kind: 'taken', claim: held };
      }),
    );
  }

  /** The user's item, fresh from the store or (`fresh: false`) as last seen here if known. */
  async view(
    userId: string,
    claimTier: Tier | undefined,
    nowMs: number,
    options: { readonly fresh?: boolean } = {},
  ): Promise<LimiterView> {
    const key = userKey(userId);
    const known = options.fresh === false ? this.items.belief(key) : undefined;
    const sentAtMs = this.items.clock();
    const read = known ? undefined : await this.items.withRetries(() => this.items.read(key));
    // The latest of what was read and what this instance saw meanwhile.
    const latest = this.items.belief(key);
    const { snap, observedAtMs } = latest ?? { snap: read ?? EMPTY_SNAPSHOT, observedAtMs: sentAtMs };
    const policy = this.policyOf(snap, claimTier, nowMs);
    return {
      snap,
      tier: this.tierOf(snap, claimTier),
      policy,
      limits: this.limitsOf(policy, snap, nowMs),
      observedAtMs,
    };
  }

  async status(userId: string, claimTier: Tier | undefined, nowMs: number): Promise<UserStatus> {
    const { snap, tier, policy, limits } = await this.view(userId, claimTier, nowMs);
    const override =
      snap.override && (snap.override.expiresAtEpochMs ?? Number.POSITIVE_INFINITY) > nowMs
        ? snap.override
        : undefined;
    // Global totals: one read per shard, only when the stack has global limits.
    const global = this.global ? await this.global.totals(nowMs) : undefined;
    return {
      userId,
      tier,
      policy,
      limits,
      queued: snap.waiting,
      override,
      known: snap.exists,
      history: usageHistory(snap, nowMs, HISTORY_DAYS),
      ...(global ? { global } : {}),
    };
  }

  /** Appends a request to the user's waiting list (cap and duplicates checked in the same write). */
  async enqueue(
    request: WaitingRequest & { readonly userId: string },
    maxQueued: number,
    nowMs: number,
  ): Promise<EnqueueOutcome> {
    const key = userKey(request.userId);
    return this.items.lane(key, () => this.enqueueInLane(key, request, maxQueued, nowMs));
  }

  private async enqueueInLane(
    key: string,
    request: WaitingRequest & { readonly userId?: string },
    maxQueued: number,
    nowMs: number,
  ): Promise<EnqueueOutcome> {
    const { userId: _userId, ...waiting } = request;
    let ambiguousWrite = false;
    try {
      return await this.enqueueWithRetries(key, request, waiting, maxQueued, nowMs, () => {
        ambiguousWrite = true;
      });
    } catch (err) {
      if (!(err instanceof LimiterBusyError) || !ambiguousWrite) throw err;
      // Every retry ran out after a write whose answer was lost: the item says whether the request
      // was queued (then it was, at that position), or not ("busy, nothing was written" is then
      // the truth). Unreadable too: unknown, never told "nothing was written" (issue 20, finding 7).
      const snap = await this.items
        .withRetries(() => this.items.read(key))
        .catch((readErr) => {
          if (readErr instanceof LimiterBusyError || readErr instanceof LimiterUnavailableError) {
            throw new LimiterOutcomeUnknownError({ cause: readErr });
          }
          throw readErr;
        });
      const index = snap.waiting.indexOf(request.requestId);
      if (index >= 0 && snap.queued[request.requestId]) return { kind: 'queued', position: index + 1, snap };
      throw err;
    }
  }

  private enqueueWithRetries(
    key: string,
    request: WaitingRequest,
    waiting: WaitingRequest,
    maxQueued: number,
    nowMs: number,
    onAmbiguousWrite: () => void,
  ): Promise<EnqueueOutcome> {
    let ambiguousWrite = false;
    return this.items.withRetries(async () => {
      for (let round = 0; round < MAX_CONTENTION_ROUNDS; round++) {
        const believed = this.items.belief(key)?.snap;
        const keepsPolicy = (believed?.pv ?? 0) > 0;
        const sweep = { userId: userIdOf(key), believedAfterEpochMs: believed?.sweepAfterEpochMs };
        let result: Awaited<ReturnType<UserItems['write']>>;
        try {
          result = await this.items.write(
            key,
            planEnqueue({ request: waiting, maxQueued, nowMs, keepsPolicy, sweep }),
          );
        } catch (err) {
          // No answer: the write may have landed; the item will tell on the next round.
          if (err instanceof StoreFaultError && err.mayHaveLanded) {
            ambiguousWrite = true;
            onAmbiguousWrite();
          }
          throw err;
        }
        const { snap } = result;
        const index = snap.waiting.indexOf(request.requestId);
        if (result.ok || (ambiguousWrite && index >= 0 && snap.queued[request.requestId])) {
          return { kind: 'queued', position: index + 1, snap };
        }
        if (snap.queued[request.requestId] || snap.reservations[request.requestId])
          return { kind: 'duplicate' };
        if (snap.waiting.length >= maxQueued) return { kind: 'full', queued: snap.waiting.length };
      }
      throw new LimiterBusyError({
        cause: new LimiterStoreError('enqueue contention outlasted every round'),
      });
    });
  }

  /** Takes a waiting request out of the list, with its data (cancel, purge, expiry). */
  async removeWaiting(
    userId: string,
    requestId: string,
  ): Promise<{ removed: boolean; snap: LimiterSnapshot }> {
    const key = userKey(userId);
    return this.items.lane(key, () =>
      this.items.withRetries(async () => {
        let snap = await this.items.read(key);
        for (let round = 0; round < MAX_CONTENTION_ROUNDS; round++) {
          const index = snap.waiting.indexOf(requestId);
          if (index < 0) return { removed: false, snap };
          const result = await this.items.write(key, planRemoveWaiting(requestId, index));
          if (result.ok) return { removed: true, snap: result.snap };
          snap = result.snap;
        }
        throw new LimiterBusyError({
          cause: new LimiterStoreError('removal contention outlasted every round'),
        });
      }),
    );
  }

  /**
   * Takes over the active request of a crashed attempt whose lease lapsed (or, `endsLease`, ends
   * the lease of a hand-off that failed), moving its in-flight slot with the lease.
   */
  async takeOver(
    userId: string,
    active: ActiveRequest,
    leaseUntilEpochMs: number,
    options: { readonly endsLease?: boolean } = {},
  ): Promise<{ ok: boolean; snap: LimiterSnapshot; full?: boolean }> {
    const key = userKey(userId);
    return this.items.lane(key, () =>
      this.items.withRetries(async () => {
        const belief = this.items.belief(key)?.snap ?? (await this.items.read(key));
        const nowMs = this.items.clock();
        const planned = planTakeover({
          active,
          leaseUntilEpochMs,
          belief,
          policy: this.policyOf(belief, belief.queued[active.requestId]?.claimTier, nowMs),
          nowMs,
          endsLease: options.endsLease,
        });
        if ('full' in planned) return { ok: false, snap: belief, full: true };
        return this.items.write(key, planned);
      }),
    );
  }

  /**
   * Ends the user's active request if nothing else can (admin `purge-queue`, `reset`): see
   * {@link planEndStuckActive}. Returns its id, or undefined when there was none to end.
   */
  async endStuckActive(userId: string): Promise<string | undefined> {
    const key = userKey(userId);
    return this.items.lane(key, () =>
      this.items.withRetries(async () => {
        let snap = await this.items.read(key);
        for (let round = 0; round < MAX_CONTENTION_ROUNDS; round++) {
          if (!snap.active || !isStuckActive(snap)) return undefined;
          const result = await this.items.write(key, planEndStuckActive(snap, snap.active));
          if (result.ok) return snap.active.requestId;
          snap = result.snap;
        }
        throw new LimiterBusyError({ cause: new LimiterStoreError('contention outlasted every round') });
      }),
    );
  }

  /** `admin top`: today's heaviest users (the usage index, no scan) and the global totals. */
  async top(
    by: TopBy,
    limit: number,
    nowMs: number,
  ): Promise<{ users: UserUsageToday[]; global?: GlobalLimitState[] }> {
    const users = await topUsersToday(this.client, this.tableName, by, limit, nowMs);
    return this.global ? { users, global: await this.global.totals(nowMs) } : { users };
  }

  /**
   * Puts the user in line (or refreshes its entry). Never throws for a store that does not answer
   * the line: the waiter is then not listed this time (it still goes when nobody listed is before
   * it, and writes its entry again on its next look), which is logged.
   */
  async joinGlobalLine(waiter: GlobalWaiter): Promise<void> {
    if (!this.global) return;
    const nowMs = waiter.seenAtEpochMs ?? this.items.clock();
    await this.global
      .register({ ...waiter, seenAtEpochMs: nowMs }, nowMs, this.priorityUrgentMs)
      .catch((err) => {
        if (!(err instanceof LimiterBusyError || err instanceof LimiterUnavailableError)) throw err;
        this.onGlobalError?.('join line', describeError(err));
      });
  }

  async leaveGlobalLine(userId: string): Promise<void> {
    // Only a user in the line as this instance saw it within the last second costs a write.
    await this.global?.unregister(userId, this.items.clock(), this.priorityUrgentMs);
  }

  /**
   * Takes every entry out of the global line that is no longer live: overdue on its waiter's own
   * schedule (the user left: served elsewhere, cancelled, crashed) or past its deadline. The sweep
   * calls it every minute; the line's own writes prune as they go. Returns whose entries went.
   */
  async pruneGlobalLine(nowMs: number): Promise<{ readonly removed: readonly string[] }> {
    if (!this.global) return { removed: [] };
    return { removed: await this.global.prune(nowMs, this.priorityUrgentMs) };
  }

  /**
   * Gives back the global shares nothing holds any more (GlobalCounters.releaseOrphans): a share
   * whose decision ended with its outcome unknown and its undo unanswered, or whose settle's
   * release never landed. The sweep calls it every minute. Returns the requests given back.
   */
  async releaseOrphanedGlobalShares(
    nowMs: number,
  ): Promise<{ readonly released: readonly { readonly userId: string; readonly requestId: string }[] }> {
    if (!this.global) return { released: [] };
    return { released: await this.global.releaseOrphans(nowMs) };
  }

  /** Parks the user's wake-up until a reply in flight ends (see {@link planPark}). */
  async park(userId: string, receiptHandle: string): Promise<{ ok: boolean }> {
    const key = userKey(userId);
    return this.items.lane(key, () =>
      this.items.withRetries(async () => {
        const belief = this.items.belief(key)?.snap ?? (await this.items.read(key));
        const { ok } = await this.items.write(key, planPark(belief, receiptHandle));
        return { ok };
      }),
    );
  }

  async reset(userId: string, scope: ResetScope, _nowMs: number): Promise<void> {
    const w = new ExpressionWriter();
    // Each limit kind declares the attributes it keeps, and which scope clears them.
    w.remove(...resetAttributes(scope).map((a) => w.name(a)));
    // A new epoch per scope reset: reservations made before it refund nothing into that scope's new
    // counts, and keep refunding into the other scope's (issue 20, finding 9).
    const epochs = { tokens: ['te'], cost: ['ce'], all: ['te', 'ce'], messages: [] }[scope];
    for (const epoch of epochs) {
      const name = w.name(epoch);
      w.set(`${name} = if_not_exists(${name}, ${w.value(0)}) + ${w.value(1)}`);
    }
    w.condition(`attribute_exists(${w.name('pk')})`);
    const key = userKey(userId);
    await this.items.lane(key, () => this.items.withRetries(() => this.items.write(key, w.build())));
  }

  /** Sets (or with `null` removes) the user's own tier; it wins over the token's claim. */
  async setTier(
    userId: string,
    tier: Tier | null,
  ): Promise<{ before: LimiterSnapshot; after: LimiterSnapshot }> {
    const w = new ExpressionWriter();
    if (tier === null) w.remove(w.name('tier'));
    else w.set(`${w.name('tier')} = ${w.value(tier)}`);
    return this.changePolicy(userId, w);
  }

  async setOverride(
    userId: string,
    override: LimitOverride,
  ): Promise<{ before: LimiterSnapshot; after: LimiterSnapshot }> {
    const w = new ExpressionWriter();
    w.set(`${w.name('ovr')} = ${w.value(JSON.parse(JSON.stringify(override)))}`);
    return this.changePolicy(userId, w);
  }

  async clearOverride(userId: string): Promise<{ before: LimiterSnapshot; after: LimiterSnapshot }> {
    const w = new ExpressionWriter();
    w.remove(w.name('ovr'));
    return this.changePolicy(userId, w);
  }

  /** A policy write bumps `pv`, so every decision planned from the old policy fails its condition. */
  private async changePolicy(
    userId: string,
    w: ExpressionWriter,
  ): Promise<{ before: LimiterSnapshot; after: LimiterSnapshot }> {
    const key = userKey(userId);
    return this.items.lane(key, () =>
      this.items.withRetries(async () => {
        const before = await this.items.read(key);
        w.set(`${w.name('pv')} = if_not_exists(${w.name('pv')}, ${w.value(0)}) + ${w.value(1)}`);
        w.set(
          `${w.name('ttlEpochSeconds')} = ${w.value(Math.floor(this.items.clock() / 1000) + POLICY_TTL_SECONDS)}`,
        );
        const { snap: after } = await this.items.write(key, w.build());
        return { before, after };
      }),
    );
  }

  private limitsOf(policy: LimitPolicy, snap: LimiterSnapshot, nowMs: number): LimitState[] {
    return evaluate(policy, snap, { estimatedInputTokens: 0, maxTokens: policy.minOutputTokens }, nowMs)
      .limits;
  }

  private policyOf(snap: LimiterSnapshot, claimTier: Tier | undefined, nowMs: number): LimitPolicy {
    return effectivePolicy(this.tiers[this.tierOf(snap, claimTier)], snap.override, nowMs);
  }

  /** The record's tier wins over the token's claim (SPEC §2); `free` when neither says. */
  private tierOf(snap: LimiterSnapshot, claimTier: Tier | undefined): Tier {
    return snap.tier ?? claimTier ?? 'free';
  }
}
