import { z } from 'zod';
import { microUsdToUsd, usdToMicroUsd } from '../models';
import { ExpressionWriter, type UpdatePlan } from './expression';
import { countInWindow, takeInFlightSlot } from './kinds';
import { type LimiterSnapshot, liveInFlight } from './snapshot';
import type { Tier } from './types';
import { DAY_MS, dayNumber, HOUR_MS, hourNumber } from './windows';

/**
 * Stack-wide limits (SPEC §2 v2 "Global limits"), exact and sharded: each counter is split over
 * `shards` items (`pk = global#<k>`), shard k holding its share of every limit, so the shares add
 * up to the limit exactly and each shard's conditional write keeps its own share. No shard is a
 * hot item: a decision writes one shard, chosen by what this instance last saw of each (the one
 * with most room); a full shard sends the request to the next one with room (docs/limiter.md).
 */
export const GLOBAL_LIMITS = ['requestsInFlight', 'hourlyMessages', 'dailyTokens', 'dailyCostUsd'] as const;
export type GlobalLimit = (typeof GLOBAL_LIMITS)[number];
/** As `status`, refusals and the admin CLI name them. */
export type GlobalLimitName = `global.${GlobalLimit}`;
export const GLOBAL_LIMIT_NAMES = GLOBAL_LIMITS.map((l) => `global.${l}` as const);

export interface GlobalLimits {
  /** Requests being answered at once across all users. */
  readonly requestsInFlight?: number;
  /** Messages per UTC hour across all users. */
  readonly hourlyMessages?: number;
  /** Tokens per UTC day across all users (reserve-then-reconcile). */
  readonly dailyTokens?: number;
  /** USD per UTC day across all users (reserve-then-reconcile, µUSD). */
  readonly dailyCostUsd?: number;
  /** Items the counters are spread over. @default 4 */
  readonly shards: number;
  /** Global limits evaluated and reported, never enforced. */
  readonly shadow?: readonly GlobalLimit[];
}

export const DEFAULT_GLOBAL_SHARDS = 4;

export const globalLimitsSchema = z
  .object({
    requestsInFlight: z.number().int().positive().optional(),
    hourlyMessages: z.number().int().positive().optional(),
    dailyTokens: z.number().int().positive().optional(),
    dailyCostUsd: z.number().positive().max(10_000_000).optional(),
    /** @default 4, or the smallest count limit if that is less (each shard needs a share of one) */
    shards: z.number().int().min(1).max(100).optional(),
    shadow: z.array(z.enum(GLOBAL_LIMITS)).optional(),
  })
  .strict()
  .refine(
    (g) =>
      [g.requestsInFlight, g.hourlyMessages].every(
        (n) => n === undefined || g.shards === undefined || n >= g.shards,
      ),
    {
      message:
        'shards must not exceed requestsInFlight or hourlyMessages (every shard needs a share of at least one); leave it out to get the most that fits',
      path: ['shards'],
    },
  )
  .transform(
    (g): GlobalLimits => ({
      ...g,
      shards:
        g.shards ??
        Math.min(DEFAULT_GLOBAL_SHARDS, g.requestsInFlight ?? Infinity, g.hourlyMessages ?? Infinity),
    }),
  );

/** Any global limit set? Without one, decisions write no shard at all. */
export function hasGlobalLimits(limits: GlobalLimits | undefined): limits is GlobalLimits {
  return limits !== undefined && GLOBAL_LIMITS.some((l) => limits[l] !== undefined);
}

export const shardKey = (k: number) => `global#${k}`;

/** Shard k's share of `limit`: the shares of 0..shards−1 add up to `limit` exactly. */
export function shareOf(limit: number, shards: number, k: number): number {
  return Math.floor(limit / shards) + (k < limit % shards ? 1 : 0);
}

/** The limits in stored units (cost in µUSD). */
function storedLimit(limits: GlobalLimits, name: GlobalLimit): number | undefined {
  const value = limits[name];
  return value === undefined ? undefined : name === 'dailyCostUsd' ? usdToMicroUsd(value) : value;
}

/** What one request takes from the global counters. */
export interface GlobalAsk {
  readonly requestId: string;
  readonly tokens: number;
  readonly costMicroUsd: number;
  /** Messages it counts for (its model's weight). */
  readonly weight: number;
  readonly leaseUntilEpochMs: number;
}

