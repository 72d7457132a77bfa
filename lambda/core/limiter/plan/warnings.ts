import type { Evaluation } from '../evaluate';
import { ExpressionWriter, type UpdatePlan } from '../expression';
import { WARNED_FULL_PREFIX, WARNED_PREFIX } from '../item/attributes';
import type { LimiterSnapshot } from '../item/state';
import type { BudgetCrossing, LimitPolicy, LimitState } from '../kinds/registry';
import { LIMIT_KINDS } from '../kinds/registry';

/**
 * A budget or quota this admission takes past a threshold, in a window not marked for it yet: 80 %
 * used (≤ 20 % left: `limit_warning` and the 80 % `Budget Threshold Crossed`) or 100 % (nothing
 * left: the 100 % event). Each threshold has its own mark per window (`w_<limit>`, `wf_<limit>`).
 */
export type WindowWarning = BudgetCrossing;

export const WARNING_THRESHOLD = 0.2;

export function warningsOf(
  policy: LimitPolicy,
  belief: LimiterSnapshot,
  evaluation: Evaluation,
  nowMs: number,
  weight = 1,
): WindowWarning[] {
  const reservation = evaluation.reservation;
  if (!reservation) return [];
  const reserved = { tokens: reservation.reservedTokens, costMicroUsd: reservation.reservedCostMicroUsd };
  // What is left once this admission's reservation is taken.
  return thresholdsCrossed(policy, belief, evaluation.limits, nowMs, (state, warns) => {
    return state.remaining - warns.taken(reserved, weight);
  });
}

/**
 * The thresholds an admission's own write reached but did not mark: window counters are bounded in
 * the write's condition, not pinned, so an admission racing others can be planned from a count a
 * few short of the one it writes, and plan no crossing although its write crosses. Read from the
 * item the write returned (`after`, its own answer) and the limits on it: each threshold the limit
 * now stands at or past, in a window not marked for it. The store marks them in one more write.
 */
export function unmarkedCrossings(
  policy: LimitPolicy,
  after: LimiterSnapshot,
  limits: readonly LimitState[],
  nowMs: number,
): WindowWarning[] {
  return thresholdsCrossed(policy, after, limits, nowMs, (state) => state.remaining);
}

type Warns = NonNullable<(typeof LIMIT_KINDS)[number]['warns']>;

/**
 * Each budget or quota that warns (not in shadow) with `left(state)` remaining, at or past a
 * threshold in a window `marks` (the item's `w_`/`wf_`) has not marked: 80 % used (≤ 20 % left)
 * and 100 % (nothing left).
 */
function thresholdsCrossed(
  policy: LimitPolicy,
  marks: LimiterSnapshot,
  limits: readonly LimitState[],
  nowMs: number,
  left: (state: LimitState, warns: Warns) => number,
): WindowWarning[] {
  const crossings: WindowWarning[] = [];
  for (const kind of LIMIT_KINDS) {
    if (!kind.warns || policy.shadow?.includes(kind.name)) continue;
    const state = limits.find((l) => l.name === kind.name);
    if (!state || state.limit <= 0) continue;
    const window = kind.warns.windowOf(nowMs);
    const remaining = Math.max(0, left(state, kind.warns));
    const crossing = {
      limit: kind.name,
      window,
      remaining,
      limitValue: state.limit,
      unit: kind.unit,
      resetAtEpochMs: state.resetAtEpochMs,
    };
    if (marks.warned[kind.name] !== window && remaining <= state.limit * WARNING_THRESHOLD)
      crossings.push({ ...crossing, thresholdPercent: 80 });
    if (marks.warnedFull?.[kind.name] !== window && remaining <= 0)
      crossings.push({ ...crossing, thresholdPercent: 100 });
  }
  return crossings;
}

/**
 * limit_warning (80 %) and the 100 % event, once per limit, threshold and window: the admission that
 * crosses it marks the window; the condition makes sure no other admission marked it first.
 */
export function planWarningMarks(w: ExpressionWriter, warnings: readonly WindowWarning[]): void {
  for (const warning of warnings) {
    const prefix = warning.thresholdPercent === 100 ? WARNED_FULL_PREFIX : WARNED_PREFIX;
    const marked = w.name(`${prefix}${warning.limit}`);
    const window = w.value(warning.window);
    w.condition(`(attribute_not_exists(${marked}) OR ${marked} <> ${window})`);
    w.set(`${marked} = ${window}`);
  }
}

/** The marks of crossings an admission's write reached but did not plan (unmarkedCrossings): one write. */
export function planCrossingMarks(crossings: readonly WindowWarning[]): UpdatePlan {
  const w = new ExpressionWriter();
  planWarningMarks(w, crossings);
  return w.build();
}
