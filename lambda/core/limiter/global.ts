import * as z from 'zod';
import { microUsdToUsd, usdToMicroUsd } from '../models';
import { ExpressionWriter, type UpdatePlan } from './expression';
import { countInWindow, takeInFlightSlot } from './kinds';
import { type LimiterSnapshot, liveInFlight } from './snapshot';
import type { Tier } from './tiers';
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
  /** Whose request: the sweep reads that user's item to tell whether an orphaned share was charged. */
  readonly userId: string;
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
  /** When the blocking limit may have room again in this shard (ms from now). */
  readonly retryAfterMs?: number;
}

/**
 * The window a shard counts in, as seen from a clock at `nowMs`: this clock's window, or the
 * shard's own if it is already in a later one. Instances' clocks differ by a second or two; one
 * that is behind must not try to open a window the shard has already left (its condition could
 * never hold), so it counts in the shard's window, as the instances ahead of it do.
 */
export function shardWindows(
  snap: LimiterSnapshot,
  nowMs: number,
): { readonly hour: number; readonly day: number } {
  const later = (mine: number, ...theirs: (number | undefined)[]) =>
    Math.max(mine, ...theirs.filter((t): t is number => t !== undefined));
  return { hour: later(hourNumber(nowMs), snap.hw), day: later(dayNumber(nowMs), snap.td, snap.cd) };
}

