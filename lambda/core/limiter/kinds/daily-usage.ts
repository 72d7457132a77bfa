import { dailyCostUsd } from './cost-budgets';
import { type KindSnapshot, storedNumber } from './kind-snapshot';
import { dailyTokens } from './token-budgets';
import { dailyMessages } from './window-quota';

/**
 * What a user used in a UTC day, as the daily kinds count it: the usage history (`hist`) and the
 * admin's `top` read a day from these counters. Each daily kind keeps `[window, count]` as its
 * attributes (shapes/window-counter.ts); this names them once for the readers outside kinds/.
 */
const counterOf = (kind: { readonly attributes: readonly string[] }) => ({
  window: kind.attributes[0] as string,
  count: kind.attributes[1] as string,
});

export const DAY_COUNTERS = {
  tokens: counterOf(dailyTokens),
  /** µUSD. */
  costMicroUsd: counterOf(dailyCostUsd),
  messages: counterOf(dailyMessages),
} as const;

export type DayCounter = keyof typeof DAY_COUNTERS;

/** What `which` counted in UTC day `day` (0 when its counter is in another day). */
export function usedInDay(snap: KindSnapshot, which: DayCounter, day: number): number {
  const { window, count } = DAY_COUNTERS[which];
  return storedNumber(snap, window) === day ? (storedNumber(snap, count) ?? 0) : 0;
}

/** The day the daily token counter was last written in: the user's last active day. */
export function lastActiveDay(snap: KindSnapshot): number | undefined {
  return storedNumber(snap, DAY_COUNTERS.tokens.window);
}
