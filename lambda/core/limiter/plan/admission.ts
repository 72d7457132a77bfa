import { FREE_PRICE } from '../../models';
import { bumpQueueVersion } from '../../queue/places';
import { markForSweep, SWEEP_GRACE_MS } from '../../queue/sweep';
import { dayNumber, type Evaluation, evaluate, type TokenAsk } from '../evaluate';
import { ExpressionWriter, type UpdatePlan } from '../expression';
import { type HistoryWrite, planHistory } from '../history';
import {
  ACTIVE_ATTR,
  ACTIVE_FIELDS,
  CLAIM_TEAM_ATTR,
  CLAIM_TIER_ATTR,
  COST_EPOCH_ATTR,
  IN_FLIGHT_ATTR,
  POLICY_VERSION_ATTR,
  QUEUED_PREFIX,
  RESERVATION_PREFIX,
  TOKEN_EPOCH_ATTR,
  TTL_ATTR,
  WAITING_ATTR,
} from '../item/attributes';
import { activeValue, reservationValue } from '../item/codec';
import type { LimiterSnapshot } from '../item/state';
import type { LimitPolicy } from '../kinds/registry';
import { LIMIT_KINDS, markerWindows } from '../kinds/registry';
import { isTeamName } from '../teams';
import type { Tier } from '../tiers';
import { monthNumber } from '../windows';
import { admissionMovesBucket } from './bucket';
import { itemTtlEpochSeconds } from './ttl';
import { planWarningMarks, type WindowWarning, warningsOf } from './warnings';

export type QueueMode = 'direct' | 'replay';

/** How the request comes: directly, or replayed from the user's queue under a lease. */
export type AdmissionQueue =
  | { readonly mode: 'direct' }
  | { readonly mode: 'replay'; readonly leaseUntilEpochMs: number };

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
      /** Budgets and quotas this admission takes past 80 % or 100 % (first in their window). */
      readonly warnings: readonly WindowWarning[];
      /** The write moves the tokens-per-minute bucket (a shadow bucket it would overfill does not). */
      readonly movesBucket: boolean;
      /** The first admission of a new day: the day it closed, for the store's history write. */
      readonly history?: HistoryWrite;
    };

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
  readonly queue: AdmissionQueue;
  /** Until when the request holds its in-flight slot if its runner never settles. */
  readonly leaseUntilEpochMs: number;
  /** The user, to put into the sweep index: its slot (and active request) need an end. */
  readonly sweepUserId?: string;
  /** The tier the request's token claimed (none: `free`), recorded for `admin usage`. */
  readonly claimTier?: Tier;
  /** The team the request's token claimed (SPEC §9.4), recorded likewise (none: removed). */
  readonly claimTeam?: string;
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
    belief.policyVersion === 0
      ? `attribute_not_exists(${w.name(POLICY_VERSION_ATTR)})`
      : `${w.name(POLICY_VERSION_ATTR)} = ${w.value(belief.policyVersion)}`,
  );
  // Every limit kind adds its condition and update (lambda/core/limiter/kinds/).
  planKinds(w, {
    policy,
    belief,
    ask,
    requestId,
    leaseUntilEpochMs,
    nowMs,
    reservation: evaluation.reservation,
  });
  planMarker(w, { belief, requestId, reservation: evaluation.reservation, model: ask.model, nowMs });
  dropAbandonedMarkers(w, belief, requestId, nowMs);
  planQueuePart(w, queue, requestId);
  // limit_warning, once per limit and window: the admission that leaves a budget or quota at
  // ≤ 20 % marks the window; the condition makes sure no other admission marked it first.
  const warnings = warningsOf(policy, belief, evaluation, nowMs, ask.messageWeight ?? 1);
  planWarningMarks(w, warnings);
  // The first admission of a new day holds the day that ended, for its history item (usage --history).
  const history = planHistory(w, belief, nowMs);
  // The tier the token claimed, for `admin usage` (which has no token): a few bytes in this write.
  w.set(`${w.name(CLAIM_TIER_ATTR)} = ${w.value(args.claimTier ?? 'free')}`);
  // And its team claim, or none (a REMOVE of nothing is free: the belief may not show one written since).
  if (isTeamName(args.claimTeam)) w.set(`${w.name(CLAIM_TEAM_ATTR)} = ${w.value(args.claimTeam)}`);
  else w.remove(w.name(CLAIM_TEAM_ATTR));
  // Its slot ends with the settle or its lease; if the runner dies, the sweep sees it lapse.
  if (args.sweepUserId) markForSweep(w, args.sweepUserId, leaseUntilEpochMs + SWEEP_GRACE_MS);
  // Idle users' items expire, never before an open window's end or this request's lease; one an
  // admin gave a tier or override (pv > 0, pinned above) is kept longer.
  const ttl = itemTtlEpochSeconds({
    nowMs,
    keepsPolicy: belief.policyVersion > 0,
    holdsUntilEpochMs: leaseUntilEpochMs,
  });
  w.set(`${w.name(TTL_ATTR)} = ${w.value(ttl)}`);
  const movesBucket = admissionMovesBucket(policy, belief, nowMs, evaluation.reservation.reservedTokens);
  return {
    kind: 'write',
    evaluation,
    plan: w.build(),
    day,
    warnings,
    movesBucket,
    ...(history ? { history } : {}),
  };
}