const used = (snap: LimiterSnapshot, name: GlobalLimit, nowMs: number): number => {
  const { hour, day } = shardWindows(snap, nowMs);
  switch (name) {
    case 'requestsInFlight':
      return liveInFlight(snap, nowMs).length;
    case 'hourlyMessages':
      return snap.hw === hour ? (snap.hc ?? 0) : 0;
    case 'dailyTokens':
      return snap.td === day ? (snap.tu ?? 0) : 0;
    case 'dailyCostUsd':
      return snap.cd === day ? (snap.cu ?? 0) : 0;
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
  return {
    shard: k,
    blocking,
    free,
    ...(blocking ? { retryAfterMs: globalRetryAfterMs(blocking, nowMs, shardWindows(snap, nowMs)) } : {}),
  };
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
}): { readonly plan: UpdatePlan; readonly taken: GlobalReservation } {
  const { limits, shard, belief, ask, nowMs } = args;
  const w = new ExpressionWriter();
  const bound = (name: GlobalLimit) => {
    const limit = storedLimit(limits, name);
    return limit === undefined || limits.shadow?.includes(name)
      ? undefined
      : shareOf(limit, limits.shards, shard);
  };
  // Every request a shard holds a share for is an entry of `fl` (with its lease), whether or not
  // the stack limits requests in flight: it is what makes the shard's writes idempotent per
  // request. `attribute_not_exists(fl.<id>)`: a retried admission whose first try landed (its
  // answer lost) cannot take a second share; the item it fails on shows the entry, and that is
  // the admission. The release removes the entry under `attribute_exists`, so it happens once.
  // The map stays as small as the requests being answered: each settle takes its entry out, and
  // a lapsed one is dropped by the next admission.
  takeInFlightSlot(w, {
    snap: belief,
    requestId: ask.requestId,
    leaseUntilEpochMs: ask.leaseUntilEpochMs,
    limit: limits.requestsInFlight === undefined ? undefined : bound('requestsInFlight'),
    nowMs,
  });
  if (belief.inFlight !== undefined) {
    w.condition(`attribute_not_exists(${w.name('fl')}.${w.name(ask.requestId)})`);
  }
  // The shard's windows where it is already ahead of this clock (see shardWindows).
  const { hour, day } = shardWindows(belief, nowMs);
  // What the share took, and whose it is, until its release (or the sweep's) takes it out: the
  // `fl` entry alone may be dropped as lapsed by a later admission, and it says nothing of the
  // counts — this says what to give back when the user's own write never made the share its own.
  // (Guarded by the `fl.<id>` conditions above: written once per request.)
  w.set(
    `${w.name(`${GLOBAL_SHARE_PREFIX}${ask.requestId}`)} = ${w.value({
      u: ask.userId,
      t: ask.tokens,
      c: ask.costMicroUsd,
      w: ask.weight,
      h: hour,
      d: day,
      l: ask.leaseUntilEpochMs,
    })}`,
  );
  const counters: [GlobalLimit, 'hw' | 'td' | 'cd', 'hc' | 'tu' | 'cu', number][] = [
    ['hourlyMessages', 'hw', 'hc', hour],
    ['dailyTokens', 'td', 'tu', day],
    ['dailyCostUsd', 'cd', 'cu', day],
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
  return {
    plan: w.build(),
    taken: {
      shard,
      tokens: ask.tokens,
      costMicroUsd: ask.costMicroUsd,
      weight: ask.weight,
      hour,
      day,
    },
  };
}

/** Prefix of a shard's record of one request's share (`ga_<requestId>`, see planGlobalAdmission). */
export const GLOBAL_SHARE_PREFIX = 'ga_';

/** A share as its shard records it. */
export interface RecordedShare {
  readonly requestId: string;
  readonly userId: string;
  readonly tokens: number;
  readonly costMicroUsd: number;
  readonly weight: number;
  readonly hour: number;
  readonly day: number;
  readonly leaseUntilEpochMs: number;
}

/** The shares a shard item records (`ga_<id>`). */
export function recordedShares(item: Record<string, unknown> | undefined): RecordedShare[] {
  const shares: RecordedShare[] = [];
  for (const [key, value] of Object.entries(item ?? {})) {
    if (!key.startsWith(GLOBAL_SHARE_PREFIX) || typeof value !== 'object' || value === null) continue;
    const v = value as Record<string, unknown>;
    const n = (x: unknown) => (typeof x === 'number' ? x : 0);
    if (typeof v.u !== 'string' || typeof v.l !== 'number') continue;
    shares.push({
      requestId: key.slice(GLOBAL_SHARE_PREFIX.length),
      userId: v.u,
      tokens: n(v.t),
      costMicroUsd: n(v.c),
      weight: n(v.w),
      hour: n(v.h),
      day: n(v.d),
      leaseUntilEpochMs: v.l,
    });
  }
  return shares;
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
 * Gives back to the shard what a request took: its entry (in-flight slot) always, unused tokens
 * and cost (`refund`), and, when the request is undone before it ran (`undo`: a per-user write
 * refused it after the global one admitted it), its message too. Each part only into the window it
 * was counted in; the belief picks the shape and the conditions pin it. Once per request: the
 * write is conditioned on the request's entry (`attribute_exists(fl.<id>)`) and removes it, so a
 * release applied twice (a retry after a lost answer, a second settle) changes nothing the second
 * time; a belief without the entry (read fresh) means nothing is held, and there is no write.
 */
export function planGlobalRelease(args: {
  readonly belief: LimiterSnapshot;
  readonly requestId: string;
  readonly taken: GlobalReservation;
  readonly refund: { readonly tokens: number; readonly costMicroUsd: number };
  readonly undo: boolean;
}): UpdatePlan | undefined {
  const { belief, requestId, taken, refund, undo } = args;
  if (belief.inFlight?.[requestId] === undefined) return undefined;
  const w = new ExpressionWriter();
  const entry = `${w.name('fl')}.${w.name(requestId)}`;
  const share = w.name(`${GLOBAL_SHARE_PREFIX}${requestId}`);
  // The share's record (`ga_<id>`) is what is given back once: the sweep's give-back of an orphaned
  // share removes it with the entry, so whichever lands first gives back, and the other fails here.
  // (A share taken before the record existed has only its entry: that, then.)
  w.condition(`(attribute_exists(${share}) OR attribute_exists(${entry}))`);
  w.remove(entry, share);
  givesBack(w, belief, [
    ['hw', 'hc', taken.hour, undo ? taken.weight : 0],
    ['td', 'tu', taken.day, Math.min(taken.tokens, refund.tokens)],
    ['cd', 'cu', taken.day, Math.min(taken.costMicroUsd, refund.costMicroUsd)],
  ]);
  return w.build();
}

/**
 * Gives back an orphaned share (releaseOrphans: its lease long over, its user's item holds no
 * reservation of it, so nobody else ever will): what it took and was not charged (`charged`, the
 * user's settle left it; none: the request was never admitted, its message goes back too), each
 * part only into the window it was counted in. Once: conditioned on the share's record, removed
 * here with the request's entry (a REMOVE of an absent map key changes nothing).
 */
export function planOrphanRelease(args: {
  readonly belief: LimiterSnapshot;
  readonly share: RecordedShare;
  readonly charged?: { readonly tokens: number; readonly costMicroUsd: number };
}): UpdatePlan {
  const { belief, share, charged } = args;
  const w = new ExpressionWriter();
  const record = w.name(`${GLOBAL_SHARE_PREFIX}${share.requestId}`);
  w.condition(`attribute_exists(${record})`);
  w.remove(record);
  // Only a map that exists may have a key removed (the next admission may have dropped it lapsed).
  if (belief.inFlight !== undefined) {
    const fl = w.name('fl');
    w.condition(`attribute_exists(${fl})`);
    w.remove(`${fl}.${w.name(share.requestId)}`);
  } else {
    w.condition(`attribute_not_exists(${w.name('fl')})`);
  }
  givesBack(w, belief, [
    ['hw', 'hc', share.hour, charged ? 0 : share.weight],
    ['td', 'tu', share.day, Math.max(0, share.tokens - (charged?.tokens ?? 0))],
    ['cd', 'cu', share.day, Math.max(0, share.costMicroUsd - (charged?.costMicroUsd ?? 0))],
  ]);
  return w.build();
}

/** Each amount back into its counter if the shard is still in its window; pinned either way. */
function givesBack(
  w: ExpressionWriter,
  belief: LimiterSnapshot,
  parts: readonly (readonly ['hw' | 'td' | 'cd', 'hc' | 'tu' | 'cu', number, number])[],
): void {
  for (const [windowAttr, countAttr, window, amount] of parts) {
    if (amount <= 0) continue;
    const win = w.name(windowAttr);
    if (belief[windowAttr] === window) {
      w.condition(`${win} = ${w.value(window)}`);
      w.set(`${w.name(countAttr)} = ${w.name(countAttr)} - ${w.value(amount)}`);
    } else {
      // Rolled over since: nothing to give back there; pinned.
      w.condition(`(attribute_not_exists(${win}) OR ${win} <> ${w.value(window)})`);
    }
  }
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

/**
 * When a refusal by this global limit may be tried again (ms from now): the end of the window it
 * is counted in — this clock's, or (`windows`) the shard's when it is already in a later one.
 */
export function globalRetryAfterMs(
  name: GlobalLimit,
  nowMs: number,
  windows: { readonly hour: number; readonly day: number } = {
    hour: hourNumber(nowMs),
    day: dayNumber(nowMs),
  },
): number {
  switch (name) {
    case 'requestsInFlight':
      return 1000;
    case 'hourlyMessages':
      return (windows.hour + 1) * HOUR_MS - nowMs;
    default:
      return (windows.day + 1) * DAY_MS - nowMs;
  }
}

/* ---------- Priority when a global limit binds ---------- */

/**
 * The item where requests held back by a global limit wait for their turn: one entry per user in
 * its map `ln` (`ln.<userId>`), so a write can bound the count (`size(ln)`).
 */
export const GLOBAL_WAITING_KEY = 'global#waiting';
export const LINE_ATTR = 'ln';
/** Entries of the first design: top-level `u_<userId>` attributes. Read, and pruned; never written. */
export const WAITER_PREFIX = 'u_';
/**
 * An entry not written again for this long after the waiter's last look — or after the look it
 * said it would take next (`wakeAtEpochMs`) — is a user no longer waiting (see GlobalWaiter).
 */
export const WAITER_STALE_MS = 15_000;
/**
 * At most this many users in line. An entry is at most ~2.2 KB (a user id of 256 characters of
 * up to 4 bytes, a receipt handle of 1,024, the numbers), so the item stays far below DynamoDB's
 * 400 KB whatever the ids and handles. Past it, see planLineWrite.
 */
export const MAX_LINE_ENTRIES = 150;
/**
 * The line item expires this long after its last write: every entry is dead by then (a deadline
 * is at most MAX_QUEUE_WAIT ahead, 15 minutes), so only an abandoned item ever reaches it.
 */
export const LINE_TTL_SECONDS = 24 * 3600;
/** Stale entries taken out by one write (keeps the expression well under DynamoDB's 4 KB). */
export const MAX_PRUNED_PER_WRITE = 40;

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
  /**
   * When the waiter's wake-up comes back to look again (epoch ms): a waiter held until a window
   * opens (the next hour, the next day) is due then, and its entry is not stale before it is
   * overdue — so when the window opens, the line is still there and is served in its order.
   */
  readonly wakeAtEpochMs?: number;
  /** The global limit that held it back. */
  readonly limit: GlobalLimit;
}

/** A stored entry: a waiter, and whether it is of the first design (a top-level attribute). */
export interface LineEntry extends GlobalWaiter {
  readonly legacy?: boolean;
}

/** The line item as read: whether it exists, whether it has the map, and every entry. */
export interface LineView {
  readonly exists: boolean;
  readonly hasMap: boolean;
  readonly entries: readonly LineEntry[];
}

export const EMPTY_LINE: LineView = Object.freeze({ exists: false, hasMap: false, entries: [] });

/** The last moment the waiter said it would look (its last write, or the wake-up it scheduled). */
const lastDueAt = (w: GlobalWaiter) =>
  Math.max(w.seenAtEpochMs ?? Number.NEGATIVE_INFINITY, w.wakeAtEpochMs ?? Number.NEGATIVE_INFINITY);

/**
 * Still waiting at `nowMs`: before its deadline, and not overdue by more than WAITER_STALE_MS on
 * its own schedule. An entry with neither time (never written so) is dead.
 */
export function isLiveWaiter(w: GlobalWaiter, nowMs: number): boolean {
  return w.deadlineEpochMs > nowMs && nowMs <= lastDueAt(w) + WAITER_STALE_MS;
}

/**
 * How long a request that is not first in line waits for the one that is: a second when that one
 * waits for an in-flight slot (a settle may wake it any moment) or is due now; else until it looks
 * again (its wake-up at the window's start) — never until the end of the window *it* was refused
 * in, which may have opened since (an hour's start, say).
 */
export function waitBehindMs(first: GlobalWaiter, nowMs: number): number {
  if (first.limit === 'requestsInFlight') return 1000;
  return Math.max(1000, (first.wakeAtEpochMs ?? nowMs) - nowMs);
}

/**
 * The order waiters are admitted in: by tier (enterprise, pro, free), oldest first within a tier —
 * except that a request within `urgentMs` of its deadline goes before every tier, earliest deadline
 * first, so priority never makes anyone wait past MAX_QUEUE_WAIT (docs/limiter.md).
 */
export function priorityOrder<W extends GlobalWaiter>(
  waiters: readonly W[],
  nowMs: number,
  urgentMs: number,
): W[] {
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

function waiterOf(userId: string, value: unknown, legacy: boolean): LineEntry | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const v = value as Record<string, unknown>;
  if (typeof v.t !== 'string' || !(v.t in TIER_RANK) || typeof v.at !== 'number' || typeof v.dl !== 'number')
    return undefined;
  return {
    userId,
    tier: v.t as Tier,
    enqueuedAtEpochMs: v.at,
    deadlineEpochMs: v.dl,
    wakeUp: typeof v.h === 'string' ? v.h : undefined,
    seenAtEpochMs: typeof v.s === 'number' ? v.s : undefined,
    wakeAtEpochMs: typeof v.wa === 'number' ? v.wa : undefined,
    limit: (GLOBAL_LIMITS as readonly string[]).includes(String(v.l))
      ? (v.l as GlobalLimit)
      : 'requestsInFlight',
    ...(legacy ? { legacy } : {}),
  };
}

/** The line as stored: the map's entries and any of the first design's top-level ones. */
export function lineFromItem(item: Record<string, unknown> | undefined): LineView {
  if (!item) return EMPTY_LINE;
  const entries: LineEntry[] = [];
  const map = item[LINE_ATTR];
  const hasMap = typeof map === 'object' && map !== null && !Array.isArray(map);
  if (hasMap) {
    for (const [userId, value] of Object.entries(map as Record<string, unknown>)) {
      const entry = waiterOf(userId, value, false);
      if (entry) entries.push(entry);
    }
  }
  for (const [key, value] of Object.entries(item)) {
    if (!key.startsWith(WAITER_PREFIX)) continue;
    const entry = waiterOf(key.slice(WAITER_PREFIX.length), value, true);
    if (entry) entries.push(entry);
  }
  return { exists: true, hasMap, entries };
}

/** Who waits at `nowMs`: the live entries, one per user (a map entry wins over a legacy one). */
export function waitersFromLine(line: LineView, nowMs: number): GlobalWaiter[] {
  const byUser = new Map<string, GlobalWaiter>();
  for (const e of line.entries) {
    if (!isLiveWaiter(e, nowMs) || (byUser.has(e.userId) && e.legacy)) continue;
    const { legacy: _legacy, ...waiter } = e;
    byUser.set(e.userId, waiter);
  }
  return [...byUser.values()];
}

export function waiterValue(w: GlobalWaiter): Record<string, unknown> {
  return {
    t: w.tier,
    at: w.enqueuedAtEpochMs,
    dl: w.deadlineEpochMs,
    l: w.limit,
    ...(w.wakeUp ? { h: w.wakeUp } : {}),
    ...(w.seenAtEpochMs !== undefined ? { s: w.seenAtEpochMs } : {}),
    ...(w.wakeAtEpochMs !== undefined ? { wa: w.wakeAtEpochMs } : {}),
  };
}

export interface LineWrite {
  readonly plan: UpdatePlan;
  /** Whether `join` has its entry once the write lands (false: the line is full of waiters before it). */
  readonly listed: boolean;
  /** Users whose entries this write takes out: stale ones, and one that a waiter before it evicts. */
  readonly removed: readonly string[];
}

/**
 * One write to the line: puts `join`'s entry (or refreshes it), or takes `leave`'s out, and in the
 * same write takes out up to MAX_PRUNED_PER_WRITE entries that are no longer live — so every entry
 * ends: when its request is admitted or its user has nothing waiting (`leave`), or once it is
 * overdue or past its deadline (pruned here and by the sweep's `pruneGlobalLine`). Each removal is
 * pinned to the entry as seen (`ln.<u>.s = :seenAt`): a waiter that wrote it again meanwhile fails
 * the condition, and the writer reads the line and plans again.
 *
 * The bound: a new entry is written under `attribute_exists(ln.<me>) OR size(ln) < :cap + k`, k the
 * entries removed in the same write (each pinned present), so the line never holds more than
 * MAX_LINE_ENTRIES whatever other writers do. Past it, the line keeps the waiters that go first: a
 * newcomer that ranks before the last one in priority order takes that one's place (evicted,
 * pinned); else it is not listed. An unlisted waiter still goes when it looks and nobody listed
 * ranks before it — it only loses being woken by a settle and holding back direct requests. Counts
 * stay exact (the shards decide them), and a request near its deadline ranks first, so it is
 * always listed: the deadline bound holds.
 *
 * Returns undefined when there is nothing to write.
 */
export function planLineWrite(args: {
  readonly line: LineView;
  readonly nowMs: number;
  readonly urgentMs: number;
  readonly join?: GlobalWaiter;
  readonly leave?: string;
  readonly cap?: number;
}): LineWrite | undefined {
  const { line, nowMs, urgentMs, join, leave } = args;
  const cap = args.cap ?? MAX_LINE_ENTRIES;
  const w = new ExpressionWriter();
  const ln = w.name(LINE_ATTR);
  const removed: string[] = [];
  let mapRemovals = 0;
  const pathOf = (e: LineEntry) =>
    e.legacy ? w.name(`${WAITER_PREFIX}${e.userId}`) : `${ln}.${w.name(e.userId)}`;
  const take = (e: LineEntry) => {
    const path = pathOf(e);
    // Pinned: only the entry as seen. One written again since (a later look) stays.
    w.condition(
      e.seenAtEpochMs === undefined
        ? `(attribute_exists(${path}) AND attribute_not_exists(${path}.${w.name('s')}))`
        : `${path}.${w.name('s')} = ${w.value(e.seenAtEpochMs)}`,
    );
    w.remove(path);
    removed.push(e.userId);
    if (!e.legacy) mapRemovals++;
  };
  const mine = (e: LineEntry) => e.userId === join?.userId || e.userId === leave;
  const stale = line.entries.filter((e) => !isLiveWaiter(e, nowMs) && !(mine(e) && !e.legacy));
  for (const e of stale.slice(0, MAX_PRUNED_PER_WRITE)) take(e);
  // A legacy entry of the user joining or leaving goes too (its map entry replaces it).
  for (const e of line.entries) if (e.legacy && mine(e) && !removed.includes(e.userId)) take(e);

  let listed = false;
  if (leave !== undefined) {
    const entry = line.entries.find((e) => e.userId === leave && !e.legacy);
    if (entry) {
      const path = pathOf(entry);
      // Present (else REMOVE of a path in a missing map fails): one already gone needs nothing.
      w.condition(`attribute_exists(${path})`);
      w.remove(path);
      removed.push(leave);
    }
  }
  if (join !== undefined) {
    if (!line.hasMap) {
      // The first entry creates the map; only one writer can.
      w.condition(`attribute_not_exists(${ln})`);
      w.set(`${ln} = ${w.value({ [join.userId]: waiterValue(join) })}`);
      listed = true;
    } else {
      const present = line.entries.some((e) => e.userId === join.userId && !e.legacy);
      const live = line.entries.filter(
        (e) => !e.legacy && !removed.includes(e.userId) && e.userId !== join.userId,
      );
      if (!present && live.length + 1 > cap) {
        // Full of live waiters: the one that goes last makes room only for one that goes before it.
        const last = priorityOrder(live, nowMs, urgentMs).at(-1)!;
        const lastOfAll = priorityOrder([...live, join], nowMs, urgentMs).at(-1)!;
        if (lastOfAll.userId !== join.userId) {
          take(last);
          listed = true;
        }
      } else {
        listed = true;
      }
      if (listed) {
        const me = `${ln}.${w.name(join.userId)}`;
        const value = w.value(waiterValue(join));
        w.condition(`(attribute_exists(${me}) OR size(${ln}) < ${w.value(cap + mapRemovals)})`);
        w.set(`${me} = ${value}`);
      }
    }
  }
  if (removed.length === 0 && !listed) return undefined;
  // Nothing of an item nobody writes any more outlives its entries by long (LINE_TTL_SECONDS).
  w.set(`${w.name('ttlEpochSeconds')} = ${w.value(Math.floor(nowMs / 1000) + LINE_TTL_SECONDS)}`);
  return { plan: w.build(), listed, removed };
}
