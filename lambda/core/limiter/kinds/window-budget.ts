import { microUsdToUsd, outputTokensFor, usdToMicroUsd } from '../../models';
import { DAY_MS, dayNumber, monthNumber, monthStartMs } from '../windows';
import type { GlobalPart } from './global-part';
import {
  type Amount,
  type KindInput,
  type KindPolicy,
  type LimitKind,
  limitIn,
  markedWindow,
  positiveInt,
  usd,
} from './kind';
import { countIn, countInWindow, settleInWindow } from './shapes/window-counter';

/** A budget's fixed window: which one `ms` falls in, when it ends, and its length for `status`. */
export interface BudgetWindow {
  /** The reservation marker's field naming the window it was counted in. */
  readonly markerField: string;
  readonly windowOf: (ms: number) => number;
  readonly windowEndMs: (window: number) => number;
  readonly windowSeconds: number;
}

/** The UTC day: the marker's `d`. */
export const DAILY: BudgetWindow = {
  markerField: 'd',
  windowOf: dayNumber,
  windowEndMs: (day) => (day + 1) * DAY_MS,
  windowSeconds: DAY_MS / 1000,
};

/** The UTC calendar month: the marker's `m`. */
export const MONTHLY: BudgetWindow = {
  markerField: 'm',
  windowOf: monthNumber,
  windowEndMs: (month) => monthStartMs(month + 1),
  windowSeconds: (30 * DAY_MS) / 1000,
};

/**
 * A budget over a fixed UTC window (day, ISO week, calendar month), of tokens or of cost (µUSD):
 * reserve-then-reconcile. Same window: used + reserved ≤ budget, so concurrent reservations can
 * never overdraw it. New window: start from this reservation. Usage is counted even without a
 * budget configured, so one set later by an admin applies to what was already used. The marker
 * records the window each reservation was counted in (`markerField`), and the settle gives a
 * refund back to that window or nowhere (shapes/window-counter.ts).
 */
export function windowBudget<N extends string, R extends boolean = false>(
  args: {
    readonly name: N;
    readonly label: string;
    readonly adminFlag: string;
    readonly unit: 'tokens' | 'usd';
    readonly windowAttr: string;
    readonly usedAttr: string;
    /** An accounting counter: where a reset records what it freed (`LimitKind.resetKeeps`). */
    readonly freedAttr?: string;
    /** Every tier sets it (`dailyTokens`). @default false */
    readonly required?: R;
    /** Its stack-wide counterpart, if it has one. */
    readonly global?: GlobalPart;
  } & BudgetWindow,
): LimitKind<N, N, R> {
  const { name, unit, windowAttr, usedAttr, freedAttr, markerField, windowOf, windowEndMs } = args;
  const isCost = unit === 'usd';
  /** The budget in stored units: tokens, or µUSD for a cost budget (configured in USD). */
  const budgetOf = (policy: KindPolicy) => {
    const value = limitIn(policy, name);
    return value === undefined ? undefined : isCost ? usdToMicroUsd(value) : value;
  };
  const amountOf = (a: Amount) => (isCost ? a.costMicroUsd : a.tokens);
  const shown = (stored: number) => (isCost ? microUsdToUsd(stored) : stored);
  const leftIn = ({ policy, snap, nowMs }: KindInput) => {
    const budget = budgetOf(policy);
    if (budget === undefined) return undefined;
    return Math.max(0, budget - countIn(snap, windowAttr, usedAttr, windowOf(nowMs), freedAttr));
  };
  return {
    name,
    label: args.label,
    waitsFor: 'time',
    policyField: { name, schema: isCost ? usd : positiveInt, required: (args.required ?? false) as R },
    adminFlag: { flag: args.adminFlag, field: name },
    unit,
    metric: 'TokenRateLimitExceeded',
    resetScope: isCost ? 'cost' : 'tokens',
    attributes: freedAttr ? [windowAttr, usedAttr, freedAttr] : [windowAttr, usedAttr],
    ...(freedAttr ? { resetKeeps: { count: usedAttr, freed: freedAttr } } : {}),
    markerField,
    ...(args.global ? { global: args.global } : {}),
    // Each request reserves 50 tokens (26 or 27 µUSD on the echo model): two fit, the third does not.
    example: { policy: { [name]: isCost ? 0.00006 : 100 }, input: 10, maxTokens: 40, fill: 2 },
    windowSeconds: () => args.windowSeconds,
    // The draft's quota is an integer: a cost budget is told in µUSD.
    quota: isCost ? { unit: 'usd-micros', perShown: 1_000_000 } : { unit: 'tokens', perShown: 1 },
    warns: { windowOf, taken: (reserved) => shown(amountOf(reserved)) },
    windowEndsAtMs: (nowMs) => windowEndMs(windowOf(nowMs)),
    state(input) {
      const budget = budgetOf(input.policy);
      if (budget === undefined) return undefined;
      const window = windowOf(input.nowMs);
      const used = countIn(input.snap, windowAttr, usedAttr, window, freedAttr);
      return {
        name,
        limit: shown(budget),
        used: shown(used),
        remaining: shown(Math.max(0, budget - used)),
        resetAtEpochMs: windowEndMs(window),
      };
    },
    outputLeft(input, inputTokens) {
      const left = leftIn(input);
      if (left === undefined) return Number.POSITIVE_INFINITY;
      return isCost ? outputTokensFor(input.model, left, inputTokens) : left - inputTokens;
    },
    blocking(state, input, need) {
      const left = leftIn(input) ?? Number.POSITIVE_INFINITY;
      if (amountOf(need) <= left) return undefined;
      return {
        limit: name,
        retryAfterMs: state.resetAtEpochMs - input.nowMs,
        resetAtEpochMs: state.resetAtEpochMs,
      };
    },
    // Opening a new window leaves the reservation markers of earlier ones alone: a marker lives
    // until its request settles, whatever windows roll (issue 20, finding 4).
    plan(w, { policy, snap, nowMs, reserved, enforce }) {
      countInWindow(w, {
        snap,
        windowAttr,
        countAttr: usedAttr,
        window: windowOf(nowMs),
        amount: amountOf(reserved),
        limit: enforce ? budgetOf(policy) : undefined,
        freedAttr,
      });
    },
    // Too little left for even one request: not before the next window.
    readyAtEpochMs: (_position, state, policy) =>
      !isCost && state.remaining < policy.minOutputTokens
        ? state.resetAtEpochMs
        : isCost && state.remaining <= 0
          ? state.resetAtEpochMs
          : 0,
    settle(w, { snap, nowMs, pending, delta }) {
      settleInWindow(w, {
        snap,
        windowAttr,
        countAttr: usedAttr,
        window: markedWindow(pending, markerField),
        currentWindow: windowOf(nowMs),
        amount: amountOf(delta),
      });
    },
  };
}
