import type { MetricName } from '../metrics';
import type { ExpressionWriter } from './expression';
import { type LimiterSnapshot, RESERVATION_PREFIX } from './snapshot';
import type { LimitName, LimitPolicy, LimitState } from './types';
import { bucketOf, DAY_MS, dayNumber, HOUR_MS, hourNumber } from './windows';

export type LimitUnit = 'messages' | 'tokens' | 'usd' | 'requests';

/** When a limit holds a request back: until when, and from now how long. */
export interface Blocking {
  readonly limit: LimitName;
  readonly retryAfterMs: number;
  readonly resetAtEpochMs: number;
}

export interface KindInput {
  readonly policy: LimitPolicy;
  readonly snap: LimiterSnapshot;
  readonly nowMs: number;
}

/**
 * One kind of per-user limit, declared once: its name and unit, its window, how it is evaluated
 * and planned into the one conditional write, how `status` shows it, what it emits when it refuses,
 * which item attributes it keeps (for `reset`), and when the k-th waiting request fits it. Adding
 * a limit is one more entry of {@link LIMIT_KINDS}, its tests and its docs.
 */
export interface LimitKind {
  readonly name: LimitName;
  readonly unit: LimitUnit;
  /** The metric a refusal by this limit emits. */
  readonly metric: MetricName;
  /** What `reset --scope` clears it (and `all`). */
  readonly resetScope: 'messages' | 'tokens';
  /** The item attributes it keeps. */
  readonly attributes: readonly string[];
  /** Its window in seconds (a bucket's refill horizon: capacity × interval). */
  windowSeconds(policy: LimitPolicy): number;
  /** Its state now, when the policy sets it (an optional limit left unset: undefined). */
  state(input: KindInput): LimitState | undefined;
  /** Token budgets only: tokens left for one request (input and output) under this budget. */
  tokensLeft?(input: KindInput): number;
  /**
   * Does it hold back a request that would reserve `reservedTokens` (undefined: the token budgets
   * cannot cover even the minimum output)?
   */
  blocking(state: LimitState, input: KindInput, reservedTokens: number | undefined): Blocking | undefined;
  /**
   * Its part of the admission write: a condition that makes the update correct whatever the item
   * holds (the belief only picks the shape), and the update.
   */
  plan(
    w: ExpressionWriter,
    input: KindInput & { readonly reservedTokens: number; readonly requestId: string },
  ): void;
  /** When the k-th waiting request fits this limit, each one ahead taking one message (epoch ms). */
  readyAtEpochMs(position: number, state: LimitState, policy: LimitPolicy): number;
}

/**
 * Message bucket (GCRA). Idle (tat ≤ now): restart from now. Busy (now < tat ≤ now + τ): push tat
 * one interval on. Either way tat stays ≤ now + τ + T, so at most `capacity` messages pass back to
 * back and then one per interval, however many writers race.
 */
const messageRate: LimitKind = {
  name: 'messageRate',
  unit: 'messages',
  metric: 'MessageRateLimitExceeded',
  resetScope: 'messages',
  attributes: ['tat'],
  windowSeconds: (policy) => (bucketOf(policy).capacity * bucketOf(policy).intervalMs) / 1000,
  state({ policy, snap, nowMs }) {
    const bucket = bucketOf(policy);
    // The arrival time never lags behind now: an idle bucket is simply full.
    const tat = Math.max(snap.tat ?? nowMs, nowMs);
    const ahead = tat - nowMs;
    const remaining =
      ahead > bucket.toleranceMs
        ? 0
        : Math.floor((bucket.toleranceMs - ahead) / bucket.intervalMs + 1e-9) + 1;
    return {
      name: 'messageRate',
      limit: bucket.capacity,
      used: bucket.capacity - remaining,
      remaining,
      resetAtEpochMs: tat,
    };
  },
  blocking(state, { policy, nowMs }) {
    if (state.remaining > 0) return undefined;
    const ahead = state.resetAtEpochMs - nowMs;
    return {
      limit: 'messageRate',
      retryAfterMs: Math.ceil(ahead - bucketOf(policy).toleranceMs),
      resetAtEpochMs: state.resetAtEpochMs,
    };
  },
  plan(w, { policy, snap, nowMs }) {
    const bucket = bucketOf(policy);
    const tat = w.name('tat');
    const now = w.value(nowMs);
    if (snap.tat === undefined || snap.tat <= nowMs) {
      w.condition(`(attribute_not_exists(${tat}) OR ${tat} <= ${now})`);
      w.set(`${tat} = ${w.value(nowMs + bucket.intervalMs)}`);
    } else {
      w.condition(`(${tat} > ${now} AND ${tat} <= ${w.value(nowMs + bucket.toleranceMs)})`);
      w.set(`${tat} = ${tat} + ${w.value(bucket.intervalMs)}`);
    }
  },
  readyAtEpochMs(position, state, policy) {
    // The bucket is whole at resetAt; it holds k messages from resetAt − (capacity − k) × interval.
    const { capacity, intervalMs } = bucketOf(policy);
    return state.resetAtEpochMs - (capacity - position) * intervalMs;
  },
};

/**
 * A message quota in a fixed window aligned to UTC. Messages are counted even without a quota
 * configured, so a quota set later by an admin applies to what was already sent. Same window:
 * count < limit. New window: only if the stored window is older (another writer may have opened it).
 */
