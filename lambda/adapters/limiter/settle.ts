import { limitsOf } from '../../core/limiter/decide/resolve';
import { pendingOf, settleDelta } from '../../core/limiter/decide/settle';
import type { TokenReservation, TokenUsage } from '../../core/limiter/decision';
import { userKey } from '../../core/limiter/item/attributes';
import type { LimiterSnapshot } from '../../core/limiter/item/state';
import {
  type ClaimTarget,
  holdsRequest,
  planClaim,
  planSettle,
  type SettleHolder,
} from '../../core/limiter/plan/settle';
import { costMicroUsd, FREE_PRICE } from '../../core/models';
import type { LimitsAfter } from '../../core/status-message';
import type { ClaimOutcome, SettleOutcome } from '../../services/ports';
import { MAX_CONTENTION_ROUNDS, type WriteResult } from './beliefs';
import type { LimiterContext } from './context';
import { LimiterStoreError, StoreFaultError } from './errors';
import { releaseShares } from './share-release';

type SettleOptions = { readonly endsActive?: boolean; readonly holder?: SettleHolder };

/**
 * Settles and claims on the store. Settles of this instance whose write got no answer are kept, by
 * user key and request id, with the wake-up each took out of the item: a later call for the same
 * request (the runner tries the settle again) that finds the marker gone knows the write landed,
 * and still releases it.
 */
export class Settles {
  private readonly lost = new Map<string, { readonly wakeUp?: string }>();

  constructor(private readonly ctx: LimiterContext) {}

  /**
   * Settles a reservation to the actual usage, once per request id: refunds what was reserved and
   * not used, or charges more (never past the budget) when the input estimate was low. For a
   * queued request it also ends it as the user's active request, in the same write.
   */
  async reconcile(
    reservation: TokenReservation,
    usage: TokenUsage,
    nowMs: number,
    options: SettleOptions = {},
  ): Promise<SettleOutcome> {
    const key = userKey(reservation.userId);
    const inputTokens = Math.max(0, usage.inputTokens);
    const outputTokens = Math.max(0, usage.outputTokens);
    const used = {
      tokens: inputTokens + outputTokens,
      costMicroUsd: costMicroUsd(reservation.price ?? FREE_PRICE, inputTokens, outputTokens),
    };
    // A settle write whose answer was lost (issue 20, finding 7): the wake-up it took out of the
    // item, if it landed. The marker tells: gone after such a write, the write landed, and what
    // follows a settle (the shard release, the parked wake-up) must still happen.
    const lostKey = `${key}\n${reservation.requestId}`;
    const lost = { settle: this.lost.get(lostKey) };
    const team = this.teamOf(key, reservation);
    const shared = this.ctx.global !== undefined || team?.counters !== undefined;
    const outcome = await this.ctx.items.run(key, () =>
      this.settleOnItem(
        key,
        lostKey,
        lost,
        reservation,
        used,
        nowMs,
        options,
        shared,
        this.ctx.teams && (team?.name ?? null),
      ),
    );
    // A rebuilt reservation on an instance that had not seen the user: its record's team, now read.
    const held = team ?? this.teamOf(key, reservation);
    if (!shared && !held?.counters) return outcome;
    // Settled already (this call's write, or one whose answer was lost)? A pending one keeps its shares.
    const pending = this.ctx.items.belief(key)?.snap.reservations[reservation.requestId] !== undefined;
    if (!outcome.applied && pending) return outcome;
    return releaseShares(
      this.ctx,
      { reservation, used: { ...used, inputTokens, outputTokens }, nowMs, outcome, team: held },
      () => this.remember(lostKey, { wakeUp: outcome.wakeUp }),
    );
  }

  /** The request's team: the reservation's, else (rebuilt from the item) the user's record's. */
  private teamOf(key: string, reservation: TokenReservation) {
    const name = reservation.team?.name ?? this.ctx.items.belief(key)?.snap.team;
    return name === undefined ? undefined : { name, counters: this.ctx.teams?.of(name) };
  }

