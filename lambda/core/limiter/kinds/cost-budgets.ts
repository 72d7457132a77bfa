import { DAILY, MONTHLY, windowBudget } from './window-budget';

/** Cost per UTC day, in USD, counted in µUSD (`cd` day, `cu` µUSD). */
export const dailyCostUsd = windowBudget({
  name: 'dailyCostUsd',
  label: 'daily cost',
  adminFlag: 'daily-cost',
  unit: 'usd',
  windowAttr: 'cd',
  usedAttr: 'cu',
  ...DAILY,
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
});
