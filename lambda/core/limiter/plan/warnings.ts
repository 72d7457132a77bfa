import type { Evaluation } from '../evaluate';
import type { LimiterSnapshot } from '../item/state';
import type { LimitPolicy, LimitWarning } from '../kinds/registry';
import { LIMIT_KINDS } from '../kinds/registry';

/** A budget or quota this admission leaves at ≤ 20 %, in a window not warned about yet. */
export type WindowWarning = LimitWarning & { readonly window: number };

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
    if (belief.warned[kind.name] === window) continue;
    const remaining = Math.max(0, state.remaining - kind.warns.taken(reserved, weight));
    if (remaining > state.limit * WARNING_THRESHOLD) continue;
    warnings.push({
      limit: kind.name,
      window,
      remaining,
      limitValue: state.limit,
      unit: kind.unit,
      resetAtEpochMs: state.resetAtEpochMs,
    });
  }
  return warnings;
}
