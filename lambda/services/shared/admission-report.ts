import type { AllowedDecision } from '../../core/limiter/decision';
import type { LogPort, MetricsPort } from '../ports';

/**
 * Shadow limits (SPEC §2 v2) the admission exceeded: a log line and a `ShadowLimitExceeded` count
 * per limit, so operators see what a limit would refuse before they enforce it.
 */
export function reportShadow(
  deps: { readonly metrics: MetricsPort; readonly log: LogPort },
  userId: string,
  requestId: string,
  decision: AllowedDecision,
): void {
  for (const limit of decision.shadowExceeded ?? []) {
    deps.metrics.count('ShadowLimitExceeded');
    deps.log.info('shadow limit exceeded (not enforced)', { userId, requestId, limit });
  }
}
