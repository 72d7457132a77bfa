import {
  allowedDecision,
  deniedDecision,
  globalDeniedDecision,
} from '../../lambda/core/limiter/decide/decisions';
import { askOn, chooseModel } from '../../lambda/core/limiter/decide/model';
import { policyOf, tierOf } from '../../lambda/core/limiter/decide/resolve';
import { globalRefund, pendingOf, settleDelta } from '../../lambda/core/limiter/decide/settle';
import type { DecideInput, DeniedDecision, TokenReservation } from '../../lambda/core/limiter/decision';
import type { UpdatePlan } from '../../lambda/core/limiter/expression';
import type { GlobalBound } from '../../lambda/core/limiter/global/limits';
import {
  planGlobalAdmission,
  planGlobalRelease,
  roomIn,
  shardKey,
} from '../../lambda/core/limiter/global/shards';
import { userKey } from '../../lambda/core/limiter/item/attributes';
import { snapshotFromItem } from '../../lambda/core/limiter/item/codec';
import type { LimiterSnapshot } from '../../lambda/core/limiter/item/state';
import { type AdmissionQueue, planAdmission } from '../../lambda/core/limiter/plan/admission';
import { planEnqueue, planRemoveWaiting } from '../../lambda/core/limiter/plan/queue';
import { planSettle } from '../../lambda/core/limiter/plan/settle';
import type { LimitsConfig } from '../../lambda/core/limiter/policy';
import type { Tier } from '../../lambda/core/limiter/tiers';
import { costMicroUsd, FREE_PRICE } from '../../lambda/core/models';
import type { QueuedRequest } from '../../lambda/core/queue/request';
import { applyPlan, type Item } from './memory-item';

/** One stored item and the snapshot the codec reads from it (kept in step with every write). */
interface Stored {
  /** The item's key in the Limits table (`user#<id>`, `global#<k>`). */
  readonly key: string;
  readonly item: Item;
  snap: LimiterSnapshot;
}

/** Sees each write the store applied: the item's key, the plan, the item after it. */
export type WriteObserver = (key: string, plan: UpdatePlan, after: Readonly<Item>) => void;

/** What the simulator asks the limiter: one request of one user, direct or replayed from the queue. */
export interface SimAsk {
  readonly userId: string;
  readonly requestId: string;
  readonly tier: Tier;
  readonly model?: string;
  readonly inputTokens: number;
  readonly queue: AdmissionQueue;
}

export type SimAdmission =
  | { readonly allowed: true; readonly reservation: TokenReservation }
  | {
      readonly allowed: false;
      readonly decision: DeniedDecision;
      /** Refused by a global limit: which one. */
      readonly global?: GlobalBound;
    }
  /** The tier may not use the model the request names (refused, nothing counted). */
  | { readonly allowed: false; readonly model: true };

/**
 * The limiter's store in memory, driven by the core's own planners exactly as the DynamoDB adapter
 * drives them (lambda/adapters/limiter/admission-round.ts, settle.ts, queue-ops.ts,
 * global-counters.ts): read the item, plan the one conditional UpdateItem (planAdmission,
 * planEnqueue, planSettle, planGlobalAdmission, planGlobalRelease), apply it. One process, one
 * event at a time: the belief is always the item, so every condition holds — one that does not is
 * a bug in the simulation and throws, rather than being retried away.
 */
export class MemoryLimiter {
  private readonly users = new Map<string, Stored>();
  private readonly shards: Stored[];

  /**
   * @param onWrite sees every write, with the item after it (test/integration/simulate-store.test.ts
   *   sends the same writes to DynamoDB and compares the items)
   */
  constructor(
    private readonly config: LimitsConfig,
    private readonly onWrite?: WriteObserver,
  ) {
    const shards = config.global ? config.global.shards : 0;
    this.shards = Array.from({ length: shards }, (_, k) => ({
      key: shardKey(k),
      item: {},
      snap: snapshotFromItem(undefined),
    }));
  }

  snapOf(userId: string): LimiterSnapshot {
    return this.stored(userId).snap;
  }

