import { ExpressionWriter, type UpdatePlan } from '../expression';
import { IN_FLIGHT_ATTR } from '../item/attributes';
import type { LimiterSnapshot } from '../item/state';
import type { GlobalAmounts } from '../kinds/global-part';
import { storedNumber } from '../kinds/kind-snapshot';
import { takeInFlightSlot } from '../kinds/shapes/in-flight';
import { countInWindow } from '../kinds/shapes/window-counter';
import { DAY_MS, monthNumber } from '../windows';
import {
  GLOBAL_PARTS,
  type GlobalBound,
  type GlobalLimit,
  type GlobalLimits,
  globalRetryAfterMs,
  shardWindows,
  storedLimit,
} from './limits';
import { countQuota, giveBackQuota, type QuotaAsk, quotaRoom } from './model-quotas';
import {
  type GlobalReservation,
  legacyShareRecordName,
  type RecordedShare,
  recordShare,
  removeEntry,
  removeRecord,
  SHARE_RECORDS_PER_SHARD,
} from './share-record';

export {
  GLOBAL_SHARE_PREFIX,
  type GlobalReservation,
  type RecordedShare,
  recordedShares,
} from './share-record';

/** The part bounded by the shard's in-flight map: a shard at its record cap is full for it too. */
const SLOT_PART = GLOBAL_PARTS.find((p) => p.counter === undefined)!;

/** Does the shard, as `snap` shows it, hold a share of the request (its record, or its `fl` entry)? */
export function holdsShare(snap: LimiterSnapshot, requestId: string): boolean {
  return snap.inFlight?.[requestId] !== undefined || (snap.shareRecords?.includes(requestId) ?? false);
}

/**
 * Each global counter is split over `shards` items (`pk = global#<k>`), shard k holding its share
 * of every limit, so the shares add up to the limit exactly and each shard's conditional write
 * keeps its own share. No shard is a hot item: a decision writes one shard, chosen by what this
 * instance last saw of each (the one with most room); a full shard sends the request to the next
 * one with room (docs/limiter.md). The counters are the kinds' global parts (global/parts.ts).
 */
export const shardKey = (k: number, prefix = GLOBAL_SHARD_PREFIX) => `${prefix}#${k}`;
/** The stack's shards' key prefix; a team's are `team#<name>` (lambda/core/limiter/teams.ts). */
export const GLOBAL_SHARD_PREFIX = 'global';

/** Shard k's share of `limit`: the shares of 0..shards−1 add up to `limit` exactly. */
export function shareOf(limit: number, shards: number, k: number): number {
  return Math.floor(limit / shards) + (k < limit % shards ? 1 : 0);
}

/** What one request takes from the global counters. */
export interface GlobalAsk extends GlobalAmounts {
  readonly requestId: string;
  /** Whose request: the sweep reads that user's item to tell whether an orphaned share was charged. */
  readonly userId: string;
  readonly leaseUntilEpochMs: number;
  /** Its model and quota tokens, when the model has an account quota (global/model-quotas.ts). */
  readonly quota?: QuotaAsk;
}

/** A shard's room for each limit, as a belief of it says (stored units). */
export interface ShardRoom {
  readonly shard: number;
  /** The limit (or model quota) that has no room for the ask, if any. */
  readonly blocking?: GlobalBound;
  /** Room left, relative to its share, of the tightest limit (0..1): the router fills the emptiest. */
  readonly free: number;
  /** When the blocking limit may have room again in this shard (ms from now). */
  readonly retryAfterMs?: number;
}