/** A shard's room for each limit, as a belief of it says (stored units). */
export interface ShardRoom {
  readonly shard: number;
  /** The limit that has no room for the ask, if any. */
  readonly blocking?: GlobalLimit;
  /** Room left, relative to its share, of the tightest limit (0..1): the router fills the emptiest. */
  readonly free: number;
}

const used = (snap: LimiterSnapshot, name: GlobalLimit, nowMs: number): number => {
  switch (name) {
    case 'requestsInFlight':
      return liveInFlight(snap, nowMs).length;
    case 'hourlyMessages':
      return snap.hw === hourNumber(nowMs) ? (snap.hc ?? 0) : 0;
    case 'dailyTokens':
      return snap.td === dayNumber(nowMs) ? (snap.tu ?? 0) : 0;
    case 'dailyCostUsd':
      return snap.cd === dayNumber(nowMs) ? (snap.cu ?? 0) : 0;
  }
};

const takes = (ask: GlobalAsk, name: GlobalLimit): number =>
  name === 'requestsInFlight'
    ? 1
    : name === 'hourlyMessages'
      ? ask.weight
      : name === 'dailyTokens'
        ? ask.tokens
        : ask.costMicroUsd;

/** Does shard k, as believed, have room for the ask under every enforced limit? */
export function roomIn(
  limits: GlobalLimits,
  k: number,
  snap: LimiterSnapshot,
  ask: GlobalAsk,
  nowMs: number,
): ShardRoom {
  let blocking: GlobalLimit | undefined;
  let free = 1;
  for (const name of GLOBAL_LIMITS) {
    const limit = storedLimit(limits, name);
    if (limit === undefined || limits.shadow?.includes(name)) continue;
    const share = shareOf(limit, limits.shards, k);
    const left = share - used(snap, name, nowMs);
    if (left < takes(ask, name) && !blocking) blocking = name;
    free = Math.min(free, share > 0 ? Math.max(0, left) / share : 0);
  }
  return { shard: k, blocking, free };
}

/**
 * The write that takes the ask from shard k: every counter's condition keeps the shard within its
 * share whatever it holds (the belief only picks the shape: same or new window), as the per-user
 * write does. Shadow limits count without a bound.
 */
export function planGlobalAdmission(args: {
  readonly limits: GlobalLimits;
  readonly shard: number;
  readonly belief: LimiterSnapshot;
  readonly ask: GlobalAsk;
  readonly nowMs: number;
}): UpdatePlan {
  const { limits, shard, belief, ask, nowMs } = args;
  const w = new ExpressionWriter();
  const bound = (name: GlobalLimit) => {
    const limit = storedLimit(limits, name);
    return limit === undefined || limits.shadow?.includes(name)
      ? undefined
      : shareOf(limit, limits.shards, shard);
  };
  if (limits.requestsInFlight !== undefined) {
    takeInFlightSlot(w, {
      snap: belief,
      requestId: ask.requestId,
      leaseUntilEpochMs: ask.leaseUntilEpochMs,
      limit: bound('requestsInFlight'),
      nowMs,
    });
  }
  const counters: [GlobalLimit, 'hw' | 'td' | 'cd', 'hc' | 'tu' | 'cu', number][] = [
    ['hourlyMessages', 'hw', 'hc', hourNumber(nowMs)],
    ['dailyTokens', 'td', 'tu', dayNumber(nowMs)],
    ['dailyCostUsd', 'cd', 'cu', dayNumber(nowMs)],
  ];
  for (const [name, windowAttr, countAttr, window] of counters) {
    if (limits[name] === undefined) continue;
    countInWindow(w, {
      snap: belief,
      windowAttr,
      countAttr,
      window,
      amount: takes(ask, name),
      limit: bound(name),
    });
  }
  return w.build();
}

/** What a global admission took, kept with the reservation so the settle gives back to the same shard. */
export interface GlobalReservation {
  readonly shard: number;
  readonly tokens: number;
  readonly costMicroUsd: number;
  readonly weight: number;
  /** The hour and day it was counted in. */
  readonly hour: number;
  readonly day: number;
}

/**
 * Gives back to the shard what a request took: its in-flight slot always, unused tokens and cost
 * (`refund`), and, when the request is undone before it ran (`undo`: a per-user write refused it
 * after the global one admitted it), its message too. Each part only into the window it was
 * counted in; the belief picks the shape and the conditions pin it.
 */
