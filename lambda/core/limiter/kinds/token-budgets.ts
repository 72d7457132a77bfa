import { DAY_MS, dayNumber } from '../windows';
import { counted, untilWindowEnds } from './global-part';
import { positiveInt } from './kind';
import { DAILY, MONTHLY, windowBudget } from './window-budget';

/** Tokens per UTC day (`td` day, `tu` tokens; `tuf` what a reset freed of it): every tier has one. */
export const dailyTokens = windowBudget({
  name: 'dailyTokens',
  label: 'daily tokens',
  adminFlag: 'daily-tokens',
  unit: 'tokens',
  windowAttr: 'td',
  usedAttr: 'tu',
  freedAttr: 'tuf',
  required: true,
  ...DAILY,
  /** Tokens per UTC day across all users (reserve-then-reconcile). */
  global: {
    description: 'Tokens per UTC day across all users (reserve-then-reconcile).',
    schema: positiveInt,
    countsWhole: false,
    stored: (n) => n,
    shown: (n) => n,
    counter: { windowAttr: 'td', countAttr: 'tu', window: 'day' },
    refundsUnused: true,
    used: counted({ windowAttr: 'td', countAttr: 'tu', window: 'day' }),
    takes: (ask) => ask.tokens,
    retryAfterMs: untilWindowEnds('day', DAY_MS),
    resetAtEpochMs: (_shards, nowMs) => (dayNumber(nowMs) + 1) * DAY_MS,
  },
});

/** Tokens per UTC calendar month (`tm` month, `tmu` tokens). */
export const monthlyTokens = windowBudget({
  name: 'monthlyTokens',
  label: 'monthly tokens',
  adminFlag: 'monthly-tokens',
  unit: 'tokens',
  windowAttr: 'tm',
  usedAttr: 'tmu',
  ...MONTHLY,
});