function windowQuota(args: {
  readonly name: 'hourlyMessages' | 'dailyMessages';
  readonly windowAttr: 'hw' | 'dw';
  readonly countAttr: 'hc' | 'dc';
  readonly windowMs: number;
  readonly windowOf: (ms: number) => number;
}): LimitKind {
  const { name, windowAttr, countAttr, windowMs, windowOf } = args;
  const countIn = (snap: LimiterSnapshot, nowMs: number) =>
    snap[windowAttr] === windowOf(nowMs) ? (snap[countAttr] ?? 0) : 0;
  return {
    name,
    unit: 'messages',
    metric: 'MessageRateLimitExceeded',
    resetScope: 'messages',
    attributes: [windowAttr, countAttr],
    windowSeconds: () => windowMs / 1000,
    state({ policy, snap, nowMs }) {
      const limit = policy[name];
      if (limit === undefined) return undefined;
      const used = countIn(snap, nowMs);
      const next = (windowOf(nowMs) + 1) * windowMs;
      return { name, limit, used, remaining: Math.max(0, limit - used), resetAtEpochMs: next };
    },
    blocking(state, { nowMs }) {
      if (state.used < state.limit) return undefined;
      return {
        limit: name,
        retryAfterMs: state.resetAtEpochMs - nowMs,
        resetAtEpochMs: state.resetAtEpochMs,
      };
    },
    plan(w, { policy, snap, nowMs }) {
      const current = windowOf(nowMs);
      const win = w.name(windowAttr);
      const count = w.name(countAttr);
      const limit = policy[name];
      if (snap[windowAttr] === current) {
        const underLimit = limit === undefined ? '' : ` AND ${count} < ${w.value(limit)}`;
        w.condition(`${win} = ${w.value(current)}${underLimit}`);
        w.set(`${count} = ${count} + ${w.value(1)}`);
      } else {
        w.condition(`(attribute_not_exists(${win}) OR ${win} < ${w.value(current)})`);
        w.set(`${win} = ${w.value(current)}`, `${count} = ${w.value(1)}`);
      }
    },
    readyAtEpochMs: (position, state) => (state.remaining >= position ? 0 : state.resetAtEpochMs),
  };
}

/**
 * The daily token budget: reserve-then-reconcile. Same day: used + reserved ≤ budget, so concurrent
 * reservations can never overdraw it. New day: start from this reservation.
 */
const dailyTokens: LimitKind = {
  name: 'dailyTokens',
  unit: 'tokens',
  metric: 'TokenRateLimitExceeded',
  resetScope: 'tokens',
  attributes: ['td', 'tu'],
  windowSeconds: () => DAY_MS / 1000,
  state({ policy, snap, nowMs }) {
    const used = snap.td === dayNumber(nowMs) ? (snap.tu ?? 0) : 0;
    return {
      name: 'dailyTokens',
      limit: policy.dailyTokens,
      used,
      remaining: Math.max(0, policy.dailyTokens - used),
      resetAtEpochMs: (dayNumber(nowMs) + 1) * DAY_MS,
    };
  },
  tokensLeft: (input) => dailyTokens.state(input)!.remaining,
  blocking(state, { nowMs }, reservedTokens) {
    if (reservedTokens !== undefined && reservedTokens <= state.remaining) return undefined;
    return {
      limit: 'dailyTokens',
      retryAfterMs: state.resetAtEpochMs - nowMs,
      resetAtEpochMs: state.resetAtEpochMs,
    };
  },
  plan(w, { policy, snap, nowMs, reservedTokens, requestId }) {
    const day = dayNumber(nowMs);
    const td = w.name('td');
    const tu = w.name('tu');
    if (snap.td === day) {
      w.condition(`${td} = ${w.value(day)} AND ${tu} <= ${w.value(policy.dailyTokens - reservedTokens)}`);
      w.set(`${tu} = ${tu} + ${w.value(reservedTokens)}`);
    } else {
      w.condition(`(attribute_not_exists(${td}) OR ${td} < ${w.value(day)})`);
      w.set(`${td} = ${w.value(day)}`, `${tu} = ${w.value(reservedTokens)}`);
      // Reservations of earlier days no longer matter: drop the markers we know of.
      for (const [id, pending] of Object.entries(snap.reservations)) {
        if (pending.d < day && id !== requestId) w.remove(w.name(`${RESERVATION_PREFIX}${id}`));
      }
    }
  },
  // Too little left for even one request: not before the next UTC day.
  readyAtEpochMs: (_position, state, policy) =>
    state.remaining < policy.minOutputTokens ? state.resetAtEpochMs : 0,
};

/** Every per-user limit, in the order `status` lists them. */
export const LIMIT_KINDS: readonly LimitKind[] = [
  messageRate,
  windowQuota({
    name: 'hourlyMessages',
    windowAttr: 'hw',
    countAttr: 'hc',
    windowMs: HOUR_MS,
    windowOf: hourNumber,
  }),
  windowQuota({
    name: 'dailyMessages',
    windowAttr: 'dw',
    countAttr: 'dc',
    windowMs: DAY_MS,
    windowOf: dayNumber,
  }),
  dailyTokens,
];

export function isLimitName(name: string): name is LimitName {
  return LIMIT_KINDS.some((k) => k.name === name);
}

export function limitKind(name: LimitName): LimitKind {
  const kind = LIMIT_KINDS.find((k) => k.name === name);
  if (!kind) throw new Error(`no limit kind ${name}`);
  return kind;
}

/** The item attributes a `reset` of this scope clears. */
export function resetAttributes(scope: 'messages' | 'tokens' | 'all'): string[] {
  return LIMIT_KINDS.filter((k) => scope === 'all' || k.resetScope === scope).flatMap((k) => k.attributes);
}
