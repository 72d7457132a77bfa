import { bumpQueueVersion } from '../queue/places';
import type { ActiveRequest, WaitingRequest } from '../queue/request';
import { enqueuePullsSweepEarlier, markForSweep, SWEEP_GRACE_MS } from '../queue/sweep';
import { dayNumber, type Evaluation, evaluate, type TokenAsk } from './evaluate';
import { ExpressionWriter, type UpdatePlan } from './expression';
import { planHistory, QUEUED_DAY_PREFIX } from './history';
import { type Amount, LIMIT_KINDS, takeInFlightSlot } from './kinds';
import {
  type LimiterSnapshot,
  liveInFlight,
  type PendingReservation,
  QUEUED_PREFIX,
  queuedItemValue,
  RESERVATION_PREFIX,
  WARNED_PREFIX,
} from './snapshot';
import type { LimitPolicy, LimitWarning } from './types';
import { monthNumber } from './windows';

export { ExpressionWriter, type UpdatePlan } from './expression';

export type QueueMode = 'direct' | 'replay';

export type AdmissionPlan =
  /** The believed state refuses the request (the caller confirms with a fresh read). */
  | { readonly kind: 'reject'; readonly evaluation: Evaluation }
  /** Direct mode: the limits would admit, but the user has requests waiting (no overtaking). */
  | { readonly kind: 'queued-ahead'; readonly evaluation: Evaluation }
  /** Direct mode: a request with this id is still in flight or waiting. */
  | { readonly kind: 'duplicate'; readonly evaluation: Evaluation }
  /** Replay mode: the request is not at the head of the queue (cancelled, purged, or not first). */
  | { readonly kind: 'not-head'; readonly evaluation: Evaluation }
  /** Direct mode: this very request's earlier write landed though its answer was lost. */
  | {
      readonly kind: 'already-admitted';
      readonly evaluation: Evaluation;
      readonly inputTokens: number;
      readonly outputAllowance: number;
      readonly day: number;
      readonly tokenEpoch: number;
    }
  | {
      readonly kind: 'write';
      readonly evaluation: Evaluation;
      readonly plan: UpdatePlan;
      readonly day: number;
      /** Budgets and quotas this admission leaves at ≤ 20 % (first in their window). */
      readonly warnings: readonly WindowWarning[];
    };

/** How long an idle user's item lives (TTL): every limit it holds is whole again after a day. */
export const ITEM_TTL_SECONDS = 2 * 24 * 3600;
/** Items carrying an admin's tier or override live this long after their last use. */
export const POLICY_TTL_SECONDS = 400 * 24 * 3600;

/**
 * Plans the one conditional UpdateItem that admits a request, from the state the caller
 * *believes* the item is in (its cache, or nothing). DynamoDB expressions have no `max()`, so each
 * counter has two shapes (idle or busy bucket; same or new window) and the belief picks one. Every
 * shape carries a condition that makes it correct whatever the item really holds: if the belief
 * was wrong the write fails as a whole, nothing moves, and the caller re-reads and plans again.
 */
