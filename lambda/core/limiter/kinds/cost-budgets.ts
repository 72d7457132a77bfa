import * as z from 'zod';
import { microUsdToUsd, usdToMicroUsd } from '../../models';
import { DAY_MS, dayNumber, monthNumber, monthStartMs } from '../windows';
import { counted, type GlobalPart, untilWindowEnds } from './global-part';
import { DAILY, MONTHLY, windowBudget } from './window-budget';

/**
 * A cost budget's stack-wide (and team) part: USD configured, µUSD counted in the shard's window
 * under the same attribute names as the user's own, reserved then reconciled.
 */
function costGlobalPart(part: {
  readonly description: string;
  readonly maxUsd: number;
  readonly counter: NonNullable<GlobalPart['counter']>;
  readonly retryAfterMs: GlobalPart['retryAfterMs'];
  readonly resetAtEpochMs: GlobalPart['resetAtEpochMs'];
}): GlobalPart {
  return {
    description: part.description,
    schema: z.number().positive().max(part.maxUsd),
    countsWhole: false,
    stored: usdToMicroUsd,
    shown: microUsdToUsd,
    counter: part.counter,
    refundsUnused: true,
    used: counted(part.counter),
    takes: (ask) => ask.costMicroUsd,
    retryAfterMs: part.retryAfterMs,
    resetAtEpochMs: part.resetAtEpochMs,
  };
}

/** Cost per UTC day, in USD, counted in µUSD (`cd` day, `cu` µUSD; `cuf` what a reset freed of it). */
export const dailyCostUsd = windowBudget({
  name: 'dailyCostUsd',
  label: 'daily cost',
  adminFlag: 'daily-cost',
  unit: 'usd',
  windowAttr: 'cd',
  usedAttr: 'cu',
  freedAttr: 'cuf',
  ...DAILY,
  /** USD per UTC day across all users, or a team's members (reserve-then-reconcile; stored in µUSD). */
  global: costGlobalPart({
    description: 'USD per UTC day across all users (reserve-then-reconcile, stored in µUSD).',
    maxUsd: 10_000_000,
    counter: { windowAttr: 'cd', countAttr: 'cu', window: 'day' },
    retryAfterMs: untilWindowEnds('day', DAY_MS),
    resetAtEpochMs: (_shards, nowMs) => (dayNumber(nowMs) + 1) * DAY_MS,
  }),
});

/** Cost per UTC calendar month, in USD, counted in µUSD (`cm` month, `cmu` µUSD). */
export const monthlyCostUsd = windowBudget({
  name: 'monthlyCostUsd',
  label: 'monthly cost',
  adminFlag: 'monthly-cost',
  unit: 'usd',
  windowAttr: 'cm',
  usedAttr: 'cmu',
  ...MONTHLY,
  /** USD per UTC calendar month across all users, or a team's members (limits.teams, SPEC §9.4). */
  global: costGlobalPart({
    description: 'USD per UTC calendar month across all users (reserve-then-reconcile, stored in µUSD).',
    maxUsd: 100_000_000,
    counter: { windowAttr: 'cm', countAttr: 'cmu', window: 'month' },
    retryAfterMs: (nowMs, windows) => monthStartMs(windows.month + 1) - nowMs,
    resetAtEpochMs: (_shards, nowMs) => monthStartMs(monthNumber(nowMs) + 1),
  }),
});
