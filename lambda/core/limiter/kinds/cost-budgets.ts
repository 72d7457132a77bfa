import * as z from 'zod';
import { microUsdToUsd, usdToMicroUsd } from '../../models';
import { DAY_MS, dayNumber, monthNumber, monthStartMs } from '../windows';
import { counted, untilWindowEnds } from './global-part';
import { DAILY, MONTHLY, windowBudget } from './window-budget';

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
  /** USD per UTC day across all users (reserve-then-reconcile; stored in µUSD). */
  global: {
    description: 'USD per UTC day across all users (reserve-then-reconcile, stored in µUSD).',
    schema: z.number().positive().max(10_000_000),
    countsWhole: false,
    stored: usdToMicroUsd,
    shown: microUsdToUsd,
    counter: { windowAttr: 'cd', countAttr: 'cu', window: 'day' },
    refundsUnused: true,
    used: counted({ windowAttr: 'cd', countAttr: 'cu', window: 'day' }),
    takes: (ask) => ask.costMicroUsd,
    retryAfterMs: untilWindowEnds('day', DAY_MS),
    resetAtEpochMs: (_shards, nowMs) => (dayNumber(nowMs) + 1) * DAY_MS,
  },
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
  global: {
    description: 'USD per UTC calendar month across all users (reserve-then-reconcile, stored in µUSD).',
    schema: z.number().positive().max(100_000_000),
    countsWhole: false,
    stored: usdToMicroUsd,
    shown: microUsdToUsd,
    counter: { windowAttr: 'cm', countAttr: 'cmu', window: 'month' },
    refundsUnused: true,
    used: counted({ windowAttr: 'cm', countAttr: 'cmu', window: 'month' }),
    takes: (ask) => ask.costMicroUsd,
    retryAfterMs: (nowMs, windows) => monthStartMs(windows.month + 1) - nowMs,
    resetAtEpochMs: (_shards, nowMs) => monthStartMs(monthNumber(nowMs) + 1),
  },
});