export function planAdmission(args: {
  readonly policy: LimitPolicy;
  readonly belief: LimiterSnapshot;
  readonly ask: TokenAsk;
  readonly requestId: string;
  readonly queue:
    | { readonly mode: 'direct' }
    | { readonly mode: 'replay'; readonly leaseUntilEpochMs: number };
  /** Until when the request holds its in-flight slot if its runner never settles. */
  readonly leaseUntilEpochMs: number;
  /** The user's key in today's usage index (`usageDayKey`). */
  readonly usageKey?: string;
  /** The user, to put into the sweep index: its slot (and active request) need an end. */
  readonly sweepUserId?: string;
  readonly nowMs: number;
}): AdmissionPlan {
  const { policy, belief, ask, requestId, queue, nowMs, leaseUntilEpochMs } = args;
  const evaluation = evaluate(policy, belief, ask, nowMs);
  const day = dayNumber(nowMs);
  if (queue.mode === 'replay') {
    // An active request (even this one, admitted by an earlier delivery) is served by its lease
    // and takeover, never admitted again.
    if (belief.waiting[0] !== requestId || belief.active) return { kind: 'not-head', evaluation };
  } else if (belief.reservations[requestId] || belief.queued[requestId]) {
    return { kind: 'duplicate', evaluation };
  }
  if (evaluation.blocking || !evaluation.reservation) return { kind: 'reject', evaluation };
  if (queue.mode === 'direct' && belief.waiting.length > 0) return { kind: 'queued-ahead', evaluation };

  const w = new ExpressionWriter();

  // Policy version: the limits above are the ones in force. An admin change of tier or override
  // bumps `pv`, so a write planned from an older policy fails instead of applying stale limits.
  w.condition(
    belief.pv === 0 ? `attribute_not_exists(${w.name('pv')})` : `${w.name('pv')} = ${w.value(belief.pv)}`,
  );
  // Every limit kind adds its condition and update (lambda/core/limiter/kinds.ts).
  const reserved = evaluation.reservation.reservedTokens;
  for (const kind of LIMIT_KINDS) {
    kind.plan(w, {
      policy,
      snap: belief,
      nowMs,
      model: ask.price ?? { inputUsdPerMillion: 0, outputUsdPerMillion: 0 },
      weight: ask.messageWeight ?? 1,
      reserved: { tokens: reserved, costMicroUsd: evaluation.reservation.reservedCostMicroUsd },
      requestId,
      leaseUntilEpochMs,
      enforce: !policy.shadow?.includes(kind.name),
    });
  }
  // The pending reservation, so reconcile can refund exactly once (it removes this marker). The
  // token epoch pins the budget it was taken from: a reset since then makes the refund void.
  const marker = w.name(`${RESERVATION_PREFIX}${requestId}`);
  w.condition(`attribute_not_exists(${marker})`);
  w.condition(
    belief.te === 0 ? `attribute_not_exists(${w.name('te')})` : `${w.name('te')} = ${w.value(belief.te)}`,
  );
  w.set(
    `${marker} = ${w.value({
      d: day,
      m: monthNumber(nowMs),
      c: evaluation.reservation.reservedCostMicroUsd,
      mo: ask.model,
      i: evaluation.reservation.inputTokens,
      o: evaluation.reservation.outputAllowance,
      e: belief.te,
    })}`,
  );

  const waiting = w.name('waiting');
  if (queue.mode === 'direct') {
    // Nobody may be waiting (no overtaking), and the id must not be a waiting request's: with the
    // marker condition above, a client reusing an id still in flight is refused, and a retried
    // write whose first try did land cannot count twice.
    w.condition(`(attribute_not_exists(${waiting}) OR size(${waiting}) = ${w.value(0)})`);
    w.condition(`attribute_not_exists(${w.name(`${QUEUED_PREFIX}${requestId}`)})`);
  } else {
    // Replay: only the head of the list may run, and only when no other queued request of the
    // user is being answered. Admitting takes it out of the list and makes it the active request,
    // leased to this delivery; a second delivery finds it gone from the head and admits nothing.
    const act = w.name('act');
    w.condition(`${waiting}[0] = ${w.value(requestId)}`);
    w.condition(`attribute_not_exists(${act})`);
    w.remove(`${waiting}[0]`);
    w.set(`${act} = ${w.value({ id: requestId, lease: queue.leaseUntilEpochMs, att: 1 })}`);
    // Everyone behind moved up: a new version of the list (their notices carry it).
    bumpQueueVersion(w);
  }
  // limit_warning, once per limit and window: the admission that leaves a budget or quota at
  // ≤ 20 % marks the window; the condition makes sure no other admission marked it first.
  const warnings = warningsOf(policy, belief, evaluation, nowMs, ask.messageWeight ?? 1);
  for (const warning of warnings) {
    const marked = w.name(`${WARNED_PREFIX}${warning.limit}`);
    const window = w.value(warning.window);
    w.condition(`(attribute_not_exists(${marked}) OR ${marked} <> ${window})`);
    w.set(`${marked} = ${window}`);
  }
  // The first admission of a new day carries the day that ended into the history (usage --history).
  planHistory(w, belief, nowMs);
  // Today's usage index (`admin top`): the day and the user's bucket, kept with the counters.
  if (args.usageKey) w.set(`${w.name('ud')} = ${w.value(args.usageKey)}`);
  // Its slot ends with the settle or its lease; if the runner dies, the sweep sees it lapse.
  if (args.sweepUserId) markForSweep(w, args.sweepUserId, leaseUntilEpochMs + SWEEP_GRACE_MS);
  // Idle users' items expire; one an admin gave a tier or override (pv > 0, pinned above) is kept.
  const ttlSeconds = belief.pv > 0 ? POLICY_TTL_SECONDS : ITEM_TTL_SECONDS;
  w.set(`${w.name('ttlEpochSeconds')} = ${w.value(Math.floor(nowMs / 1000) + ttlSeconds)}`);
  return { kind: 'write', evaluation, plan: w.build(), day, warnings };
}