export function planGlobalRelease(args: {
  readonly belief: LimiterSnapshot;
  readonly requestId: string;
  readonly taken: GlobalReservation;
  readonly refund: { readonly tokens: number; readonly costMicroUsd: number };
  readonly undo: boolean;
  /** The stack counts requests in flight (else no shard holds a slot). */
  readonly inFlight: boolean;
}): UpdatePlan | undefined {
  const { belief, requestId, taken, refund, undo } = args;
  const w = new ExpressionWriter();
  let moves = false;
  if (args.inFlight && belief.inFlight?.[requestId] !== undefined) {
    w.condition(`attribute_exists(${w.name('fl')})`);
    w.remove(`${w.name('fl')}.${w.name(requestId)}`);
    moves = true;
  }
  const parts: ['hw' | 'td' | 'cd', 'hc' | 'tu' | 'cu', number, number][] = [
    ['hw', 'hc', taken.hour, undo ? taken.weight : 0],
    ['td', 'tu', taken.day, Math.min(taken.tokens, refund.tokens)],
    ['cd', 'cu', taken.day, Math.min(taken.costMicroUsd, refund.costMicroUsd)],
  ];
  for (const [windowAttr, countAttr, window, amount] of parts) {
    if (amount <= 0) continue;
    const win = w.name(windowAttr);
    if (belief[windowAttr] === window) {
      w.condition(`${win} = ${w.value(window)}`);
      w.set(`${w.name(countAttr)} = ${w.name(countAttr)} - ${w.value(amount)}`);
      moves = true;
    } else {
      // Rolled over since: nothing to give back there; pinned.
      w.condition(`(attribute_not_exists(${win}) OR ${win} <> ${w.value(window)})`);
    }
  }
  // The caller plans from a belief that shows the admission (or a fresh read): nothing held any
  // more (a lapsed slot, a window rolled over) means no write at all.
  return moves ? w.build() : undefined;
}

/** One global limit's totals over every shard, for `status` and `admin top`. */
export interface GlobalLimitState {
  readonly name: GlobalLimitName;
  readonly limit: number;
  readonly used: number;
  readonly remaining: number;
  readonly unit: 'requests' | 'messages' | 'tokens' | 'usd';
  readonly resetAtEpochMs: number;
  readonly shadow: boolean;
}

export function globalTotals(
  limits: GlobalLimits,
  shards: readonly LimiterSnapshot[],
  nowMs: number,
): GlobalLimitState[] {
  const states: GlobalLimitState[] = [];
  for (const name of GLOBAL_LIMITS) {
    const limit = storedLimit(limits, name);
    if (limit === undefined) continue;
    const total = shards.reduce((sum, snap) => sum + used(snap, name, nowMs), 0);
    const isCost = name === 'dailyCostUsd';
    const shown = (n: number) => (isCost ? microUsdToUsd(n) : n);
    const leases = shards.flatMap((s) => liveInFlight(s, nowMs).map(([, lease]) => lease));
    states.push({
      name: `global.${name}`,
      limit: shown(limit),
      used: shown(total),
      remaining: shown(Math.max(0, limit - total)),
      unit:
        name === 'requestsInFlight'
          ? 'requests'
          : name === 'hourlyMessages'
            ? 'messages'
            : isCost
              ? 'usd'
              : 'tokens',
      resetAtEpochMs:
        name === 'requestsInFlight'
          ? leases.length
            ? Math.min(...leases)
            : nowMs
          : name === 'hourlyMessages'
            ? (hourNumber(nowMs) + 1) * HOUR_MS
            : (dayNumber(nowMs) + 1) * DAY_MS,
      shadow: limits.shadow?.includes(name) ?? false,
    });
  }
  return states;
}

/** When a refusal by this global limit may be tried again (ms from now). */
export function globalRetryAfterMs(name: GlobalLimit, nowMs: number): number {
  switch (name) {
    case 'requestsInFlight':
      return 1000;
    case 'hourlyMessages':
      return (hourNumber(nowMs) + 1) * HOUR_MS - nowMs;
    default:
      return (dayNumber(nowMs) + 1) * DAY_MS - nowMs;
  }
}

/* ---------- Priority when a global limit binds ---------- */

/** The item where requests held back by a global limit wait for their turn: one entry per user. */
export const GLOBAL_WAITING_KEY = 'global#waiting';
export const WAITER_PREFIX = 'u_';
/** An entry not written again for this long is a user no longer waiting (see GlobalWaiter). */
export const WAITER_STALE_MS = 15_000;

