import type { SettleOutcome } from '../../lambda/services/ports';

/**
 * A settle's outcome without the limits it reports (`limitsAfter`), for tests about what it
 * applied and released; the limits themselves are compared exactly with `status` in
 * test/integration/dynamo-limiter.test.ts ("refunds unused tokens on reconcile, once").
 */
export function bare<T extends SettleOutcome>({ limitsAfter: _limits, ...rest }: T): Omit<T, 'limitsAfter'> {
  return rest;
}