/** A budget or quota this admission leaves at ≤ 20 %, in a window not warned about yet. */
export type WindowWarning = LimitWarning & { readonly window: number };

export const WARNING_THRESHOLD = 0.2;

export function warningsOf(
  policy: LimitPolicy,
  belief: LimiterSnapshot,
  evaluation: Evaluation,
  nowMs: number,
  weight = 1,
): WindowWarning[] {
  const reservation = evaluation.reservation;
  if (!reservation) return [];
  const reserved = { tokens: reservation.reservedTokens, costMicroUsd: reservation.reservedCostMicroUsd };
  const warnings: WindowWarning[] = [];
  for (const kind of LIMIT_KINDS) {
    if (!kind.warns || policy.shadow?.includes(kind.name)) continue;
    const state = evaluation.limits.find((l) => l.name === kind.name);
    if (!state || state.limit <= 0) continue;
    const window = kind.warns.windowOf(nowMs);
    if (belief.warned[kind.name] === window) continue;
    const remaining = Math.max(0, state.remaining - kind.warns.taken(reserved, weight));
    if (remaining > state.limit * WARNING_THRESHOLD) continue;
    warnings.push({
      limit: kind.name,
      window,
      remaining,
      limitValue: state.limit,
      unit: kind.unit,
      resetAtEpochMs: state.resetAtEpochMs,
    });
  }
  return warnings;
}

/**
 * Puts a request at the end of the user's waiting list, with its data, in one write: its position
 * is fixed here, before anything is sent to SQS, and never goes up (the list only ever loses
 * entries ahead of it). The cap is part of the condition, so no burst can queue more than
 * `maxQueued`; a full queue costs one failed write and changes nothing.
 */
export function planEnqueue(args: {
  readonly request: WaitingRequest;
  readonly maxQueued: number;
  readonly nowMs: number;
  readonly keepsPolicy: boolean;
  /**
   * The user, to put into the sweep index (a waiting list needs a wake-up until it is empty), and
   * its look-after as the caller believes it.
   */
  readonly sweep?: { readonly userId: string; readonly believedAfterEpochMs?: number };
}): UpdatePlan {
  const { request, maxQueued, nowMs } = args;
  const w = new ExpressionWriter();
  const waiting = w.name('waiting');
  const data = w.name(`${QUEUED_PREFIX}${request.requestId}`);
  w.condition(`(attribute_not_exists(${waiting}) OR size(${waiting}) < ${w.value(maxQueued)})`);
  // An id still waiting, active or holding a reservation is a duplicate, not a second request.
  w.condition(`attribute_not_exists(${data})`);
  w.condition(`attribute_not_exists(${w.name(`${RESERVATION_PREFIX}${request.requestId}`)})`);
  w.set(
    `${waiting} = list_append(if_not_exists(${waiting}, ${w.value([])}), ${w.value([request.requestId])})`,
  );
  w.set(`${data} = ${w.value(queuedItemValue(request))}`);
  // Counted per day for `usage --history` (the admission that rolls the day over moves it there).
  const queuedToday = w.name(`${QUEUED_DAY_PREFIX}${dayNumber(nowMs)}`);
  w.set(`${queuedToday} = if_not_exists(${queuedToday}, ${w.value(0)}) + ${w.value(1)}`);
  // The item must outlive the request's deadline, whatever its TTL was.
  const ttlSeconds = Math.max(
    Math.floor(request.expiresAtEpochMs / 1000) + 3600,
    Math.floor(nowMs / 1000) + (args.keepsPolicy ? POLICY_TTL_SECONDS : ITEM_TTL_SECONDS),
  );
  w.set(`${w.name('ttlEpochSeconds')} = ${w.value(ttlSeconds)}`);
  // Its wake-up is sent next; if that is lost, the sweep sends one (lambda/core/queue/sweep.ts).
  if (args.sweep) {
    markForSweep(w, args.sweep.userId, nowMs + SWEEP_GRACE_MS, {
      pullEarlier: enqueuePullsSweepEarlier(args.sweep.believedAfterEpochMs, nowMs),
    });
  }
  return w.build();
}