  private async settleOnItem(
    key: string,
    lostKey: string,
    /** This settle's own write whose answer was lost (from an earlier call, or an earlier try). */
    ref: { settle?: { readonly wakeUp?: string } },
    reservation: TokenReservation,
    used: { readonly tokens: number; readonly costMicroUsd: number },
    nowMs: number,
    { holder, endsActive = false }: SettleOptions,
    /** The request holds a global or a team share: its charge is left for the sweep (`gs_<id>`). */
    shared: boolean,
    /** The request's team for the usage index's entry (`top --team`); undefined: teams off. */
    team: string | null | undefined,
  ): Promise<SettleOutcome> {
    const { items } = this.ctx;
    const lost = ref.settle;
    // Plan from what this instance believes; the write pins it, so a stale belief reads again.
    const known = lost ? undefined : items.belief(key)?.snap;
    let snap: LimiterSnapshot = known ?? (await items.read(key));
    let fresh = known === undefined;
    for (let round = 0; round < MAX_CONTENTION_ROUNDS; round++) {
      // Not in what this instance saw (another instance made it): the reservation says what the
      // marker holds, and the write's condition on the marker decides. Only an item read or
      // returned by the store may say it was settled already.
      const seen = snap.reservations[reservation.requestId];
      if (!seen && fresh) {
        if (lost) {
          this.lost.delete(lostKey);
          // Ours landed. Its parked wake-up is released unless the item holds it still.
          const wakeUp =
            lost.wakeUp !== undefined && snap.parkedWakeUp !== lost.wakeUp ? lost.wakeUp : undefined;
          return { applied: true, wakeUp, limitsAfter: this.limitsAfter(snap, reservation, nowMs) };
        }
        // Settled already, by another attempt (or the sweep): a claim's settle must not speak
        // for the request then.
        return holder !== undefined && 'claim' in holder
          ? { applied: false, notHolder: true }
          : { applied: false, limitsAfter: this.limitsAfter(snap, reservation, nowMs) };
      }
      // Another attempt holds the request now (taken over, or claimed by another runner): its
      // settle, not this one, ends it.
      if (fresh && holder && !holdsRequest(snap, reservation.requestId, holder, endsActive)) {
        return { applied: false, notHolder: true };
      }
      const pending = seen ?? pendingOf(reservation);
      const policy = this.ctx.policyOf(snap, reservation.claimTier, nowMs);
      // > 0 refund, < 0 charge; charging more than reserved never takes a budget past its limit.
      const delta = settleDelta({
        policy,
        snap,
        nowMs,
        price: reservation.price ?? FREE_PRICE,
        pending,
        reservedTokens: reservation.reservedTokens,
        usedTokens: used.tokens,
        actualCostMicroUsd: used.costMicroUsd,
      });
      let result: WriteResult;
      try {
        result = await items.write(
          key,
          planSettle({
            policy,
            belief: snap,
            requestId: reservation.requestId,
            pending,
            delta,
            nowMs,
            endsActive,
            holder,
            bucketAfterEpochMs: reservation.bucketAfterEpochMs,
            used: { userId: reservation.userId, ...used, ...(team !== undefined ? { team } : {}) },
            // What the sweep gives back of a share whose release never lands: the rest.
            ...(shared ? { charged: used } : {}),
          }),
        );
      } catch (err) {
        // No answer: it may have landed. The next try reads the item to tell. For a claim's
        // own settle even a reset counts: a store cut mid-answer (a reset after the write was
        // applied) must not make the runner take its own landed settle for another attempt's
        // and end without a word (found by test/e2e/faults.test.ts under load).
        if (
          err instanceof StoreFaultError &&
          (err.mayHaveLanded || (holder !== undefined && 'claim' in holder))
        ) {
          ref.settle = { wakeUp: snap.parkedWakeUp };
          this.remember(lostKey, ref.settle);
        }
        throw err;
      }
      // A wake-up parked until a slot freed was taken out by this write: the caller releases it.
      if (result.ok) {
        this.lost.delete(lostKey);
        // The write's answer is the item after it (ALL_NEW): the limits it left, with no read.
        return {
          applied: true,
          wakeUp: snap.parkedWakeUp,
          limitsAfter: this.limitsAfter(result.snap, reservation, nowMs),
        };
      }
      snap = result.snap;
      fresh = true;
    }
    throw new LimiterStoreError(`reconcile of ${reservation.requestId} did not settle`);
  }

  /**
   * The reply runner's claim on a request before its model runs (see {@link planClaim}): one
   * conditional write. `claimed`: this runner answers it. `taken`: another runner claimed this
   * attempt (a duplicate event; `claim` is theirs). `gone`: the request is no longer this
   * attempt's (settled, refunded, taken over, or its id reused).
   */
  claim(userId: string, requestId: string, claim: string, target: ClaimTarget): Promise<ClaimOutcome> {
    return this.ctx.items.update(userKey(userId), 'none', () => ({
      plan: planClaim(requestId, claim, target),
      after: (result): ClaimOutcome => {
        if (result.ok) return { kind: 'claimed' };
        const { snap } = result;
        const held =
          target.source === 'queue'
            ? snap.active?.requestId === requestId &&
              snap.active.attempts === target.attempts &&
              snap.active.leaseUntilEpochMs === target.leaseUntilEpochMs
              ? snap.active.claim
              : undefined
            : snap.reservations[requestId]?.claim;
        // Our own claim, landed on an earlier try whose answer was lost.
        if (held === claim) return { kind: 'claimed' };
        return held === undefined ? { kind: 'gone' } : { kind: 'taken', claim: held };
      },
    }));
  }

  /** The limits an item holds, as `status` evaluates them for the reservation's tier claim. */
  private limitsAfter(snap: LimiterSnapshot, reservation: TokenReservation, nowMs: number): LimitsAfter {
    const policy = this.ctx.policyOf(snap, reservation.claimTier, nowMs);
    return { policy, limits: limitsOf(policy, snap, nowMs), atMs: nowMs };
  }

  private remember(lostKey: string, lost: { readonly wakeUp?: string }): void {
    this.lost.delete(lostKey);
    this.lost.set(lostKey, lost);
    // Bounded: the oldest go first (their runners have long given up).
    if (this.lost.size > 1000) this.lost.delete(this.lost.keys().next().value!);
  }
}