const TIER_RANK: Readonly<Record<Tier, number>> = { enterprise: 0, pro: 1, free: 2 };

/** A user whose queue head a global limit holds back. */
export interface GlobalWaiter {
  readonly userId: string;
  readonly tier: Tier;
  /** When the head was queued (oldest first within a tier). */
  readonly enqueuedAtEpochMs: number;
  /** The head's deadline (enqueued + MAX_QUEUE_WAIT): near it, the waiter goes first. */
  readonly deadlineEpochMs: number;
  /** The receipt handle of the user's parked wake-up, so a freed slot can wake the next in line. */
  readonly wakeUp?: string;
  /**
   * When the entry was last written (epoch ms): a waiter looks again at least every few seconds
   * and writes it again, so an entry not refreshed for a while belongs to a user no longer waiting
   * (served elsewhere, cancelled, crashed) and is ignored — a stale entry never blocks the line.
   */
  readonly seenAtEpochMs?: number;
  /** The global limit that held it back. */
  readonly limit: GlobalLimit;
}

/**
 * The order waiters are admitted in: by tier (enterprise, pro, free), oldest first within a tier —
 * except that a request within `urgentMs` of its deadline goes before every tier, earliest deadline
 * first, so priority never makes anyone wait past MAX_QUEUE_WAIT (docs/limiter.md).
 */
export function priorityOrder(
  waiters: readonly GlobalWaiter[],
  nowMs: number,
  urgentMs: number,
): GlobalWaiter[] {
  const urgent = (w: GlobalWaiter) => w.deadlineEpochMs - nowMs <= urgentMs;
  return [...waiters].sort((a, b) => {
    const ua = urgent(a);
    const ub = urgent(b);
    if (ua !== ub) return ua ? -1 : 1;
    if (ua && ub && a.deadlineEpochMs !== b.deadlineEpochMs) return a.deadlineEpochMs - b.deadlineEpochMs;
    return (
      TIER_RANK[a.tier] - TIER_RANK[b.tier] ||
      a.enqueuedAtEpochMs - b.enqueuedAtEpochMs ||
      // A total order: two users queued in the same millisecond must agree on who goes first.
      (a.userId < b.userId ? -1 : a.userId > b.userId ? 1 : 0)
    );
  });
}

/** May `me` take global capacity now, given who else waits? Only if nobody waits before it. */
export function mayGoNow(
  me: GlobalWaiter,
  waiters: readonly GlobalWaiter[],
  nowMs: number,
  urgentMs: number,
): boolean {
  const others = waiters.filter((w) => w.userId !== me.userId);
  const first = priorityOrder([...others, me], nowMs, urgentMs)[0];
  return first?.userId === me.userId;
}

export function waitersFromItem(item: Record<string, unknown> | undefined): GlobalWaiter[] {
  if (!item) return [];
  const waiters: GlobalWaiter[] = [];
  for (const [key, value] of Object.entries(item)) {
    if (!key.startsWith(WAITER_PREFIX) || typeof value !== 'object' || value === null) continue;
    const v = value as Record<string, unknown>;
    if (
      typeof v.t !== 'string' ||
      !(v.t in TIER_RANK) ||
      typeof v.at !== 'number' ||
      typeof v.dl !== 'number'
    )
      continue;
    waiters.push({
      userId: key.slice(WAITER_PREFIX.length),
      tier: v.t as Tier,
      enqueuedAtEpochMs: v.at,
      deadlineEpochMs: v.dl,
      wakeUp: typeof v.h === 'string' ? v.h : undefined,
      seenAtEpochMs: typeof v.s === 'number' ? v.s : undefined,
      limit: (GLOBAL_LIMITS as readonly string[]).includes(String(v.l))
        ? (v.l as GlobalLimit)
        : 'requestsInFlight',
    });
  }
  return waiters;
}

export function waiterValue(w: GlobalWaiter): Record<string, unknown> {
  return {
    t: w.tier,
    at: w.enqueuedAtEpochMs,
    dl: w.deadlineEpochMs,
    l: w.limit,
    ...(w.wakeUp ? { h: w.wakeUp } : {}),
    ...(w.seenAtEpochMs !== undefined ? { s: w.seenAtEpochMs } : {}),
  };
}