/** Does shard k, as believed, have room for the ask under every enforced limit? */
export function roomIn(
  limits: GlobalLimits,
  k: number,
  snap: LimiterSnapshot,
  ask: GlobalAsk,
  nowMs: number,
): ShardRoom {
  let blocking: (typeof GLOBAL_PARTS)[number] | undefined;
  let free = 1;
  // The shard's windows, read once for every part (usedIn would read them again for each).
  const windows = shardWindows(snap, nowMs);
  for (const part of GLOBAL_PARTS) {
    const limit = storedLimit(limits, part.kind);
    if (limit === undefined || limits.shadow?.includes(part.kind)) continue;
    const share = shareOf(limit, limits.shards, k);
    const left = share - part.used(snap, nowMs, windows);
    if (left < part.takes(ask) && !blocking) blocking = part;
    free = Math.min(free, share > 0 ? Math.max(0, left) / share : 0);
  }
  // The record cap (SHARE_RECORDS_PER_SHARD), whatever is configured: full, as for requests in flight.
  const records = snap.shareRecords?.length ?? 0;
  if (records >= SHARE_RECORDS_PER_SHARD && !blocking) blocking = SLOT_PART;
  free = Math.min(free, Math.max(0, SHARE_RECORDS_PER_SHARD - records) / SHARE_RECORDS_PER_SHARD);
  const share = (limit: number) => shareOf(limit, limits.shards, k);
  const quota = quotaRoom(limits.models, share, snap, ask.quota, windows.minute);
  const bound: GlobalBound | undefined = blocking?.kind ?? quota.blocking;
  return {
    shard: k,
    blocking: bound,
    free: Math.min(free, quota.free),
    ...(bound ? { retryAfterMs: globalRetryAfterMs(bound, nowMs, windows) } : {}),
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
  // a lapsed one is dropped by the next admission. A part without a window counter is bounded by
  // the map's size (the in-flight limit).
  const slot = GLOBAL_PARTS.find((p) => p.counter === undefined);
  takeInFlightSlot(w, {
    snap: belief,
    requestId: ask.requestId,
    leaseUntilEpochMs: ask.leaseUntilEpochMs,
    limit: slot === undefined ? undefined : bound(slot.kind),
    nowMs,
  });
  if (belief.inFlight !== undefined) {
    w.condition(`attribute_not_exists(${w.name(IN_FLIGHT_ATTR)}.${w.name(ask.requestId)})`);
  }
  // The shard's windows where it is already ahead of this clock (see shardWindows).
  const windows = shardWindows(belief, nowMs);
  const counted = ask.quota && limits.models?.[ask.quota.modelId] ? ask.quota : undefined;
  const taken: GlobalReservation = {
    shard,
    tokens: ask.tokens,
    costMicroUsd: ask.costMicroUsd,
    weight: ask.weight,
    hour: windows.hour,
    day: windows.day,
    ...(counted ? { quota: { ...counted, minute: windows.minute } } : {}),
  };
  recordShare(w, belief, ask.requestId, {
    ...taken,
    userId: ask.userId,
    leaseUntilEpochMs: ask.leaseUntilEpochMs,
  });
  for (const part of GLOBAL_PARTS) {
    const { counter } = part;
    if (counter === undefined || limits[part.kind] === undefined) continue;
    countInWindow(w, {
      snap: belief,
      windowAttr: counter.windowAttr,
      countAttr: counter.countAttr,
      window: windows[counter.window],
      amount: part.takes(ask),
      limit: bound(part.kind),
    });
  }
  countQuota(w, {
    quotas: limits.models,
    shares: (limit) => shareOf(limit, limits.shards, shard),
    belief,
    ask: ask.quota,
    minute: windows.minute,
  });
  return { plan: w.build(), taken };
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
  readonly refund: {
    readonly tokens: number;
    readonly costMicroUsd: number;
    /** Quota tokens not used (global/model-quotas.ts). @default 0 */
    readonly quotaTokens?: number;
  };
  readonly undo: boolean;
}): UpdatePlan | undefined {
  const { belief, requestId, taken, refund, undo } = args;
  if (!holdsShare(belief, requestId)) return undefined;
  const w = new ExpressionWriter();
  // The share's record is what is given back once: the sweep's give-back of an orphaned share
  // removes it with the entry, so whichever lands first gives back, and the other fails here.
  if (belief.shareRecords?.includes(requestId)) {
    removeRecord(w, belief, requestId);
  } else {
    // Recorded before issue 22 (`ga_<id>`), or before records existed (only its `fl` entry).
    const entry = `${w.name(IN_FLIGHT_ATTR)}.${w.name(requestId)}`;
    const share = w.name(legacyShareRecordName(requestId));
    w.condition(`(attribute_exists(${share}) OR attribute_exists(${entry}))`);
    w.remove(entry, share);
  }
  const unused = { ...refund, weight: 0 };
  // Unused tokens and cost go back (never more than taken); a message only when undone.
  givesBack(w, belief, taken, (part) =>
    part.refundsUnused ? Math.min(part.takes(taken), part.takes(unused)) : undo ? part.takes(taken) : 0,
  );
  // The model quota's minute: the unused quota tokens, and, undone, the request and all of them.
  if (taken.quota) {
    giveBackQuota(w, belief, taken.quota, {
      requests: undo ? 1 : 0,
      tokens: undo ? taken.quota.quotaTokens : (refund.quotaTokens ?? 0),
    });
  }
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
  if (!share.legacy) {
    removeRecord(w, belief, share.requestId);
  } else {
    const record = w.name(legacyShareRecordName(share.requestId));
    w.condition(`attribute_exists(${record})`);
    w.remove(record);
    removeEntry(w, belief, share.requestId);
  }
  const spent = { tokens: charged?.tokens ?? 0, costMicroUsd: charged?.costMicroUsd ?? 0, weight: 0 };
  // What was not charged goes back; a message only when the request was never admitted.
  givesBack(w, belief, share, (part) =>
    part.refundsUnused ? Math.max(0, part.takes(share) - part.takes(spent)) : charged ? 0 : part.takes(share),
  );
  return w.build();
}

/**
 * Each window-counted part's amount back into its counter if the shard is still in the window it
 * was counted in (`counted`'s hour or day); pinned either way.
 */
function givesBack(
  w: ExpressionWriter,
  belief: LimiterSnapshot,
  counted: GlobalAmounts & { readonly hour: number; readonly day: number },
  amountOf: (part: (typeof GLOBAL_PARTS)[number]) => number,
): void {
  for (const part of GLOBAL_PARTS) {
    if (part.counter === undefined) continue;
    const { windowAttr, countAttr, window: which } = part.counter;
    const amount = amountOf(part);
    if (amount <= 0) continue;
    // The month is the day's (a share records its hour and day: share-record.ts).
    const window = which === 'month' ? monthNumber(counted.day * DAY_MS) : counted[which];
    const win = w.name(windowAttr);
    if (storedNumber(belief, windowAttr) === window) {
      w.condition(`${win} = ${w.value(window)}`);
      w.set(`${w.name(countAttr)} = ${w.name(countAttr)} - ${w.value(amount)}`);
    } else {
      // Rolled over since: nothing to give back there; pinned.
      w.condition(`(attribute_not_exists(${win}) OR ${win} <> ${w.value(window)})`);
    }
  }
}
