import { limitKind } from '../kinds/registry';
import type { Tier } from '../tiers';
import { type GlobalBound, isGlobalLimit } from './limits';

/**
 * Priority when a global limit binds: who waits (GlobalWaiter), in what order they go (tier, then
 * age, a request near its deadline first), and how long one behind waits. The line that holds
 * them is global/line.ts.
 */

/**
 * An entry not written again for this long after the waiter's last look — or after the look it
 * said it would take next (`wakeAtEpochMs`) — is a user no longer waiting (see GlobalWaiter).
 */
export const WAITER_STALE_MS = 15_000;
export const TIER_RANK: Readonly<Record<Tier, number>> = { enterprise: 0, pro: 1, free: 2 };

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
   * When the entry was last written (epoch ms): a waiter writes it again at every look, so an
   * entry not refreshed for a while after the look it said it would take (`wakeAtEpochMs`) belongs
   * to a user no longer waiting (served elsewhere, cancelled, crashed) and is ignored — a stale
   * entry never blocks the line.
   */
  readonly seenAtEpochMs?: number;
  /**
   * When the waiter's wake-up comes back to look again (epoch ms): a waiter held until a window
   * opens (the next hour, the next day) is due then, and its entry is not stale before it is
   * overdue — so when the window opens, the line is still there and is served in its order.
   */
  readonly wakeAtEpochMs?: number;
  /** The global limit (or model quota) that held it back. */
  readonly limit: GlobalBound;
  /**
   * Whose capacity it waits for: undefined for the stack's own (global) limits, `team:<name>` for
   * a team's, `model:<id>` for a model's account quota. A waiter holds back only requests that
   * count against the same capacity (see {@link sharesCapacity}): a user waiting for team A's
   * slot never holds back a member of team B.
   */
  readonly scope?: string;
  /** How many requests the user had waiting at its last look (lambda/core/queue/global-eta.ts). */
  readonly queued?: number;
}

/**
 * Does this waiter wait for capacity a request counting against `scopes` (its team's `team:<name>`,
 * its model's `model:<id>`) also takes? Stack-wide waiters (no scope) wait for everyone's.
 */
export function sharesCapacity(w: Pick<GlobalWaiter, 'scope'>, scopes: readonly string[]): boolean {
  return w.scope === undefined || scopes.includes(w.scope);
}

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
  if (isGlobalLimit(first.limit) && limitKind(first.limit).waitsFor === 'slot') return 1000;
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

/**
 * The first this many in line look again every few seconds (a freed slot may be theirs any
 * moment); those further back look rarely (FAR_LOOK_MS), so 10,000 waiting cost a few hundred
 * writes a second, not thousands (global/line.ts has the arithmetic).
 */
export const NEAR_HEAD = 10;
/**
 * How long a waiter further back than NEAR_HEAD waits before it looks again — at most: it is woken
 * sooner when it reaches the head and capacity frees (the settle wakes the first in line), and it is
 * back before it comes within `urgentMs` of its deadline, when it goes before every tier.
 */
export const FAR_LOOK_MS = 60_000;

/**
 * How long a queued request that is not first in line waits before it looks again: as long as it
 * waits for the first (waitBehindMs) when it is among the first NEAR_HEAD, else up to FAR_LOOK_MS
 * (never past the moment it becomes urgent). A direct request (no deadline) waits as for the first.
 */
export function waitInLineMs(
  me: GlobalWaiter,
  waiters: readonly GlobalWaiter[],
  nowMs: number,
  urgentMs: number,
): number {
  const order = priorityOrder([...waiters.filter((w) => w.userId !== me.userId), me], nowMs, urgentMs);
  const behind = waitBehindMs(order[0]!, nowMs);
  const place = order.findIndex((w) => w.userId === me.userId);
  if (place < NEAR_HEAD || !Number.isFinite(me.deadlineEpochMs)) return behind;
  return Math.max(behind, Math.min(FAR_LOOK_MS, me.deadlineEpochMs - urgentMs - nowMs));
}
