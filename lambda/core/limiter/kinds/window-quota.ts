import { DAY_MS, dayNumber, HOUR_MS, hourNumber } from '../windows';
import { counted, type GlobalPart, untilWindowEnds } from './global-part';
import { type LimitKind, limitIn, positiveInt } from './kind';
import { countIn, countInWindow } from './shapes/window-counter';

/**
 * A message quota in a fixed window aligned to UTC (shapes/window-counter.ts). Messages are
 * counted even without a quota configured, so a quota set later by an admin applies to what was
 * already sent. Same window: count < limit. New window: only if the stored window is older
 * (another writer may have opened it).
 */
export function windowQuota<N extends string>(args: {
  readonly name: N;
  readonly label: string;
  readonly adminFlag: string;
  readonly windowAttr: string;
  readonly countAttr: string;
  /** An accounting counter: where a reset records what it freed (`LimitKind.resetKeeps`). */
  readonly freedAttr?: string;
  readonly windowMs: number;
  readonly windowOf: (ms: number) => number;
  /** Its stack-wide counterpart, if it has one. */
  readonly global?: GlobalPart;
}): LimitKind<N, N, false> {
  const { name, windowAttr, countAttr, freedAttr, windowMs, windowOf } = args;
  return {
    name,
    label: args.label,
    waitsFor: 'time',
    policyField: { name, schema: positiveInt, required: false },
    adminFlag: { flag: args.adminFlag, field: name },
    unit: 'messages',
    metric: 'MessageRateLimitExceeded',
    resetScope: 'messages',
    attributes: freedAttr ? [windowAttr, countAttr, freedAttr] : [windowAttr, countAttr],
    ...(freedAttr ? { resetKeeps: { count: countAttr, freed: freedAttr } } : {}),
    ...(args.global ? { global: args.global } : {}),
    example: { policy: { [name]: 2 }, input: 10, maxTokens: 20, fill: 2 },
    windowSeconds: () => windowMs / 1000,
    quota: { perShown: 1 },
    warns: { windowOf, taken: (_reserved, weight) => weight },
    windowEndsAtMs: (nowMs) => (windowOf(nowMs) + 1) * windowMs,
    state({ policy, snap, nowMs }) {
      const limit = limitIn(policy, name);
      if (limit === undefined) return undefined;
      const window = windowOf(nowMs);
      const used = countIn(snap, windowAttr, countAttr, window, freedAttr);
      const next = (window + 1) * windowMs;
      return { name, limit, used, remaining: Math.max(0, limit - used), resetAtEpochMs: next };
    },
    blocking(state, { nowMs, weight = 1 }) {
      if (state.used + weight <= state.limit) return undefined;
      return {
        limit: name,
        retryAfterMs: state.resetAtEpochMs - nowMs,
        resetAtEpochMs: state.resetAtEpochMs,
      };
    },
    plan(w, { policy, snap, nowMs, enforce, weight = 1 }) {
      countInWindow(w, {
        snap,
        windowAttr,
        countAttr,
        window: windowOf(nowMs),
        amount: weight,
        limit: enforce ? limitIn(policy, name) : undefined,
        freedAttr,
      });
    },
    readyAtEpochMs: (position, state) => (state.remaining >= position ? 0 : state.resetAtEpochMs),
  };
}

/** Messages per UTC hour (`hw` hour number, `hc` count). */
export const hourlyMessages = windowQuota({
  name: 'hourlyMessages',
  label: 'hourly messages',
  adminFlag: 'hourly',
  windowAttr: 'hw',
  countAttr: 'hc',
  windowMs: HOUR_MS,
  windowOf: hourNumber,
  /** Messages per UTC hour across all users (a message counts its model's weight). */
  global: {
    description: 'Messages per UTC hour across all users.',
    schema: positiveInt,
    countsWhole: true,
    stored: (n) => n,
    shown: (n) => n,
    counter: { windowAttr: 'hw', countAttr: 'hc', window: 'hour' },
    refundsUnused: false,
    used: counted({ windowAttr: 'hw', countAttr: 'hc', window: 'hour' }),
    takes: (ask) => ask.weight,
    retryAfterMs: untilWindowEnds('hour', HOUR_MS),
    resetAtEpochMs: (_shards, nowMs) => (hourNumber(nowMs) + 1) * HOUR_MS,
  },
});

/** Messages per UTC day (`dw` day number, `dc` count; `dcf` what a reset freed of it). */
export const dailyMessages = windowQuota({
  name: 'dailyMessages',
  label: 'daily messages',
  adminFlag: 'daily',
  windowAttr: 'dw',
  countAttr: 'dc',
  freedAttr: 'dcf',
  windowMs: DAY_MS,
  windowOf: dayNumber,
});