/**
 * Takes a waiting request out of the list (cancel, purge, expiry, an enqueue undone), with its
 * data. The list may have moved since it was read, so the write removes by index only if that
 * index still holds this request; otherwise it fails and the caller reads again.
 */
export function planRemoveWaiting(requestId: string, index: number): UpdatePlan {
  const w = new ExpressionWriter();
  const waiting = w.name('waiting');
  w.condition(`${waiting}[${index}] = ${w.value(requestId)}`);
  w.remove(`${waiting}[${index}]`, w.name(`${QUEUED_PREFIX}${requestId}`));
  bumpQueueVersion(w);
  return w.build();
}

/**
 * Takes over the active request of a crashed attempt: only if its lease is still the one that
 * lapsed (two deliveries racing to take over: one wins).
 */
export function planTakeover(args: {
  readonly active: ActiveRequest;
  readonly leaseUntilEpochMs: number;
  readonly belief: LimiterSnapshot;
  readonly policy: LimitPolicy;
  readonly nowMs: number;
  /** A hand-off that failed ends its own lease now (the slot is not taken again for it). */
  readonly endsLease?: boolean;
}): UpdatePlan | { readonly full: true } {
  const { active, leaseUntilEpochMs, belief, policy, nowMs } = args;
  const w = new ExpressionWriter();
  const act = w.name('act');
  const id = w.name('id');
  const lease = w.name('lease');
  w.condition(
    `${act}.${id} = ${w.value(active.requestId)} AND ${act}.${lease} = ${w.value(active.leaseUntilEpochMs)}`,
  );
  w.set(`${act} = ${w.value({ id: active.requestId, lease: leaseUntilEpochMs, att: active.attempts + 1 })}`);
  // The request's in-flight slot goes with the lease: kept if it is still there, taken again (if
  // one is free) if a later admission dropped it when it lapsed.
  const fl = w.name('fl');
  const entry = `${fl}.${w.name(active.requestId)}`;
  if (belief.inFlight?.[active.requestId] !== undefined) {
    w.condition(`attribute_exists(${entry})`);
    w.set(`${entry} = ${w.value(leaseUntilEpochMs)}`);
  } else if (!args.endsLease) {
    const limit = policy.shadow?.includes('requestsInFlight') ? undefined : policy.requestsInFlight;
    if (limit !== undefined && liveInFlight(belief, nowMs).length >= limit) return { full: true };
    takeInFlightSlot(w, { snap: belief, requestId: active.requestId, leaseUntilEpochMs, limit, nowMs });
  }
  return w.build();
}

/**
 * Parks the user's SQS wake-up while every in-flight slot is taken: its receipt handle goes into
 * the item, and the settle that frees a slot makes it visible again. Only if the in-flight
 * requests are still the ones the refusal was decided from: a reply that ended meanwhile fails the
 * write, and the caller looks again instead of waiting for a settle that already happened.
 */
