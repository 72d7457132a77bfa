import type { Evaluation } from '../evaluate';
import type { LimiterSnapshot } from '../item/state';
import type { BudgetCrossing, LimitPolicy } from '../kinds/registry';
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
  const warnings: WindowWarning[] = [];
  for (const kind of LIMIT_KINDS) {
    if (!kind.warns || policy.shadow?.includes(kind.name)) continue;
    const state = evaluation.limits.find((l) => l.name === kind.name);
    if (!state || state.limit <= 0) continue;
    const window = kind.warns.windowOf(nowMs);
    const remaining = Math.max(0, state.remaining - kind.warns.taken(reserved, weight));
    const crossing = {
      limit: kind.name,
      window,
      remaining,
      limitValue: state.limit,
      unit: kind.unit,
      resetAtEpochMs: state.resetAtEpochMs,
    };
    if (belief.warned[kind.name] !== window && remaining <= state.limit * WARNING_THRESHOLD)
      warnings.push({ ...crossing, thresholdPercent: 80 });
    if (belief.warnedFull?.[kind.name] !== window && remaining <= 0)
      warnings.push({ ...crossing, thresholdPercent: 100 });
  }
  return warnings;
}
