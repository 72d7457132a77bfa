import { describeError } from '../../core/errors';
import { type DecisionBasis, globalDeniedDecision } from '../../core/limiter/decide/decisions';
import { slotLimit } from '../../core/limiter/decide/landed';
import type { DecideInput, DeniedDecision, TokenReservation } from '../../core/limiter/decision';
import { modelScope, quotaTokens, quotaValueOf } from '../../core/limiter/global/model-quotas';
import {
  type GlobalWaiter,
  mayGoNow,
  priorityOrder,
  sharesCapacity,
  waitBehindMs,
  waitInLineMs,
} from '../../core/limiter/global/priority';
import type { GlobalReservation } from '../../core/limiter/global/share-record';
import type { AdmissionPlan } from '../../core/limiter/plan/admission';
import { teamScope } from '../../core/limiter/teams';
import type { ModelSpec } from '../../core/models';
import type { LimiterContext } from './context';
import type { DecideState } from './decide-state';
import { LimiterOutcomeUnknownError } from './errors';
import type { GlobalCounters, GlobalHold } from './global-counters';

type Planned = Extract<AdmissionPlan, { kind: 'write' }>;

/**
 * The shared part of an admission the user's limits allow (SPEC §2 v2, §9.4): first, priority — if
 * someone is waiting for capacity this request also takes (the stack's; its team's) who goes
 * before it (a higher tier, an older request of the same tier, or one near its deadline), it waits
 * too; then one write to a global shard (global limits on), then one to a shard of its team (the
 * team has limits): at most two writes besides the user's own. A share taken in an earlier round of
 * this decision is kept if it still covers this plan. A team's refusal comes after the global share
 * was taken: the caller gives that back whole (Admission.decideInLane), and the user's write is
 * never made — a team refusal charges the user nothing. Returns the refusal, or undefined when the
 * request holds every share it needs.
 */
export async function takeGlobal(
  ctx: LimiterContext,
  input: DecideInput,
  planned: Planned,
  model: ModelSpec,
  basis: DecisionBasis,
  arrivedAtMs: number,
  state: DecideState,
): Promise<DeniedDecision | undefined> {
  const { nowMs } = basis;
  const team = ctx.teamOf(basis.snap, input.claimTeam);
  // The team changed since a share was taken from the old one's shard (an admin's set-team): back.
  if (state.team && state.team.name !== team?.name) {
    if (!(await undoShare(ctx, state.team.counters, input.requestId, state.team.hold))) {
      throw new LimiterOutcomeUnknownError();
    }
    state.team = undefined;
  }
  if (team?.counters && !state.team) state.team = { name: team.name, counters: team.counters, hold: {} };
  // Whose capacity it takes besides the stack's: its team's, its model's account quota (a waiter
  // for model A's quota does not hold back a request on model B).
  const scopes = [...(team?.counters ? [teamScope(team.name)] : []), modelScope(model.id)];
  const quotaModel = model.accountQuota ? model.id : undefined;
  if (ctx.global) await keepOrUndo(ctx, ctx.global, input.requestId, state, planned, quotaModel);
  if (state.team) await keepOrUndo(ctx, state.team.counters, input.requestId, state.team.hold, planned);
  const needsGlobal = ctx.global !== undefined && !state.globalHeld;
  const needsTeam = state.team !== undefined && !state.team.hold.globalHeld;
  if (!needsGlobal && !needsTeam) return undefined;
  const refusedInLine = await waitForOthers(ctx, input, planned, basis, scopes, state);
  if (refusedInLine) return refusedInLine;
  const reservation = planned.evaluation.reservation!;
  const replay = input.queue?.mode === 'replay' ? input.queue : undefined;
  const ask = {
    requestId: input.requestId,
    userId: input.userId,
    tokens: reservation.reservedTokens,
    costMicroUsd: reservation.reservedCostMicroUsd,
    weight: model.messageWeight ?? 1,
    leaseUntilEpochMs: replay?.leaseUntilEpochMs ?? nowMs + ctx.inFlightLeaseMs,
  };
  if (needsGlobal) {
    const global = ctx.global!;
    // Its model's quota counts on the global shard, as Bedrock counts it: input + the output
    // allowance × burndown, reserved now.
    const quota = model.accountQuota
      ? {
          modelId: model.id,
          quotaTokens: quotaTokens(model.accountQuota, reservation.inputTokens, reservation.outputAllowance),
        }
      : undefined;
    const admission = await global.admit({ ...ask, ...(quota ? { quota } : {}) }, nowMs, arrivedAtMs, state);
    if (!admission.ok) {
      const quotaLimit = quotaValueOf(global.limits.models, admission.limit);
      return globalDeniedDecision(basis, admission.limit, admission.retryAfterMs, planned, quotaLimit);
    }
    state.globalHeld = admission.taken;
    state.globalCostPercent = admission.costPercent;
  }
  if (needsTeam && state.team) {
    const { name, counters, hold } = state.team;
    await ctx.teams?.note(name);
    const admission = await counters.admit(ask, nowMs, arrivedAtMs, hold);
    if (!admission.ok) {
      return globalDeniedDecision(basis, admission.limit, admission.retryAfterMs, planned, undefined, name);
    }
    hold.globalHeld = admission.taken;
  }
  return undefined;
}

