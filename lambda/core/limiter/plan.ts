import { bumpQueueVersion } from '../queue/places';
import type { ActiveRequest, WaitingRequest } from '../queue/request';
import { enqueuePullsSweepEarlier, markForSweep, SWEEP_GRACE_MS } from '../queue/sweep';
import type { LimitWarning } from './decision';
import { dayNumber, type Evaluation, evaluate, type TokenAsk } from './evaluate';
import { ExpressionWriter, type UpdatePlan } from './expression';
import { planHistory, QUEUED_DAY_PREFIX } from './history';
import { type Amount, LIMIT_KINDS, movesTokenBucket, takeInFlightSlot } from './kinds';
import { type LimitPolicy, markerWindows } from './kinds/registry';
import {
  type LimiterSnapshot,
  liveInFlight,
  type PendingReservation,
  QUEUED_PREFIX,
  queuedItemValue,
  RESERVATION_PREFIX,
  SETTLED_SHARE_LIFE_MS,
  SETTLED_SHARE_PREFIX,
  WARNED_PREFIX,
} from './snapshot';

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
      readonly costEpoch: number;
    }
  | {
      readonly kind: 'write';
      readonly evaluation: Evaluation;
      readonly plan: UpdatePlan;
      readonly day: number;
      /** Budgets and quotas this admission leaves at ≤ 20 % (first in their window). */
      readonly warnings: readonly WindowWarning[];
      /** The write moves the tokens-per-minute bucket (a shadow bucket it would overfill does not). */
      readonly movesBucket: boolean;
    };

/** How long an idle user's item lives (TTL) at least: every bucket and daily limit is whole again. */
export const ITEM_TTL_SECONDS = 2 * 24 * 3600;
/** Items carrying an admin's tier or override live this long after their last use. */
export const POLICY_TTL_SECONDS = 400 * 24 * 3600;
/** A lapsed lease's reservation and slot are kept this long for the sweep to repair them. */
export const REPAIR_MARGIN_MS = 3_600_000;

/**
 * The item's TTL (epoch seconds) after a write at `nowMs` that counts in the windows open now and
 * holds state until `holdsUntilEpochMs` (a lease, a queued request's deadline). DynamoDB deletes
 * an item some time after its TTL, so the TTL never precedes the end of any window whose counter
 * the item holds (issue 20, finding 10: the monthly budgets live here, and a 2-day TTL made a
 * spent monthly budget whole after two idle days), nor a lease's end plus the time the sweep
 * needs to repair what it left. Each limit kind with a fixed window declares its end; every
 * write that sets the TTL uses this, so no write lowers it below an open window's end.
 */
export function itemTtlEpochSeconds(args: {
  readonly nowMs: number;
  readonly keepsPolicy: boolean;
  readonly holdsUntilEpochMs?: number;
}): number {
  const { nowMs, keepsPolicy } = args;
  const idle = nowMs + (keepsPolicy ? POLICY_TTL_SECONDS : ITEM_TTL_SECONDS) * 1000;
  const windows = LIMIT_KINDS.map((k) => k.windowEndsAtMs?.(nowMs) ?? nowMs);
  const held = args.holdsUntilEpochMs === undefined ? nowMs : args.holdsUntilEpochMs + REPAIR_MARGIN_MS;
  return Math.ceil(Math.max(idle, held, ...windows) / 1000);
}

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
  // The pending reservation, so reconcile can refund exactly once (it removes this marker). It
  // lives until its request settles, whatever windows roll (see dropAbandonedMarkers). The epochs
  // pin the budgets it was taken from, one per reset scope: a reset of tokens since then voids its
  // token refund, a reset of cost its cost refund, and neither touches the other (finding 9).
  const marker = w.name(`${RESERVATION_PREFIX}${requestId}`);
  w.condition(`attribute_not_exists(${marker})`);
  for (const epoch of ['te', 'ce'] as const) {
    w.condition(
      belief[epoch] === 0
        ? `attribute_not_exists(${w.name(epoch)})`
        : `${w.name(epoch)} = ${w.value(belief[epoch])}`,
    );
  }
  w.set(
    `${marker} = ${w.value({
      // Every budget's window, under the field it declares (the daily ones' is the day, `d`).
      ...markerWindows(nowMs),
      d: day,
      c: evaluation.reservation.reservedCostMicroUsd,
      mo: ask.model,
      i: evaluation.reservation.inputTokens,
      o: evaluation.reservation.outputAllowance,
      e: belief.te,
      ce: belief.ce,
    })}`,
  );
  dropAbandonedMarkers(w, belief, requestId, nowMs);

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
  // Idle users' items expire, never before an open window's end or this request's lease; one an
  // admin gave a tier or override (pv > 0, pinned above) is kept longer.
  const ttl = itemTtlEpochSeconds({
    nowMs,
    keepsPolicy: belief.pv > 0,
    holdsUntilEpochMs: leaseUntilEpochMs,
  });
  w.set(`${w.name('ttlEpochSeconds')} = ${w.value(ttl)}`);
  const movesBucket = movesTokenBucket(
    policy,
    belief,
    nowMs,
    reserved,
    !policy.shadow?.includes('tokensPerMinute'),
  );
  return { kind: 'write', evaluation, plan: w.build(), day, warnings, movesBucket };
}

