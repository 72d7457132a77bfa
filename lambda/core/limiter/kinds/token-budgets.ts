import { DAILY, MONTHLY, windowBudget } from './window-budget';

/** Tokens per UTC day (`td` day, `tu` tokens): every tier has one. */
export const dailyTokens = windowBudget({
  name: 'dailyTokens',
  label: 'daily tokens',
  adminFlag: 'daily-tokens',
  unit: 'tokens',
  windowAttr: 'td',
  usedAttr: 'tu',
  required: true,
  ...DAILY,
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