export function planPark(belief: LimiterSnapshot, receiptHandle: string): UpdatePlan {
  const w = new ExpressionWriter();
  const fl = w.name('fl');
  const entries = Object.entries(belief.inFlight ?? {});
  w.condition(`size(${fl}) = ${w.value(entries.length)}`);
  for (const [id, lease] of entries) w.condition(`${fl}.${w.name(id)} = ${w.value(lease)}`);
  w.set(`${w.name('wk')} = ${w.value(receiptHandle)}`);
  return w.build();
}

/**
 * Settles a reservation (reconcile): removes its marker, which exists until the first settle, so a
 * second one changes nothing; gives back what was reserved and not used (`delta` > 0) or charges
 * more (< 0, already capped) in every token limit that counted it (each kind's `settle`), and, for
 * a queued request, ends it as the user's active request, all in one write.
 *
 * The belief decides whether the refund applies: the token epoch (a reset since the reservation
 * voids it) and each budget's window. Either way the write pins what it decided from — `te` equal
 * to the reservation's epoch, or different from it — so a stale belief fails the write (and the
 * caller reads and plans again) instead of dropping a refund that was due.
 */
export function planSettle(args: {
  readonly policy: LimitPolicy;
  readonly belief: LimiterSnapshot;
  readonly requestId: string;
  readonly pending: PendingReservation;
  readonly delta: Amount;
  readonly nowMs: number;
  readonly endsActive: boolean;
}): UpdatePlan {
  const { policy, belief, requestId, pending, delta, nowMs } = args;
  const w = new ExpressionWriter();
  const marker = w.name(`${RESERVATION_PREFIX}${requestId}`);
  w.condition(`attribute_exists(${marker})`);
  w.remove(marker);
  const epoch = pending.e ?? 0;
  const te = w.name('te');
  const sameEpoch = belief.te === epoch;
  if (sameEpoch) {
    w.condition(epoch === 0 ? `attribute_not_exists(${te})` : `${te} = ${w.value(epoch)}`);
    if (delta.tokens !== 0 || delta.costMicroUsd !== 0) {
      const model = { inputUsdPerMillion: 0, outputUsdPerMillion: 0 }; // settles move amounts, not prices
      for (const kind of LIMIT_KINDS)
        kind.settle?.(w, { policy, snap: belief, nowMs, model, pending, delta });
    }
  } else {
    // Reset since: nothing of this reservation is in the counts any more.
    w.condition(
      epoch === 0 ? `attribute_exists(${te})` : `(attribute_not_exists(${te}) OR ${te} <> ${w.value(epoch)})`,
    );
  }
  // What the request held while it was answered (its in-flight slot) is given back.
  for (const kind of LIMIT_KINDS) kind.release?.(w, { snap: belief, requestId });
  // A wake-up parked until a slot frees is taken out here; the caller makes it visible.
  const wk = w.name('wk');
  if (belief.parkedWakeUp !== undefined) {
    w.condition(`${wk} = ${w.value(belief.parkedWakeUp)}`);
    w.remove(wk);
  } else {
    w.condition(`attribute_not_exists(${wk})`);
  }
  if (args.endsActive) {
    const act = w.name('act');
    w.condition(`${act}.${w.name('id')} = ${w.value(requestId)}`);
    w.remove(act, w.name(`${QUEUED_PREFIX}${requestId}`));
  }
  return w.build();
}

/** Buckets today's usage index is spread over, so no index partition takes every user's writes. */
export const USAGE_BUCKETS = 16;

/**
 * A user's key in the usage index for the day of `nowMs`: `<day>#<bucket>`, the bucket a hash of
 * the user id (FNV-1a), so `admin top` reads 16 small partitions instead of one hot one.
 */
export function usageDayKey(userId: string, nowMs: number): string {
  let hash = 0x811c9dc5;
  for (let i = 0; i < userId.length; i++) hash = Math.imul(hash ^ userId.charCodeAt(i), 0x01000193) >>> 0;
  return `${dayNumber(nowMs)}#${hash % USAGE_BUCKETS}`;
}
