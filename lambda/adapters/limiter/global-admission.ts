import { describeError } from '../../core/errors';
import { type DecisionBasis, globalDeniedDecision } from '../../core/limiter/decide/decisions';
import { slotLimit } from '../../core/limiter/decide/landed';
import type { DecideInput, DeniedDecision } from '../../core/limiter/decision';
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
import type { ModelSpec } from '../../core/models';
import type { LimiterContext } from './context';
import type { DecideState } from './decide-state';
import { LimiterOutcomeUnknownError } from './errors';

/**
 * The global part of an admission the user's limits allow (SPEC §2 v2): first, priority — if
 * someone is waiting for global capacity who goes before this request (a higher tier, an older
 * request of the same tier, or one near its deadline), it waits too; then one shard write. A
 * reservation taken in an earlier round of this decision is kept if it still covers this plan.
 * Returns the refusal, or undefined when the request holds its global share.
 */
export async function takeGlobal(
  ctx: LimiterContext,
  input: DecideInput,
  planned: Extract<AdmissionPlan, { kind: 'write' }>,
  model: ModelSpec,
  basis: DecisionBasis,
  arrivedAtMs: number,
  state: DecideState,
): Promise<DeniedDecision | undefined> {
  const global = ctx.global!;
  const { nowMs } = basis;
  const reservation = planned.evaluation.reservation!;
  if (state.globalHeld && state.globalUnsure) {
    // An earlier try of this decision got no answer from that shard: its entry for the request
    // says whether the share was taken.
    if (!(await global.holds(input.requestId, state.globalHeld.shard))) state.globalHeld = undefined;
    state.globalUnsure = false;
  }
  const held = state.globalHeld;
  if (held) {
    const sameQuota = held.quota?.modelId === (model.accountQuota ? model.id : undefined);
    if (
      sameQuota &&
      held.tokens >= reservation.reservedTokens &&
      held.costMicroUsd >= reservation.reservedCostMicroUsd
    ) {
      return undefined;
    }
    // Kept as held while its shard does not answer the give-back (see Admission.decideInLane).
    if (!(await undoGlobal(ctx, input.requestId, held))) throw new LimiterOutcomeUnknownError();
    state.globalHeld = undefined;
  }
  const replay = input.queue?.mode === 'replay' ? input.queue : undefined;
  const me: GlobalWaiter = {
    userId: input.userId,
    tier: basis.tier,
    enqueuedAtEpochMs: replay?.enqueuedAtEpochMs ?? nowMs,
    deadlineEpochMs: replay?.deadlineEpochMs ?? Number.POSITIVE_INFINITY,
    seenAtEpochMs: nowMs,
    limit: slotLimit(),
  };
  // A queued request reads who waits (its turn decides who goes first); a direct one trusts this
  // instance's view of the last second (it only decides whether to queue behind them).
  // Only those waiting for capacity this request takes hold it back: the stack's, and its model's
  // quota (a waiter for model A's quota does not hold back a request on model B).
  const scopes = [modelScope(model.id)];
  const line = await global.waiters({ fresh: replay !== undefined, nowMs });
  const waiters = line.filter((w) => sharesCapacity(w, scopes));
  // Its entry is taken out once it is admitted: one seen, or (a queued one) one placed past what
  // the read showed of its partition — a waiter far back.
  state.waitedForGlobal =
    line.some((w) => w.userId === input.userId) || (replay !== undefined && global.mayBeInLine(me));
  if (!mayGoNow(me, waiters, nowMs, ctx.priorityUrgentMs)) {
    // Behind them until the first in line may go (waitBehindMs: a second, or until its wake-up at
    // a window's start): a request that would wait past MAX_QUEUE_WAIT for it is refused now, not
    // queued to expire. A queued one far back looks again later (waitInLineMs).
    const first = priorityOrder(waiters, nowMs, ctx.priorityUrgentMs)[0]!;
    const waitMs = replay
      ? waitInLineMs(me, waiters, nowMs, ctx.priorityUrgentMs)
      : waitBehindMs(first, nowMs);
    return globalDeniedDecision(
      basis,
      first.limit,
      waitMs,
      planned,
      quotaValueOf(global.limits.models, first.limit),
    );
  }
  const admission = await global.admit(
    {
      requestId: input.requestId,
      userId: input.userId,
      tokens: reservation.reservedTokens,
      costMicroUsd: reservation.reservedCostMicroUsd,
      weight: model.messageWeight ?? 1,
      leaseUntilEpochMs: replay?.leaseUntilEpochMs ?? nowMs + ctx.inFlightLeaseMs,
      // Counted as Bedrock counts it: input + the output allowance × burndown, reserved now.
      ...(model.accountQuota
        ? {
            quota: {
              modelId: model.id,
              quotaTokens: quotaTokens(
                model.accountQuota,
                reservation.inputTokens,
                reservation.outputAllowance,
              ),
            },
          }
        : {}),
    },
    nowMs,
    arrivedAtMs,
    state,
  );
  if (!admission.ok) {
    const quota = quotaValueOf(global.limits.models, admission.limit);
    return globalDeniedDecision(basis, admission.limit, admission.retryAfterMs, planned, quota);
  }
  state.globalHeld = admission.taken;
  state.globalCostPercent = admission.costPercent;
  return undefined;
}

/** Gives a share back whole; false when its shard did not answer (it may still hold it). */
export async function undoGlobal(
  ctx: LimiterContext,
  requestId: string,
  held: GlobalReservation,
): Promise<boolean> {
  if (!ctx.global) return true;
  return ctx.global
    .release(requestId, held, { tokens: held.tokens, costMicroUsd: held.costMicroUsd }, true)
    .then(
      () => true,
      (err) => {
        ctx.onGlobalError?.('undo', describeError(err));
        return false;
      },
    );
}
