import type { ExpressionWriter } from '../limiter/expression';
import type { LimiterView } from '../limiter/item/state';
import { limitKind } from '../limiter/kinds/registry';
import { isExpired } from './request';

/**
 * The self-healing sweep (SPEC §9.1): which users it looks at, and what it repairs.
 *
 * Every write that creates state needing an end — an enqueue (a waiting entry and the wake-up that
 * serves it), an admission (an in-flight slot, an active request) — also puts the user into a
 * sparse index of the Limits table: `sw` is one of {@link SWEEP_BUCKETS} buckets (a hash of the
 * user id, so no index partition takes every user's writes) and `sa` the instant after which the
 * sweep should look. The sweep queries each bucket for `sa <= now` (no scan), reads each user's
 * item, repairs what a lost message or a crash left, and then either moves `sa` to the next
 * instant the item needs a look, or — when nothing needing an end is left — takes the user out of
 * the index. The marks are written `if_not_exists`, so only the first write of an episode changes
 * the index (one index write); later writes leave it alone (none).
 */

import { SWEEP_AFTER_ATTRIBUTE, SWEEP_BUCKET_ATTRIBUTE } from '../limiter/item/attributes';

export { SWEEP_AFTER_ATTRIBUTE, SWEEP_BUCKET_ATTRIBUTE };
/** Buckets the sweep index is spread over. */
export const SWEEP_BUCKETS = 8;
/**
 * How long past the moment a live wake-up (or runner) had to act the sweep waits before it acts
 * for it: a delivery in progress, a hand-off, a retry after a fault all finish well within it.
 */
export const SWEEP_GRACE_MS = 60_000;
/** How often the sweep runs (EventBridge schedule in AWS, a timer locally). */
export const SWEEP_INTERVAL_SECONDS = 60;

/** The user's bucket in the sweep index (FNV-1a of the user id). */
export function sweepBucket(userId: string): string {
  let hash = 0x811c9dc5;
  for (let i = 0; i < userId.length; i++) hash = Math.imul(hash ^ userId.charCodeAt(i), 0x01000193) >>> 0;
  return String(hash % SWEEP_BUCKETS);
}

/**
 * Puts the user into the sweep index, in the write that creates state needing an end. If the
 * user is there already, the existing look-after stays (the sweep owns it from then on), so the
 * index is written once per episode, not once per write — unless `pullEarlier`: the writer knows
 * (from its belief of the item) that the look-after is missing or later than it needs, as for an
 * enqueue behind an in-flight slot whose look is a lease away; then it sets its own.
 */
export function markForSweep(
  w: ExpressionWriter,
  userId: string,
  lookAfterEpochMs: number,
  options: { readonly pullEarlier?: boolean } = {},
): void {
  const sw = w.name(SWEEP_BUCKET_ATTRIBUTE);
  const sa = w.name(SWEEP_AFTER_ATTRIBUTE);
  w.set(`${sw} = if_not_exists(${sw}, ${w.value(sweepBucket(userId))})`);
  if (options.pullEarlier) w.set(`${sa} = ${w.value(lookAfterEpochMs)}`);
  else w.set(`${sa} = if_not_exists(${sa}, ${w.value(lookAfterEpochMs)})`);
}

/**
 * Must an enqueue set its own look-after? When the item (as believed) has none, or one later than
 * the enqueue needs: a wake-up lost with it must be found within {@link SWEEP_GRACE_MS} or so.
 */
export function enqueuePullsSweepEarlier(
  believedSweepAfterEpochMs: number | undefined,
  nowMs: number,
): boolean {
  return believedSweepAfterEpochMs === undefined || believedSweepAfterEpochMs > nowMs + SWEEP_GRACE_MS;
}

export const REPAIR_KINDS = [
  /** A waiting list nobody wakes: a fresh wake-up is sent. */
  'lost-wake-up',
  /** An active request whose runner is gone and whose lease lapsed, with nothing to take it over. */
  'orphaned-active',
  /** A head past its deadline that nobody expired: it is expired (and its sender told). */
  'expired-head',
  /** In-flight slots past their lease (a runner that never settled): dropped. */
  'lapsed-slot',
  /** Entries of the shared global waiting line whose waiter stopped looking: dropped. */
  'stale-line-entry',
  /**
   * A direct request whose runner is gone (crashed after its claim, or never ran) and whose
   * in-flight lease lapsed: ended once — settled to the reply a runner kept, or charging nothing
   * and the user told `request_failed`.
   */
  'lapsed-direct-request',
  /**
   * A global share nothing holds any more (its decision's outcome was unknown and its undo got no
   * answer, or its settle's release never landed), past its lease: given back once — whole, or
   * the part its settle did not charge.
   */
  'orphaned-global-share',
] as const;
export type RepairKind = (typeof REPAIR_KINDS)[number];

export type Repair =
  | { readonly kind: 'lost-wake-up' | 'orphaned-active' | 'expired-head'; readonly requestId: string }
  | { readonly kind: 'lapsed-slot'; readonly slots: readonly (readonly [string, number])[] }
  | {
      readonly kind: 'lapsed-direct-request';
      readonly requestId: string;
      /** The in-flight lease seen (absent: its slot was dropped as lapsed since). */
      readonly leaseUntilEpochMs?: number;
      /** The claim of the runner that took it, as seen (absent: no runner claimed it). */
      readonly claim?: string;
    };

export interface SweepPlan {
  readonly repairs: readonly Repair[];
  /** When to look at this user again; `undefined`: nothing needing an end is left. */
  readonly nextLookEpochMs?: number;
}