/**
 * A reservation marker ends with its request's settle. One whose request can no longer settle — a
 * direct request whose runner crashed: not the user's active request, its in-flight slot gone or
 * lapsed (the runner never answers past its lease) — is dropped by the first admission of a later
 * day. Pinned: its slot still absent (a lapsed one is pinned and dropped by the in-flight kind in
 * this same write) and it is not the active request, so a marker whose request may still settle
 * is never dropped (issue 20, finding 4).
 */
function dropAbandonedMarkers(
  w: ExpressionWriter,
  belief: LimiterSnapshot,
  requestId: string,
  nowMs: number,
): void {
  const today = dayNumber(nowMs);
  for (const [id, pending] of Object.entries(belief.reservations)) {
    if (id === requestId || pending.d >= today || belief.active?.requestId === id) continue;
    const lease = belief.inFlight?.[id];
    if (lease !== undefined && lease > nowMs) continue;
    if (lease === undefined) w.condition(`attribute_not_exists(${w.name('fl')}.${w.name(id)})`);
    const act = w.name('act');
    w.condition(`(attribute_not_exists(${act}) OR ${act}.${w.name('id')} <> ${w.value(id)})`);
    w.remove(w.name(`${RESERVATION_PREFIX}${id}`));
  }
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
  // The item must outlive the request's deadline and every open window's counter.
  const ttlSeconds = itemTtlEpochSeconds({
    nowMs,
    keepsPolicy: args.keepsPolicy,
    holdsUntilEpochMs: request.expiresAtEpochMs,
  });
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
  if (args.endsLease) {
    // A hand-off whose Invoke failed ends its lease only if no runner claimed this attempt: an
    // Invoke whose answer was lost may have started one, and that one keeps the request.
    w.condition(`attribute_not_exists(${act}.${w.name('c')})`);
  }
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
 * Ends an active request that nothing else can end (admin `purge-queue` and `reset`): one whose data
 * or reservation marker is gone, so no settle can remove `act` (its condition needs the marker) and
 * every delivery of the user's wake-up finds it and stops (issue 20, finding 4: markers dropped by
 * the first admission of a new day left such requests). Pinned to the `act` seen and to the
 * marker or data still missing, so a request that can still settle is never ended here. Its
 * in-flight slot and data go with it.
 */
export function planEndStuckActive(belief: LimiterSnapshot, active: ActiveRequest): UpdatePlan {
  const w = new ExpressionWriter();
  const act = w.name('act');
  const id = active.requestId;
  const marker = w.name(`${RESERVATION_PREFIX}${id}`);
  const data = w.name(`${QUEUED_PREFIX}${id}`);
  w.condition(
    `${act}.${w.name('id')} = ${w.value(id)} AND ${act}.${w.name('lease')} = ${w.value(active.leaseUntilEpochMs)}`,
  );
  w.condition(`(attribute_not_exists(${marker}) OR attribute_not_exists(${data}))`);
  w.remove(act, data);
  if (belief.inFlight !== undefined) {
    const fl = w.name('fl');
    w.condition(`attribute_exists(${fl})`);
    w.remove(`${fl}.${w.name(id)}`);
  }
  return w.build();
}