  /** Decides one request, as `decideOnStore` does: the user's write, with the global share first. */
  admit(ask: SimAsk, leaseUntilEpochMs: number, nowMs: number): SimAdmission {
    const user = this.stored(ask.userId);
    const snap = user.snap;
    const basis = {
      tier: tierOf(snap, ask.tier),
      policy: policyOf(this.config.tiers, snap, ask.tier, nowMs),
      snap,
      nowMs,
    };
    const input: DecideInput = {
      userId: ask.userId,
      requestId: ask.requestId,
      claimTier: ask.tier,
      estimatedInputTokens: ask.inputTokens,
      model: ask.model,
      queue: ask.queue.mode === 'replay' ? { mode: 'replay', leaseUntilEpochMs } : { mode: 'direct' },
    };
    const choice = chooseModel(basis.policy, this.config.models, input, (model) =>
      planAdmission({
        policy: basis.policy,
        belief: snap,
        ask: askOn(input, model),
        requestId: ask.requestId,
        queue: ask.queue,
        leaseUntilEpochMs,
        sweepUserId: ask.userId,
        claimTier: ask.tier,
        nowMs,
      }),
    );
    if (!choice) return { allowed: false, model: true };
    const { planned, served } = choice;
    if (planned.kind === 'reject' || planned.kind === 'queued-ahead') {
      return { allowed: false, decision: deniedDecision(basis, planned) };
    }
    if (planned.kind !== 'write') throw new Error(`simulate: unexpected admission "${planned.kind}"`);
    // Team limits and model quotas (issue 25, parts 1 and 2) are not applied yet: once the core
    // plans them (a team's or a model's global part), their share is taken here, beside the
    // stack-wide one, as the DynamoDB adapter takes it (adapters/limiter/global-admission.ts).
    let taken: ReturnType<typeof planGlobalAdmission>['taken'] | undefined;
    if (this.config.global) {
      const reservation = planned.evaluation.reservation!;
      const globalAsk = {
        requestId: ask.requestId,
        userId: ask.userId,
        tokens: reservation.reservedTokens,
        costMicroUsd: reservation.reservedCostMicroUsd,
        weight: served.price.messageWeight ?? 1,
        leaseUntilEpochMs,
      };
      const global = this.config.global;
      const rooms = this.shards.map((s, k) => roomIn(global, k, s.snap, globalAsk, nowMs));
      const open = rooms.filter((r) => !r.blocking);
      if (open.length === 0) {
        // The shard that may have room soonest says when to try again (GlobalCounters.admit).
        const soonest = rooms.reduce((a, r) => (r.retryAfterMs! < a.retryAfterMs! ? r : a));
        const limit = soonest.blocking!;
        return {
          allowed: false,
          decision: globalDeniedDecision(basis, limit, soonest.retryAfterMs!, planned),
          global: limit,
        };
      }
      // The emptiest shard (the product picks at random among the nearly emptiest: here the first).
      const shard = open.reduce((a, r) => (r.free > a.free ? r : a)).shard;
      const share = planGlobalAdmission({
        limits: global,
        shard,
        belief: this.shards[shard]!.snap,
        ask: globalAsk,
        nowMs,
      });
      this.write(this.shards[shard]!, share.plan, 'global admission');
      taken = share.taken;
    }
    this.write(user, planned.plan, 'admission');
    const after = { ...basis, tier: tierOf(user.snap, ask.tier), snap: user.snap };
    const decision = allowedDecision(after, input, planned, served, taken);
    return { allowed: true, reservation: decision.reservation };
  }

  /** Puts a refused request at the end of the user's waiting list (planEnqueue); its position. */
  enqueue(userId: string, request: QueuedRequest, maxQueued: number, nowMs: number): number {
    const user = this.stored(userId);
    const plan = planEnqueue({
      request,
      maxQueued,
      nowMs,
      keepsPolicy: user.snap.policyVersion > 0,
      sweep: { userId, believedAfterEpochMs: user.snap.sweepAfterEpochMs },
    });
    this.write(user, plan, 'enqueue');
    return user.snap.waiting.length;
  }

  /** Takes a waiting request out of the list (an expired one), with its data. */
  removeWaiting(userId: string, requestId: string): void {
    const user = this.stored(userId);
    const index = user.snap.waiting.indexOf(requestId);
    if (index < 0) throw new Error(`simulate: ${requestId} is not waiting`);
    this.write(user, planRemoveWaiting(requestId, index), 'remove waiting');
  }

  /**
   * Settles a reservation to what the reply used (Settles.reconcile): refunds the unused part or
   * charges the missed one in the user's item, then gives the unused part of the global share back.
   */
  settle(
    reservation: TokenReservation,
    used: { readonly inputTokens: number; readonly outputTokens: number },
    endsActive: boolean,
    nowMs: number,
  ): void {
    const user = this.stored(reservation.userId);
    const snap = user.snap;
    const price = reservation.price ?? FREE_PRICE;
    const usage = {
      tokens: used.inputTokens + used.outputTokens,
      costMicroUsd: costMicroUsd(price, used.inputTokens, used.outputTokens),
    };
    const pending = snap.reservations[reservation.requestId] ?? pendingOf(reservation);
    const policy = policyOf(this.config.tiers, snap, reservation.claimTier, nowMs);
    const delta = settleDelta({
      policy,
      snap,
      nowMs,
      price,
      pending,
      reservedTokens: reservation.reservedTokens,
      usedTokens: usage.tokens,
      actualCostMicroUsd: usage.costMicroUsd,
    });
    const plan = planSettle({
      policy,
      belief: snap,
      requestId: reservation.requestId,
      pending,
      delta,
      nowMs,
      endsActive,
      bucketAfterEpochMs: reservation.bucketAfterEpochMs,
      used: { userId: reservation.userId, ...usage },
      ...(this.config.global ? { charged: usage } : {}),
    });
    this.write(user, plan, 'settle');
    const taken = reservation.global;
    if (!taken) return;
    const shard = this.shards[taken.shard]!;
    const release = planGlobalRelease({
      belief: shard.snap,
      requestId: reservation.requestId,
      taken,
      refund: globalRefund(taken, usage.tokens, usage.costMicroUsd),
      undo: false,
    });
    if (release) this.write(shard, release, 'global release');
  }

  private stored(userId: string): Stored {
    let user = this.users.get(userId);
    if (!user) {
      user = { key: userKey(userId), item: {}, snap: snapshotFromItem(undefined) };
      this.users.set(userId, user);
    }
    return user;
  }

  private write(stored: Stored, plan: UpdatePlan, what: string): void {
    if (!applyPlan(stored.item, plan)) {
      throw new Error(`simulate: the ${what} write's condition failed on the item it was planned from`);
    }
    stored.snap = snapshotFromItem(stored.item);
    this.onWrite?.(stored.key, plan, stored.item);
  }
}
