import { describeError } from '../../core/errors';
import { budgetCrossedDetail, EVENT_TYPES } from '../../core/events';
import type { BudgetCrossing } from '../../core/limiter/decision';
import type { EventsPort, LogPort } from '../ports';

/**
 * `Budget Threshold Crossed` (SPEC §9.5) for each crossing the admission's write decided (its
 * `w_`/`wf_` marks make each one once per limit, threshold and window). A failed publish is
 * logged, never turned into a failed request: the user was admitted either way.
 */
export async function publishBudgetCrossings(
  deps: { readonly events?: EventsPort; readonly log: LogPort },
  userId: string,
  requestId: string,
  crossings: readonly BudgetCrossing[] | undefined,
  nowMs: number,
): Promise<void> {
  if (!deps.events) return;
  for (const crossing of crossings ?? []) {
    await deps.events
      .publish(EVENT_TYPES.budgetThresholdCrossed, budgetCrossedDetail(userId, requestId, crossing, nowMs))
      .catch((err) =>
        deps.log.error('could not publish Budget Threshold Crossed', {
          userId,
          limit: crossing.limit,
          thresholdPercent: crossing.thresholdPercent,
          error: describeError(err),
        }),
      );
  }
}