/** Whether the user's active request can no longer be settled (its data or marker is gone). */
export function isStuckActive(snap: LimiterSnapshot): boolean {
  const id = snap.active?.requestId;
  return id !== undefined && (!snap.reservations[id] || !snap.queued[id]);
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
 * Whose settle it is (issue 20, finding 15): Lambda may deliver a runner's event twice, late, or
 * after a takeover, so a settle names the attempt it speaks for and lands only while that attempt
 * holds the request.
 * - `claim`: the runner that claimed the request ({@link planClaim}) with this id;
 * - `unclaimed`: before any runner claimed it (a failed hand-off, a dropped event, a request
 *   failed for good by the processor after its own takeover): lands only if none did.
 * Absent: no condition on the holder (a caller that owns the request by other means).
 */
export type SettleHolder =
  | { readonly claim: string }
  | {
      readonly unclaimed: true;
      /** A queued request: the attempt it speaks for (a takeover since moved `att` and the lease). */
      readonly active?: { readonly attempts: number; readonly leaseUntilEpochMs: number };
    };

/** The attempt of a request a runner claims: a queued request's active attempt, or a direct one. */
export type ClaimTarget =
  | { readonly source: 'queue'; readonly attempts: number; readonly leaseUntilEpochMs: number }
  /** `inFlightUntilEpochMs`: the admission's in-flight lease, which tells it from a reused id's. */
  | { readonly source: 'direct'; readonly inFlightUntilEpochMs?: number };

/**
 * The reply runner's claim on an admitted request, one conditional write before the model runs:
 * of two deliveries of the same event only one claims it (the other does nothing: no chunk, no
 * settle, no message), and an event of an attempt that was taken over since claims nothing.
 *
 * - queued: `act.id = :id AND act.att = :att AND act.lease = :lease AND attribute_not_exists(act.c)`
 *   — the active request is still this attempt (a takeover bumps `att` and the lease, and rewrites
 *   `act` without `c`), and no runner claimed it yet; sets `act.c`.
 * - direct: `attribute_exists(r_<id>) AND attribute_not_exists(r_<id>.a) AND fl.<id> = :until` —
 *   the reservation is still there (not settled, not refunded by a failed hand-off), nobody claimed
 *   it, and it is this admission's (a client that reused the id after the request ended has a new
 *   in-flight lease); sets `r_<id>.a`, one small field on the existing marker.
 */
export function planClaim(requestId: string, claim: string, target: ClaimTarget): UpdatePlan {
  const w = new ExpressionWriter();
  if (target.source === 'queue') {
    const act = w.name('act');
    const c = `${act}.${w.name('c')}`;
    w.condition(`${act}.${w.name('id')} = ${w.value(requestId)}`);
    w.condition(`${act}.${w.name('att')} = ${w.value(target.attempts)}`);
    w.condition(`${act}.${w.name('lease')} = ${w.value(target.leaseUntilEpochMs)}`);
    w.condition(`attribute_not_exists(${c})`);
    w.set(`${c} = ${w.value(claim)}`);
  } else {
    const marker = w.name(`${RESERVATION_PREFIX}${requestId}`);
    const a = `${marker}.${w.name('a')}`;
    w.condition(`attribute_exists(${marker})`);
    w.condition(`attribute_not_exists(${a})`);
    if (target.inFlightUntilEpochMs !== undefined) {
      w.condition(`${w.name('fl')}.${w.name(requestId)} = ${w.value(target.inFlightUntilEpochMs)}`);
    }
    w.set(`${a} = ${w.value(claim)}`);
  }
  return w.build();
}

/** Does `snap` still let `holder` settle this request? (What the settle's condition checks.) */
export function holdsRequest(
  snap: LimiterSnapshot,
  requestId: string,
  holder: SettleHolder,
  endsActive: boolean,
): boolean {
  let claim: string | undefined;
  if (endsActive) {
    const { active } = snap;
    if (active?.requestId !== requestId) return false;
    const attempt = 'unclaimed' in holder ? holder.active : undefined;
    const sameAttempt =
      !attempt ||
      (active.attempts === attempt.attempts && active.leaseUntilEpochMs === attempt.leaseUntilEpochMs);
    if (!sameAttempt) return false;
    claim = active.claim;
  } else {
    claim = snap.reservations[requestId]?.a;
  }
  return 'claim' in holder ? claim === holder.claim : claim === undefined;
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
  /** The bucket's arrival time the reservation left (`TokenReservation.bucketAfterEpochMs`). */
  readonly bucketAfterEpochMs?: number;
  /** Whose settle it is: it lands only while that attempt holds the request. @default anyone's */
  readonly holder?: SettleHolder;
  /**
   * With global limits: what the request was charged, left as `gs_<id>` (SETTLED_SHARE_PREFIX) in
   * this same write, so a share whose release on its shard never lands is given back by the sweep
   * only in the part not charged.
   */
  readonly charged?: { readonly tokens: number; readonly costMicroUsd: number };
}): UpdatePlan {
  const { policy, belief, requestId, pending, delta, nowMs } = args;
  const w = new ExpressionWriter();
  const marker = w.name(`${RESERVATION_PREFIX}${requestId}`);
  w.condition(`attribute_exists(${marker})`);
  w.remove(marker);
  if (args.charged) {
    w.set(
      `${w.name(`${SETTLED_SHARE_PREFIX}${requestId}`)} = ${w.value({
        t: args.charged.tokens,
        c: args.charged.costMicroUsd,
        x: nowMs + SETTLED_SHARE_LIFE_MS,
      })}`,
    );
  }
  // Expired ones go (unconditioned: one the sweep removed meanwhile is simply absent), a bounded
  // number per write; every entry ends with the user's next settle after its life, or the sweep.
  const expired = Object.entries(belief.settledShares ?? {})
    .filter(([id, until]) => until <= nowMs && id !== requestId)
    .slice(0, 20);
  for (const [id] of expired) w.remove(w.name(`${SETTLED_SHARE_PREFIX}${id}`));
  // One epoch per reset scope: a reset of tokens voids the token refunds, one of cost the cost
  // refunds, each pinned both ways like the windows (issue 20, finding 9).
  const settling = new Set<string>();
  for (const [scope, attr, epoch] of [
    ['tokens', 'te', pending.e ?? 0],
    ['cost', 'ce', pending.ce ?? 0],
  ] as const) {
    const name = w.name(attr);
    if (belief[attr] === epoch) {
      w.condition(epoch === 0 ? `attribute_not_exists(${name})` : `${name} = ${w.value(epoch)}`);
      settling.add(scope);
    } else {
      // Reset since: nothing of this reservation is in this scope's counts any more.
      w.condition(
        epoch === 0
          ? `attribute_exists(${name})`
          : `(attribute_not_exists(${name}) OR ${name} <> ${w.value(epoch)})`,
      );
    }
  }
  if (delta.tokens !== 0 || delta.costMicroUsd !== 0) {
    const model = { inputUsdPerMillion: 0, outputUsdPerMillion: 0 }; // settles move amounts, not prices
    for (const kind of LIMIT_KINDS) {
      if (!settling.has(kind.resetScope)) continue;
      kind.settle?.(w, {
        policy,
        snap: belief,
        nowMs,
        model,
        pending,
        delta,
        bucketAfterEpochMs: args.bucketAfterEpochMs,
      });
    }
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
  if (args.holder) {
    // The attempt that holds the request: its claim on `act` (queued; a takeover removes it) or
    // on the marker (direct). A late or duplicate event's settle fails here and changes nothing.
    // (Names are registered only when used: DynamoDB refuses unused ones.)
    const act = () => w.name('act');
    const claim = args.endsActive ? `${act()}.${w.name('c')}` : `${marker}.${w.name('a')}`;
    w.condition(
      'claim' in args.holder ? `${claim} = ${w.value(args.holder.claim)}` : `attribute_not_exists(${claim})`,
    );
    // Unclaimed, of a queued request: still the attempt it speaks for (not a takeover's since).
    const attempt = 'unclaimed' in args.holder ? args.holder.active : undefined;
    if (args.endsActive && attempt) {
      w.condition(`${act()}.${w.name('att')} = ${w.value(attempt.attempts)}`);
      w.condition(`${act()}.${w.name('lease')} = ${w.value(attempt.leaseUntilEpochMs)}`);
    }
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
