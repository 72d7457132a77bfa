import { isoWeekNumber, WEEK_MS, weekStartMs } from '../windows';
import { type BudgetWindow, windowBudget } from './window-budget';

/** The ISO week, Monday 00:00 UTC to the next Monday: the marker's `w`. */
const WEEKLY: BudgetWindow = {
  markerField: 'w',
  windowOf: isoWeekNumber,
  windowEndMs: (week) => weekStartMs(week + 1),
  windowSeconds: WEEK_MS / 1000,
};

/**
 * Tokens per ISO week (`tw` week number, `twu` tokens reserved or used in it), like the daily and
 * monthly token budgets (window-budget.ts): reserved before the model runs, reconciled after into
 * the week it was taken from, or nowhere. No tier sets it by default; counted anyway, so one set
 * later by an admin or `LIMITS_CONFIG` applies to what the week already used.
 */
export const weeklyTokens = windowBudget({
  name: 'weeklyTokens',
  label: 'weekly tokens',
  adminFlag: 'weekly-tokens',
  unit: 'tokens',
  windowAttr: 'tw',
  usedAttr: 'twu',
  ...WEEKLY,
});
