import { FREE_PRICE } from '../../models';
import { bumpQueueVersion } from '../../queue/places';
import type { ActiveRequest, QueuedRequest } from '../../queue/request';
import { enqueuePullsSweepEarlier, markForSweep, SWEEP_GRACE_MS } from '../../queue/sweep';
import { ExpressionWriter, type UpdatePlan } from '../expression';
import {
  ACTIVE_ATTR,
  ACTIVE_FIELDS,
  IN_FLIGHT_ATTR,
  PARKED_WAKE_UP_ATTR,
  QUEUED_DAY_PREFIX,
  QUEUED_PREFIX,
  RESERVATION_PREFIX,
  TTL_ATTR,
  WAITING_ATTR,
} from '../item/attributes';
import { activeValue, queuedItemValue } from '../item/codec';
import type { LimiterSnapshot } from '../item/state';
import type { LimitPolicy } from '../kinds/registry';
import { LIMIT_KINDS } from '../kinds/registry';
import { takeInFlightSlot } from '../kinds/shapes/in-flight';
import { dayNumber } from '../windows';
import { itemTtlEpochSeconds } from './ttl';

/**
 * Puts a request at the end of the user's waiting list, with its data, in one write: its position
 * is fixed here, before anything is sent to SQS, and never goes up (the list only ever loses
 * entries ahead of it). The cap is part of the condition, so no burst can queue more than
 * `maxQueued`; a full queue costs one failed write and changes nothing.
 */
export function planEnqueue(args: {
  readonly request: QueuedRequest;
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
  const waiting = w.name(WAITING_ATTR);
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
  w.set(`${w.name(TTL_ATTR)} = ${w.value(ttlSeconds)}`);
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
  const waiting = w.name(WAITING_ATTR);
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
  const act = w.name(ACTIVE_ATTR);
  const id = w.name(ACTIVE_FIELDS.requestId);
  const lease = w.name(ACTIVE_FIELDS.lease);
  w.condition(
    `${act}.${id} = ${w.value(active.requestId)} AND ${act}.${lease} = ${w.value(active.leaseUntilEpochMs)}`,
  );
  if (args.endsLease) {
    // A hand-off whose Invoke failed ends its lease only if no runner claimed this attempt: an
    // Invoke whose answer was lost may have started one, and that one keeps the request.
    w.condition(`attribute_not_exists(${act}.${w.name(ACTIVE_FIELDS.claim)})`);
  }
  w.set(
    `${act} = ${w.value(
      activeValue({ requestId: active.requestId, leaseUntilEpochMs, attempts: active.attempts + 1 }),
    )}`,
  );
  // The request's in-flight slot goes with the lease: kept if it is still there, taken again (if
  // one is free) if a later admission dropped it when it lapsed.
  const fl = w.name(IN_FLIGHT_ATTR);
  const entry = `${fl}.${w.name(active.requestId)}`;
  if (belief.inFlight?.[active.requestId] !== undefined) {
    w.condition(`attribute_exists(${entry})`);
    w.set(`${entry} = ${w.value(leaseUntilEpochMs)}`);
  } else if (!args.endsLease) {
    // The enforced limits that wait for a slot (requests in flight) bound it: full, no takeover.
    const slots = LIMIT_KINDS.filter((k) => k.waitsFor === 'slot' && !policy.shadow?.includes(k.name)).map(
      (k) => k.state({ policy, snap: belief, nowMs, model: FREE_PRICE }),
    );
    if (slots.some((s) => s !== undefined && s.remaining <= 0)) return { full: true };
    const limit = slots.find((s) => s !== undefined)?.limit;
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
  const act = w.name(ACTIVE_ATTR);
  const id = active.requestId;
  const marker = w.name(`${RESERVATION_PREFIX}${id}`);
  const data = w.name(`${QUEUED_PREFIX}${id}`);
  w.condition(
    `${act}.${w.name(ACTIVE_FIELDS.requestId)} = ${w.value(id)} AND ${act}.${w.name(ACTIVE_FIELDS.lease)} = ${w.value(active.leaseUntilEpochMs)}`,
  );
  w.condition(`(attribute_not_exists(${marker}) OR attribute_not_exists(${data}))`);
  w.remove(act, data);
  if (belief.inFlight !== undefined) {
    const fl = w.name(IN_FLIGHT_ATTR);
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
  const fl = w.name(IN_FLIGHT_ATTR);
  const entries = Object.entries(belief.inFlight ?? {});
  w.condition(`size(${fl}) = ${w.value(entries.length)}`);
  for (const [id, lease] of entries) w.condition(`${fl}.${w.name(id)} = ${w.value(lease)}`);
  w.set(`${w.name(PARKED_WAKE_UP_ATTR)} = ${w.value(receiptHandle)}`);
  return w.build();
}
