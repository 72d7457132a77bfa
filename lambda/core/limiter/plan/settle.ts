import { FREE_PRICE } from '../../models';
import { ExpressionWriter, type UpdatePlan } from '../expression';
import {
  ACTIVE_ATTR,
  ACTIVE_FIELDS,
  COST_EPOCH_ATTR,
  IN_FLIGHT_ATTR,
  PARKED_WAKE_UP_ATTR,
  QUEUED_PREFIX,
  RESERVATION_FIELDS,
  RESERVATION_PREFIX,
  SETTLED_SHARE_PREFIX,
  TOKEN_EPOCH_ATTR,
} from '../item/attributes';
import { settledShareValue } from '../item/codec';
import { type LimiterSnapshot, type PendingReservation, SETTLED_SHARE_LIFE_MS } from '../item/state';
import type { Amount } from '../kinds/kind';
import type { LimitPolicy } from '../kinds/registry';
import { LIMIT_KINDS } from '../kinds/registry';
import { planSettledUsage } from './usage-key';

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
    const act = w.name(ACTIVE_ATTR);
    const c = `${act}.${w.name(ACTIVE_FIELDS.claim)}`;
    w.condition(`${act}.${w.name(ACTIVE_FIELDS.requestId)} = ${w.value(requestId)}`);
    w.condition(`${act}.${w.name(ACTIVE_FIELDS.attempts)} = ${w.value(target.attempts)}`);
    w.condition(`${act}.${w.name(ACTIVE_FIELDS.lease)} = ${w.value(target.leaseUntilEpochMs)}`);
    w.condition(`attribute_not_exists(${c})`);
    w.set(`${c} = ${w.value(claim)}`);
  } else {
    const marker = w.name(`${RESERVATION_PREFIX}${requestId}`);
    const a = `${marker}.${w.name(RESERVATION_FIELDS.claim)}`;
    w.condition(`attribute_exists(${marker})`);
    w.condition(`attribute_not_exists(${a})`);
    if (target.inFlightUntilEpochMs !== undefined) {
      w.condition(`${w.name(IN_FLIGHT_ATTR)}.${w.name(requestId)} = ${w.value(target.inFlightUntilEpochMs)}`);
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
    claim = snap.reservations[requestId]?.claim;
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
  /** What the reply used, for the usage index (`admin top`); absent: the index is left as it is. */
  readonly used?: {
    readonly userId: string;
    readonly tokens: number;
    readonly costMicroUsd: number;
    /** The request's team, for `top --team` (see planSettledUsage). */
    readonly team?: string | null;
  };
}): UpdatePlan {
  const { policy, belief, requestId, pending, delta, nowMs } = args;
  const w = new ExpressionWriter();
  const marker = w.name(`${RESERVATION_PREFIX}${requestId}`);
  w.condition(`attribute_exists(${marker})`);
  w.remove(marker);
  planSettledShares(w, { belief, requestId, charged: args.charged, nowMs });
  const settling = pinEpochs(w, belief, pending);
  if (delta.tokens !== 0 || delta.costMicroUsd !== 0) {
    const model = FREE_PRICE; // settles move amounts, not prices
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
  const wk = w.name(PARKED_WAKE_UP_ATTR);
  if (belief.parkedWakeUp !== undefined) {
    w.condition(`${wk} = ${w.value(belief.parkedWakeUp)}`);
    w.remove(wk);
  } else {
    w.condition(`attribute_not_exists(${wk})`);
  }
  if (args.endsActive) {
    const act = w.name(ACTIVE_ATTR);
    w.condition(`${act}.${w.name(ACTIVE_FIELDS.requestId)} = ${w.value(requestId)}`);
    w.remove(act, w.name(`${QUEUED_PREFIX}${requestId}`));
  }
  if (args.holder) pinHolder(w, { holder: args.holder, marker, endsActive: args.endsActive });
  // Today's usage index entry (`admin top`): only settles write it, never a decision.
  if (args.used) planSettledUsage(w, belief, { ...args.used, nowMs });
  return w.build();
}

/**
 * With global limits, what the request was charged (`gs_<id>`), and the expired ones out
 * (unconditioned: one the sweep removed meanwhile is simply absent), a bounded number per write;
 * every entry ends with the user's next settle after its life, or the sweep.
 */
function planSettledShares(
  w: ExpressionWriter,
  args: {
    readonly belief: LimiterSnapshot;
    readonly requestId: string;
    readonly charged: { readonly tokens: number; readonly costMicroUsd: number } | undefined;
    readonly nowMs: number;
  },
): void {
  const { belief, requestId, charged, nowMs } = args;
  if (charged) {
    w.set(
      `${w.name(`${SETTLED_SHARE_PREFIX}${requestId}`)} = ${w.value(
        settledShareValue({ ...charged, expiresAtEpochMs: nowMs + SETTLED_SHARE_LIFE_MS }),
      )}`,
    );
  }
  const expired = Object.entries(belief.settledShares ?? {})
    .filter(([id, until]) => until <= nowMs && id !== requestId)
    .slice(0, 20);
  for (const [id] of expired) w.remove(w.name(`${SETTLED_SHARE_PREFIX}${id}`));
}

/**
 * One epoch per reset scope: a reset of tokens voids the token refunds, one of cost the cost
 * refunds, each pinned both ways like the windows (issue 20, finding 9). Returns the scopes whose
 * counts still hold this reservation.
 */
function pinEpochs(w: ExpressionWriter, belief: LimiterSnapshot, pending: PendingReservation): Set<string> {
  const settling = new Set<string>();
  for (const [scope, attr, believed, epoch] of [
    ['tokens', TOKEN_EPOCH_ATTR, belief.tokenEpoch, pending.tokenEpoch ?? 0],
    ['cost', COST_EPOCH_ATTR, belief.costEpoch, pending.costEpoch ?? 0],
  ] as const) {
    const name = w.name(attr);
    if (believed === epoch) {
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
  return settling;
}

/**
 * The attempt that holds the request: its claim on `act` (queued; a takeover removes it) or on the
 * marker (direct). A late or duplicate event's settle fails here and changes nothing. (Names are
 * registered only when used: DynamoDB refuses unused ones.)
 */
function pinHolder(
  w: ExpressionWriter,
  args: { readonly holder: SettleHolder; readonly marker: string; readonly endsActive: boolean },
): void {
  const { holder, marker, endsActive } = args;
  const act = () => w.name(ACTIVE_ATTR);
  const claim = endsActive
    ? `${act()}.${w.name(ACTIVE_FIELDS.claim)}`
    : `${marker}.${w.name(RESERVATION_FIELDS.claim)}`;
  w.condition('claim' in holder ? `${claim} = ${w.value(holder.claim)}` : `attribute_not_exists(${claim})`);
  // Unclaimed, of a queued request: still the attempt it speaks for (not a takeover's since).
  const attempt = 'unclaimed' in holder ? holder.active : undefined;
  if (endsActive && attempt) {
    w.condition(`${act()}.${w.name(ACTIVE_FIELDS.attempts)} = ${w.value(attempt.attempts)}`);
    w.condition(`${act()}.${w.name(ACTIVE_FIELDS.lease)} = ${w.value(attempt.leaseUntilEpochMs)}`);
  }
}

/**
 * A settled request's charge (`gs_<id>`) out of the user's item once its shares are back (the
 * adapter's forgetSettledCharge, the simulator's settle): only if it is still there
 * (`attribute_exists`), so no empty item is made; ends the entry before its life runs out.
 */
export function planForgetSettledCharge(requestId: string): UpdatePlan {
  const w = new ExpressionWriter();
  const gs = w.name(`${SETTLED_SHARE_PREFIX}${requestId}`);
  w.condition(`attribute_exists(${gs})`);
  w.remove(gs);
  return w.build();
}