/**
 * Priority in the line: only waiters for capacity this request also takes (the stack's, or its
 * team's: sharesCapacity) hold it back, so team A's waiters never hold back team B. A queued
 * request reads who waits (its turn decides who goes first); a direct one trusts this instance's
 * view of the last second (it only decides whether to queue behind them).
 */
async function waitForOthers(
  ctx: LimiterContext,
  input: DecideInput,
  planned: Planned,
  basis: DecisionBasis,
  scopes: readonly string[],
  state: DecideState,
): Promise<DeniedDecision | undefined> {
  if (!ctx.line) return undefined;
  const { nowMs } = basis;
  const replay = input.queue?.mode === 'replay' ? input.queue : undefined;
  const me: GlobalWaiter = {
    userId: input.userId,
    tier: basis.tier,
    enqueuedAtEpochMs: replay?.enqueuedAtEpochMs ?? nowMs,
    deadlineEpochMs: replay?.deadlineEpochMs ?? Number.POSITIVE_INFINITY,
    seenAtEpochMs: nowMs,
    limit: slotLimit(),
  };
  const all = await ctx.line.waiters({ fresh: replay !== undefined, nowMs });
  // Its entry is taken out once it is admitted: one seen, or (a queued one) one placed past what
  // the read showed of its partition — a waiter far back.
  state.waitedForGlobal =
    all.some((w) => w.userId === input.userId) || (replay !== undefined && ctx.line.mayBeInLine(me));
  const waiters = all.filter((w) => w.userId === input.userId || sharesCapacity(w, scopes));
  if (mayGoNow(me, waiters, nowMs, ctx.priorityUrgentMs)) return undefined;
  // Behind them until the first in line may go (waitBehindMs: a second, or until its wake-up at a
  // window's start): a request that would wait past MAX_QUEUE_WAIT for it is refused now, not
  // queued to expire. A queued one far back looks again later (waitInLineMs).
  const first = priorityOrder(waiters, nowMs, ctx.priorityUrgentMs)[0]!;
  const waitMs = replay ? waitInLineMs(me, waiters, nowMs, ctx.priorityUrgentMs) : waitBehindMs(first, nowMs);
  const team = first.scope?.startsWith('team:') ? first.scope.slice('team:'.length) : undefined;
  const quotaLimit = quotaValueOf(ctx.global?.limits.models, first.limit);
  return globalDeniedDecision(basis, first.limit, waitMs, planned, quotaLimit, team);
}

/**
 * A share an earlier round of this decision took: confirmed when its write got no answer (the
 * shard's entry for the request says), kept when it covers the plan, else given back whole.
 */
async function keepOrUndo(
  ctx: LimiterContext,
  counters: GlobalCounters,
  requestId: string,
  hold: GlobalHold,
  planned: Planned,
  /** The model whose account quota the share must count (global shards only). */
  quotaModel?: string,
): Promise<void> {
  if (hold.globalHeld && hold.globalUnsure) {
    if (!(await counters.holds(requestId, hold.globalHeld.shard))) hold.globalHeld = undefined;
    hold.globalUnsure = false;
  }
  const held = hold.globalHeld;
  if (!held) return;
  const reservation = planned.evaluation.reservation!;
  if (
    held.quota?.modelId === quotaModel &&
    held.tokens >= reservation.reservedTokens &&
    held.costMicroUsd >= reservation.reservedCostMicroUsd
  ) {
    return;
  }
  // Kept as held while its shard does not answer the give-back (see Admission.decideInLane).
  if (!(await undoShare(ctx, counters, requestId, hold))) throw new LimiterOutcomeUnknownError();
}

/** Gives a share back whole; false when its shard did not answer (it may still hold it). */
export async function undoShare(
  ctx: LimiterContext,
  counters: GlobalCounters | undefined,
  requestId: string,
  hold: GlobalHold,
): Promise<boolean> {
  const held = hold.globalHeld;
  if (!counters || !held) return true;
  const done = await undoGlobal(ctx, requestId, held, counters);
  if (done) hold.globalHeld = undefined;
  return done;
}

/** Gives a share back whole; false when its shard did not answer (it may still hold it). */
export async function undoGlobal(
  ctx: LimiterContext,
  requestId: string,
  held: GlobalReservation,
  counters: GlobalCounters | undefined = ctx.global,
): Promise<boolean> {
  if (!counters) return true;
  return counters
    .release(requestId, held, { tokens: held.tokens, costMicroUsd: held.costMicroUsd }, true)
    .then(
      () => true,
      (err) => {
        ctx.onGlobalError?.('undo', describeError(err));
        return false;
      },
    );
}

/** The team part of an admitted request's reservation: its team, and the team share it holds. */
export function teamReservation(state: DecideState, name?: string): TokenReservation['team'] {
  if (state.team) {
    const share = state.team.hold.globalHeld;
    return { name: state.team.name, ...(share ? { share } : {}) };
  }
  return name === undefined ? undefined : { name };
}
