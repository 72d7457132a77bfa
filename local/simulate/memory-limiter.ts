import {
  allowedDecision,
  deniedDecision,
  globalDeniedDecision,
} from '../../lambda/core/limiter/decide/decisions';
import { askOn, chooseModel } from '../../lambda/core/limiter/decide/model';
import { policyOf, tierOf } from '../../lambda/core/limiter/decide/resolve';
import { globalRefund, pendingOf, settleDelta } from '../../lambda/core/limiter/decide/settle';
import type { DecideInput, DeniedDecision, TokenReservation } from '../../lambda/core/limiter/decision';
import { type GlobalBound, hasGlobalLimits } from '../../lambda/core/limiter/global/limits';
import { quotaValueOf, unusedQuotaTokens } from '../../lambda/core/limiter/global/model-quotas';
import type { GlobalAsk, GlobalReservation } from '../../lambda/core/limiter/global/shards';
import { userKey } from '../../lambda/core/limiter/item/attributes';
import type { LimiterSnapshot } from '../../lambda/core/limiter/item/state';
import { type AdmissionQueue, planAdmission } from '../../lambda/core/limiter/plan/admission';
import { planEnqueue, planRemoveWaiting } from '../../lambda/core/limiter/plan/queue';
import { planForgetSettledCharge, planSettle } from '../../lambda/core/limiter/plan/settle';
import type { LimitsConfig } from '../../lambda/core/limiter/policy';
import { teamLimitsOf, teamOf, teamShardPrefix } from '../../lambda/core/limiter/teams';
import type { Tier } from '../../lambda/core/limiter/tiers';
import { costMicroUsd, FREE_PRICE } from '../../lambda/core/models';
import type { QueuedRequest } from '../../lambda/core/queue/request';
import { MemoryShards, quotaAsk, StoredItem, type WriteObserver } from './memory-shards';

export type { WriteObserver } from './memory-shards';

/** What the simulator asks the limiter: one request of one user, direct or replayed from the queue. */
export interface SimAsk {
  readonly userId: string;
  readonly requestId: string;
  readonly tier: Tier;
  /** The token's team claim (the traffic line's `team`). */
  readonly team?: string;
  readonly model?: string;
  readonly inputTokens: number;
  readonly queue: AdmissionQueue;
}

export type SimAdmission =
  | { readonly allowed: true; readonly reservation: TokenReservation }
  | {
      readonly allowed: false;
      readonly decision: DeniedDecision;
      /** Refused by a shared limit (the stack's, a model's quota, or with `team` the team's): which one. */
      readonly global?: GlobalBound;
      /** The team whose limit refused it. */
      readonly team?: string;
    }
  /** The tier may not use the model the request names (refused, nothing counted). */
  | { readonly allowed: false; readonly model: true };

type Planned = Parameters<typeof quotaAsk>[1];
type Basis = Parameters<typeof deniedDecision>[0];

/**
 * The limiter's store in memory, driven by the core's own planners exactly as the DynamoDB adapter
 * drives them (lambda/adapters/limiter/admission-round.ts, global-admission.ts, settle.ts,
 * share-release.ts, queue-ops.ts): read the item, plan the one conditional UpdateItem
 * (planAdmission, planEnqueue, planSettle, planGlobalAdmission, planGlobalRelease), apply it. One
 * process, one event at a time: the belief is always the item, so every condition holds — one
 * that does not is a bug in the simulation and throws, rather than being retried away.
 */
export class MemoryLimiter {
  private readonly users = new Map<string, StoredItem>();
  private readonly global: MemoryShards | undefined;
  /** Each team's shards, made the first time a request of the team comes; undefined: no limits. */
  private readonly teams = new Map<string, MemoryShards | undefined>();
  /** Any team limits configured (the adapter's `ctx.teams`): settles then name the request's team. */
  private readonly teamsOn: boolean;

  /**
   * @param onWrite sees every write, with the item after it (test/integration/simulate-store.test.ts
   *   sends the same writes to DynamoDB and compares the items)
   */
  constructor(
    private readonly config: LimitsConfig,
    private readonly onWrite?: WriteObserver,
  ) {
    this.global = config.global ? new MemoryShards(config.global, undefined, onWrite) : undefined;
    this.teamsOn =
      Object.values(config.teams ?? {}).some(hasGlobalLimits) || hasGlobalLimits(config.teamDefaults);
  }

  snapOf(userId: string): LimiterSnapshot {
    return this.stored(userId).snap;
  }