/**
 * What a live wake-up of this user would have done by now, and did not: the repairs to make, from
 * the item alone. Each one is decided with {@link SWEEP_GRACE_MS} of slack past the latest moment
 * the live party had to act, so a wake-up that is legitimately hidden (deferred until its
 * `retryAfter`, parked until a slot frees, held for a reply's lease) is not second-guessed — and
 * if it is (a global limit's wait is not known from the user's item), the duplicate is harmless:
 * FIFO hands out one message of the user's group at a time, the processor serves the list's head
 * whichever message woke it, and an extra wake-up that finds nothing to do is deleted.
 */
export function planRepairs(view: LimiterView, nowMs: number): SweepPlan {
  const repairs: Repair[] = [];
  const looks: number[] = [];
  const due = (atMs: number) => atMs + SWEEP_GRACE_MS <= nowMs;
  planSlots(view, due, repairs, looks);
  planQueue(view, nowMs, due, repairs, looks);
  return plan(repairs, looks, nowMs);
}

/** Slots of runners that never settled, and direct requests nobody ended. */
function planSlots(
  view: LimiterView,
  due: (atMs: number) => boolean,
  repairs: Repair[],
  looks: number[],
): void {
  const { snap } = view;
  // The active request's slot moves with its takeover.
  const slots = Object.entries(snap.inFlight ?? {}).filter(([id]) => id !== snap.active?.requestId);
  // A lapsed slot that still has its reservation is a direct request nobody ended (its runner
  // crashed after its claim, or its event never ran): it is ended, not only its slot dropped. The
  // runner never answers past its lease (reply-runner.ts stops before it), so a grace past the
  // lease cuts off no live runner.
  const lapsed = slots.filter(([id, lease]) => due(lease) && !snap.reservations[id]);
  if (lapsed.length) repairs.push({ kind: 'lapsed-slot', slots: lapsed });
  for (const [id, lease] of slots) {
    if (!due(lease)) looks.push(lease + SWEEP_GRACE_MS);
    else if (snap.reservations[id]) {
      repairs.push(lapsedDirect(snap.reservations[id], id, lease));
    }
  }
  // A reservation whose slot is gone (dropped as lapsed by a later admission) and that is not the
  // active request's: its lease lapsed before that admission, so it is ended the same way.
  for (const [id, pending] of Object.entries(snap.reservations)) {
    if (snap.inFlight?.[id] === undefined && id !== snap.active?.requestId && !snap.queued[id]) {
      repairs.push(lapsedDirect(pending, id, undefined));
    }
  }
}

/** The active request nobody took over, or the head nobody expired or served. */
function planQueue(
  view: LimiterView,
  nowMs: number,
  due: (atMs: number) => boolean,
  repairs: Repair[],
  looks: number[],
): void {
  const { snap } = view;
  if (snap.active) {
    // A live wake-up is held for the lease and comes back when it ends, to take over.
    const { requestId, leaseUntilEpochMs } = snap.active;
    if (due(leaseUntilEpochMs)) repairs.push({ kind: 'orphaned-active', requestId });
    else looks.push(leaseUntilEpochMs + SWEEP_GRACE_MS);
    return;
  }
  const head = snap.waiting[0];
  if (head === undefined) return;
  const request = snap.queued[head];
  if (!request || isExpired({ expiresAtEpochMs: request.expiresAtEpochMs + SWEEP_GRACE_MS }, nowMs)) {
    // A live wake-up expires its head at the deadline; this one nobody did.
    repairs.push({ kind: 'expired-head', requestId: head });
    return;
  }
  const lookBy = wakeUpDueEpochMs(view, nowMs);
  if (due(lookBy)) repairs.push({ kind: 'lost-wake-up', requestId: head });
  else looks.push(lookBy + SWEEP_GRACE_MS);
}

function lapsedDirect(
  pending: { readonly claim?: string },
  requestId: string,
  leaseUntilEpochMs: number | undefined,
): Repair {
  return {
    kind: 'lapsed-direct-request',
    requestId,
    ...(leaseUntilEpochMs !== undefined ? { leaseUntilEpochMs } : {}),
    ...(pending.claim !== undefined ? { claim: pending.claim } : {}),
  };
}

/**
 * The latest instant a live wake-up of a user with a waiting head and no active request looks at
 * the item: right after the head was queued, or when the user's own limits admit it (a deferral
 * ends then), or when the earliest in-flight slot lapses if every slot is taken (a parked
 * wake-up's hold ends then) — whichever is latest — and never later than the head's deadline (it
 * is expired then). Unlike an ETA it is not clamped to now: a time in the past is the point.
 */
export function wakeUpDueEpochMs(view: LimiterView, nowMs: number): number {
  const { snap, limits, policy } = view;
  const head = snap.queued[snap.waiting[0] ?? ''];
  let at = head?.enqueuedAtEpochMs ?? nowMs;
  for (const state of limits) at = Math.max(at, limitKind(state.name).readyAtEpochMs(1, state, policy));
  const slots = limits.find((l) => limitKind(l.name).waitsFor === 'slot');
  if (slots && slots.remaining <= 0) at = Math.max(at, slots.resetAtEpochMs);
  return head ? Math.min(at, head.expiresAtEpochMs) : at;
}

/**
 * After a repair that sent a wake-up, the next look is this much later: long enough that a wake-up
 * which was only hidden (a global wait the item does not show) gets at most one duplicate in five
 * minutes, soon enough that a repair whose own message was lost is repaired again.
 */
export const SWEEP_RECHECK_MS = 5 * 60_000;

function plan(repairs: Repair[], looks: number[], nowMs: number): SweepPlan {
  if (repairs.some((r) => r.kind !== 'lapsed-slot')) looks.push(nowMs + SWEEP_RECHECK_MS);
  return { repairs, nextLookEpochMs: looks.length ? Math.min(...looks) : undefined };
}
