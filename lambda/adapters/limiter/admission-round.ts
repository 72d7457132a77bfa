import { describeError } from '../../core/errors';
import { allowedDecision, deniedDecision, modelRefusedDecision } from '../../core/limiter/decide/decisions';
import { landedAdmission } from '../../core/limiter/decide/landed';
import { askOn, chooseModel } from '../../core/limiter/decide/model';
import { limitsOf, tierOf } from '../../core/limiter/decide/resolve';
import type { DecideInput, Decision } from '../../core/limiter/decision';
import type { UpdatePlan } from '../../core/limiter/expression';
import type { HistoryWrite } from '../../core/limiter/history';
import type { LimiterSnapshot } from '../../core/limiter/item/state';
import type { LimitPolicy } from '../../core/limiter/kinds/registry';
import { planAdmission } from '../../core/limiter/plan/admission';
import { planCrossingMarks, unmarkedCrossings, type WindowWarning } from '../../core/limiter/plan/warnings';
import { MAX_CONTENTION_ROUNDS, UNKNOWN, type WriteResult } from './beliefs';
import type { LimiterContext } from './context';
import type { DecideState } from './decide-state';
import { LimiterBusyError, LimiterStoreError, StoreFaultError } from './errors';
import { takeGlobal, teamReservation } from './global-admission';

/**
 * One try of a decision on the store: plan from the belief, take the global share if any, write;
 * a failed condition plans again from the item it returned. A refusal is decided only from an item
 * as it was after the frame arrived (else read first).
 */
export async function decideOnStore(
  ctx: LimiterContext,
  key: string,
  input: DecideInput,
  nowMs: number,
  arrivedAtMs: number,
  state: DecideState,
): Promise<Decision> {
  const { items } = ctx;
  const queue = input.queue ?? { mode: 'direct' as const };
  const leaseUntilEpochMs = queue.mode === 'replay' ? queue.leaseUntilEpochMs : nowMs + ctx.inFlightLeaseMs;
  for (let round = 0; round < MAX_CONTENTION_ROUNDS; round++) {
    const belief = items.belief(key) ?? UNKNOWN;
    const basis = ctx.basis(belief.snap, input.claimTier, nowMs);
    // The model: the one the request names, else the tier's default (a spent cost budget lets the
    // tier's cheaper fallback answer instead); one the tier may not use is refused (INVALID_REQUEST).
    const choice = chooseModel(basis.policy, ctx.models, input, (model) =>
      planAdmission({
        policy: basis.policy,
        belief: belief.snap,
        ask: askOn(input, model),
        requestId: input.requestId,
        queue,
        leaseUntilEpochMs,
        sweepUserId: input.userId,
        claimTier: input.claimTier,
        claimTeam: input.claimTeam,
        nowMs,
      }),
    );
    if (!choice) return modelRefusedDecision(basis);
    const { planned, served } = choice;
    if (planned.kind === 'write') {
      if (ctx.global || ctx.teams) {
        state.globalFailed = true;
        const refused = await takeGlobal(ctx, input, planned, served.price, basis, arrivedAtMs, state);
        state.globalFailed = false;
        if (refused) return refused;
      }
      const result = await writeAdmission(ctx, key, planned.plan, state);
      state.sawItem = true;
      if (result.ok) {
        // Once per user and day: the day this admission closed goes to its history item.
        if (planned.history) await recordHistory(ctx, input.userId, planned.history);
        // The policy the write was planned (and conditioned) on; the rest as the write left the item.
        const after = { ...basis, tier: tierOf(result.snap, input.claimTier), snap: result.snap };
        const team = teamReservation(state, ctx.teams && ctx.teamOf(basis.snap, input.claimTeam)?.name);
        const decided = allowedDecision(after, input, planned, served, state.globalHeld, team);
        const late = await markLateCrossings(ctx, key, basis.policy, result.snap, nowMs);
        const allowed = {
          ...decided,
          ...(late.length > 0
            ? {
                warnings: [...(decided.warnings ?? []), ...late.filter((c) => c.thresholdPercent === 80)],
                budgetCrossings: [...(decided.budgetCrossings ?? []), ...late],
              }
            : {}),
          ...(state.globalCostPercent !== undefined ? { globalCostPercent: state.globalCostPercent } : {}),
        };
        if (state.waitedForGlobal) {
          // Out of the line: its turn came. A line that does not answer now prunes the entry
          // later (it is overdue within WAITER_STALE_MS of the waiter's schedule).
          await ctx.line
            ?.unregister(input.userId)
            .catch((err) => ctx.onGlobalError?.('leave line', describeError(err)));
        }
        return allowed;
      }
      continue;
    }
    // Admitted by an earlier write whose answer was lost: its shares are found by reading the shards
    // at its settle (the reservation names its team, so the team's shards are read too).
    const team = teamReservation(state, ctx.teams && ctx.teamOf(basis.snap, input.claimTeam)?.name);
    if (planned.kind === 'already-admitted')
      return allowedDecision(basis, input, planned, served, undefined, team);
    if (state.ambiguousWrite || state.resetWrite) {
      const landed = landedAdmission(input, belief.snap, planned.evaluation);
      if (landed) return allowedDecision(basis, input, landed, served, state.globalHeld, team);
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
    if (fresh) return deniedDecision(basis, planned);
    await items.read(key);
    state.sawItem = true;
  }
  throw new LimiterBusyError({ cause: new LimiterStoreError('contention outlasted every round') });
}

/**
 * The closed day's history write, after the admission landed. Any fault of it is logged and left:
 * the item holds the day until the next roll, which writes it again (core/limiter/history.ts), so
 * the decision never fails for it.
 */
async function recordHistory(ctx: LimiterContext, userId: string, write: HistoryWrite): Promise<void> {
  try {
    await ctx.history?.record(userId, write);
  } catch (err) {
    ctx.onHistoryError?.(describeError(err));
  }
}

/** The admission's one conditional write; a write that got no answer is marked for its recovery. */
async function writeAdmission(
  ctx: LimiterContext,
  key: string,
  plan: UpdatePlan,
  state: DecideState,
): Promise<WriteResult> {
  try {
    return await ctx.items.write(key, plan);
  } catch (err) {
    // No answer: the write may or may not have landed. Its marker will tell (next round, or
    // the admission's recovery).
    if (err instanceof StoreFaultError) {
      if (err.mayHaveLanded) state.ambiguousWrite = true;
      else state.resetWrite = true;
    }
    throw err;
  }
}

/**
 * The budget thresholds this admission's write crossed but did not mark (planned from a count a
 * few short: unmarkedCrossings), each marked by one more conditional write — only in that race, so
 * a 100 % crossing is never lost to it. A mark another admission set first is its event, not ours.
 */
async function markLateCrossings(
  ctx: LimiterContext,
  key: string,
  policy: LimitPolicy,
  after: LimiterSnapshot,
  nowMs: number,
): Promise<WindowWarning[]> {
  const marked: WindowWarning[] = [];
  for (const crossing of unmarkedCrossings(policy, after, limitsOf(policy, after, nowMs), nowMs)) {
    // A fault leaves it unmarked, never fails the admission: the next admission in the window
    // (if any) reads the item and marks it.
    const result = await ctx.items.write(key, planCrossingMarks([crossing])).catch(() => undefined);
    if (result?.ok) marked.push(crossing);
  }
  return marked;
}