  /**
   * Decides one request, as `decideOnStore` does: the user's write, with the shares first — the
   * stack's (with its model's account quota), then its team's (takeGlobal). A team's refusal gives
   * the stack's share back whole, and the user's write is not made.
   */
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
      ...(ask.team !== undefined ? { claimTeam: ask.team } : {}),
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
    const teamName = teamOf(snap.team, ask.team);
    const team = teamName === undefined ? undefined : this.teamShards(teamName);
    const shareAsk: GlobalAsk = {
      requestId: ask.requestId,
      userId: ask.userId,
      tokens: planned.evaluation.reservation!.reservedTokens,
      costMicroUsd: planned.evaluation.reservation!.reservedCostMicroUsd,
      weight: served.price.messageWeight ?? 1,
      leaseUntilEpochMs,
    };
    let global: GlobalReservation | undefined;
    if (this.global) {
      const got = this.global.take({ ...shareAsk, ...quotaAsk(served.price, planned) }, nowMs);
      if (!got.ok) {
        const quotaLimit = quotaValueOf(this.global.limits.models, got.limit);
        const decision = globalDeniedDecision(basis, got.limit, got.retryAfterMs, planned, quotaLimit);
        return { allowed: false, decision, global: got.limit };
      }
      global = got.taken;
    }
    let teamShare: GlobalReservation | undefined;
    if (team) {
      const got = team.take(shareAsk, nowMs);
      if (!got.ok) {
        if (global) this.undo(this.global!, ask.requestId, global);
        return this.teamRefusal(basis, planned, got, teamName!);
      }
      teamShare = got.taken;
    }
    user.write(planned.plan, 'admission');
    const after = { ...basis, tier: tierOf(user.snap, ask.tier), snap: user.snap };
    // The team part of the reservation (teamReservation): its name when teams are on, its share if any.
    const teamPart =
      this.teamsOn && teamName !== undefined
        ? { name: teamName, ...(teamShare ? { share: teamShare } : {}) }
        : undefined;
    const decision = allowedDecision(after, input, planned, served, global, teamPart);
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
    user.write(plan, 'enqueue');
    return user.snap.waiting.length;
  }

  /** Takes a waiting request out of the list (an expired one), with its data. */
  removeWaiting(userId: string, requestId: string): void {
    const user = this.stored(userId);
    const index = user.snap.waiting.indexOf(requestId);
    if (index < 0) throw new Error(`simulate: ${requestId} is not waiting`);
    user.write(planRemoveWaiting(requestId, index), 'remove waiting');
  }

  /**
   * Settles a reservation to what the reply used (Settles.reconcile): refunds the unused part or
   * charges the missed one in the user's item, then gives the unused part of each share back — the
   * stack's (with the model quota's unused tokens, to the minute they were counted in) and the
   * team's (releaseShares).
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
    const teamName = reservation.team?.name ?? snap.team;
    const team = teamName === undefined ? undefined : this.teamShards(teamName);
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
      used: { userId: reservation.userId, ...usage, ...(this.teamsOn ? { team: teamName ?? null } : {}) },
      ...(this.global || team ? { charged: usage } : {}),
    });
    user.write(plan, 'settle');
    let released = false;
    const shares = [
      { shards: this.global, taken: reservation.global },
      { shards: team, taken: reservation.team?.share },
    ];
    for (const { shards, taken } of shares) {
      if (!shards || !taken) continue;
      released =
        shards.release(
          reservation.requestId,
          taken,
          {
            ...globalRefund(taken, usage.tokens, usage.costMicroUsd),
            quotaTokens: unusedQuotaTokens(taken.quota, shards.limits.models, used, nowMs),
          },
          false,
        ) || released;
    }
    // Every share back: the charge the settle left for the sweep goes too (releaseShares).
    if (released) user.write(planForgetSettledCharge(reservation.requestId), 'forget charge');
  }

  /** The team's shards, when it has limits (its own entry, else the defaults: TeamCounters.of). */
  private teamShards(team: string): MemoryShards | undefined {
    if (this.teams.has(team)) return this.teams.get(team);
    const limits = teamLimitsOf(this.config, team, hasGlobalLimits);
    const shards = limits ? new MemoryShards(limits, teamShardPrefix(team), this.onWrite) : undefined;
    this.teams.set(team, shards);
    return shards;
  }

  private teamRefusal(
    basis: Basis,
    planned: Planned,
    got: Extract<ReturnType<MemoryShards['take']>, { ok: false }>,
    team: string,
  ): SimAdmission {
    const decision = globalDeniedDecision(basis, got.limit, got.retryAfterMs, planned, undefined, team);
    return { allowed: false, decision, global: got.limit, team };
  }

  /** A share taken and then not used (a team refused the request): back whole, its message too. */
  private undo(shards: MemoryShards, requestId: string, taken: GlobalReservation): void {
    shards.release(requestId, taken, { tokens: taken.tokens, costMicroUsd: taken.costMicroUsd }, true);
  }

  private stored(userId: string): StoredItem {
    let user = this.users.get(userId);
    if (!user) {
      user = new StoredItem(userKey(userId), this.onWrite);
      this.users.set(userId, user);
    }
    return user;
  }
}