/** Each limit kind's part of the admission write (a shadow limit counts, never refuses). */
function planKinds(
  w: ExpressionWriter,
  args: {
    readonly policy: LimitPolicy;
    readonly belief: LimiterSnapshot;
    readonly ask: TokenAsk;
    readonly requestId: string;
    readonly leaseUntilEpochMs: number;
    readonly nowMs: number;
    readonly reservation: NonNullable<Evaluation['reservation']>;
  },
): void {
  const { policy, belief, ask, requestId, leaseUntilEpochMs, nowMs, reservation } = args;
  for (const kind of LIMIT_KINDS) {
    kind.plan(w, {
      policy,
      snap: belief,
      nowMs,
      model: ask.price ?? FREE_PRICE,
      weight: ask.messageWeight ?? 1,
      reserved: { tokens: reservation.reservedTokens, costMicroUsd: reservation.reservedCostMicroUsd },
      requestId,
      leaseUntilEpochMs,
      enforce: !policy.shadow?.includes(kind.name),
    });
  }
}

/**
 * The pending reservation, so reconcile can refund exactly once (it removes this marker). It
 * lives until its request settles, whatever windows roll (see dropAbandonedMarkers). The epochs
 * pin the budgets it was taken from, one per reset scope: a reset of tokens since then voids its
 * token refund, a reset of cost its cost refund, and neither touches the other (finding 9).
 */
function planMarker(
  w: ExpressionWriter,
  args: {
    readonly belief: LimiterSnapshot;
    readonly requestId: string;
    readonly reservation: NonNullable<Evaluation['reservation']>;
    readonly model: string | undefined;
    readonly nowMs: number;
  },
): void {
  const { belief, requestId, reservation, model, nowMs } = args;
  const marker = w.name(`${RESERVATION_PREFIX}${requestId}`);
  w.condition(`attribute_not_exists(${marker})`);
  for (const [attr, epoch] of [
    [TOKEN_EPOCH_ATTR, belief.tokenEpoch],
    [COST_EPOCH_ATTR, belief.costEpoch],
  ] as const) {
    w.condition(
      epoch === 0 ? `attribute_not_exists(${w.name(attr)})` : `${w.name(attr)} = ${w.value(epoch)}`,
    );
  }
  w.set(
    `${marker} = ${w.value(
      reservationValue({
        // Every budget's window, under the field its kind declares (a new budget needs no edit here).
        windows: markerWindows(nowMs),
        day: dayNumber(nowMs),
        month: monthNumber(nowMs),
        costMicroUsd: reservation.reservedCostMicroUsd,
        model,
        inputTokens: reservation.inputTokens,
        outputAllowance: reservation.outputAllowance,
        tokenEpoch: belief.tokenEpoch,
        costEpoch: belief.costEpoch,
      }),
    )}`,
  );
}

/**
 * Direct: nobody may be waiting (no overtaking), and the id must not be a waiting request's. Replay:
 * the head of the list becomes the active request.
 */
function planQueuePart(w: ExpressionWriter, queue: AdmissionQueue, requestId: string): void {
  const waiting = w.name(WAITING_ATTR);
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
    const act = w.name(ACTIVE_ATTR);
    w.condition(`${waiting}[0] = ${w.value(requestId)}`);
    w.condition(`attribute_not_exists(${act})`);
    w.remove(`${waiting}[0]`);
    w.set(
      `${act} = ${w.value(activeValue({ requestId, leaseUntilEpochMs: queue.leaseUntilEpochMs, attempts: 1 }))}`,
    );
    // Everyone behind moved up: a new version of the list (their notices carry it).
    bumpQueueVersion(w);
  }
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
    if (id === requestId || pending.day >= today || belief.active?.requestId === id) continue;
    const lease = belief.inFlight?.[id];
    if (lease !== undefined && lease > nowMs) continue;
    if (lease === undefined) w.condition(`attribute_not_exists(${w.name(IN_FLIGHT_ATTR)}.${w.name(id)})`);
    const act = w.name(ACTIVE_ATTR);
    w.condition(
      `(attribute_not_exists(${act}) OR ${act}.${w.name(ACTIVE_FIELDS.requestId)} <> ${w.value(id)})`,
    );
    w.remove(w.name(`${RESERVATION_PREFIX}${id}`));
  }
}
