import { type ModelPrice, usdToMicroUsd } from '../../models';
import type { TokenReservation } from '../decision';
import type { LimiterSnapshot, PendingReservation } from '../item/state';
import type { Amount, LimitUnit } from '../kinds/kind';
import type { LimitPolicy } from '../kinds/registry';
import { LIMIT_KINDS, markerWindows } from '../kinds/registry';
import { DAY_MS, monthNumber } from '../windows';

/** The marker a reservation left, as the reservation itself describes it. */
export function pendingOf(reservation: TokenReservation): PendingReservation {
  const dayStartMs = reservation.dayNumber * DAY_MS;
  return {
    // Every budget window starts at a day boundary, so the reservation's day names them all.
    windows: markerWindows(dayStartMs),
    day: reservation.dayNumber,
    month: monthNumber(dayStartMs),
    inputTokens: reservation.inputTokens,
    outputAllowance: reservation.outputAllowance,
    tokenEpoch: reservation.tokenEpoch ?? 0,
    costEpoch: reservation.costEpoch ?? 0,
    costMicroUsd: reservation.reservedCostMicroUsd ?? 0,
  };
}

/**
 * The reservation a marker records, rebuilt from the item (the inverse of {@link pendingOf}): what
 * a takeover or the sweep settles when the attempt that held it is gone.
 */
export function reservationFromMarker(
  userId: string,
  requestId: string,
  pending: PendingReservation,
): TokenReservation {
  return {
    userId,
    requestId,
    dayNumber: pending.day,
    inputTokens: pending.inputTokens,
    outputAllowance: pending.outputAllowance,
    reservedTokens: pending.inputTokens + pending.outputAllowance,
    reservedCostMicroUsd: pending.costMicroUsd,
    tokenEpoch: pending.tokenEpoch ?? 0,
    costEpoch: pending.costEpoch ?? 0,
  };
}

/** What the limits of one unit still allow (µUSD for `usd`): the least any of its kinds has left. */
function leftIn(
  unit: LimitUnit,
  input: { policy: LimitPolicy; snap: LimiterSnapshot; nowMs: number; model: ModelPrice },
) {
  return Math.min(
    ...LIMIT_KINDS.filter((k) => k.unit === unit).map((k) => {
      const state = k.state(input);
      if (!state) return Number.POSITIVE_INFINITY;
      return unit === 'usd' ? usdToMicroUsd(state.remaining) : state.remaining;
    }),
  );
}

/**
 * How much a settle moves the budgets: > 0 gives back what was reserved and not used, < 0 charges
 * what the input estimate missed — never more than the tightest budget of that unit has left, so a
 * charge never takes a budget past its limit (SPEC §2 reserve-then-reconcile).
 */
export function settleDelta(input: {
  readonly policy: LimitPolicy;
  readonly snap: LimiterSnapshot;
  readonly nowMs: number;
  readonly price: ModelPrice;
  readonly pending: PendingReservation;
  readonly reservedTokens: number;
  readonly usedTokens: number;
  readonly actualCostMicroUsd: number;
}): Amount {
  const tokens = input.reservedTokens - input.usedTokens;
  const cost = (input.pending.costMicroUsd ?? 0) - input.actualCostMicroUsd;
  const kindInput = { policy: input.policy, snap: input.snap, nowMs: input.nowMs, model: input.price };
  const cap = (delta: number, unit: LimitUnit) =>
    delta < 0 ? -Math.max(0, Math.min(-delta, leftIn(unit, kindInput))) : delta;
  return { tokens: cap(tokens, 'tokens'), costMicroUsd: cap(cost, 'usd') };
}

/**
 * What a settle gives back to the global shard the request took from: what it took and did not use
 * (never more than it took).
 */
export function globalRefund(
  taken: { readonly tokens: number; readonly costMicroUsd: number },
  usedTokens: number,
  actualCostMicroUsd: number,
): Amount {
  return {
    tokens: Math.max(0, taken.tokens - usedTokens),
    costMicroUsd: Math.max(0, taken.costMicroUsd - actualCostMicroUsd),
  };
}
