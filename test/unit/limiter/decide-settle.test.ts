import { describe, expect, it } from 'vitest';
import { shardCostPercent } from '../../../lambda/core/limiter/decide/global-share';
import { slotLimit } from '../../../lambda/core/limiter/decide/landed';
import {
  globalRefund,
  pendingOf,
  reservationFromMarker,
  settleDelta,
} from '../../../lambda/core/limiter/decide/settle';
import { snapshotFromItem } from '../../../lambda/core/limiter/item/codec';
import { EMPTY_SNAPSHOT } from '../../../lambda/core/limiter/item/state';
import { limitKind, markerWindows } from '../../../lambda/core/limiter/kinds/registry';
import { DEFAULT_TIER_LIMITS } from '../../../lambda/core/limiter/policy';
import { DAY_MS, dayNumber, monthNumber } from '../../../lambda/core/limiter/windows';
import { FREE_PRICE } from '../../../lambda/core/models';

const NOW = Date.UTC(2026, 0, 31, 22, 0, 0);
const DAY = dayNumber(NOW);
const POLICY = { ...DEFAULT_TIER_LIMITS.free, dailyTokens: 1_000, dailyCostUsd: 1 };

describe('pendingOf', () => {
  it('rebuilds the marker a reservation left, in the month of its day, at its epochs', () => {
    expect(
      pendingOf({
        userId: 'u',
        requestId: 'r',
        dayNumber: DAY,
        inputTokens: 10,
        outputAllowance: 90,
        reservedTokens: 100,
        reservedCostMicroUsd: 56,
        tokenEpoch: 2,
      }),
    ).toEqual({
      windows: markerWindows(DAY * DAY_MS),
      day: DAY,
      month: monthNumber(DAY * DAY_MS),
      inputTokens: 10,
      outputAllowance: 90,
      tokenEpoch: 2,
      costEpoch: 0,
      costMicroUsd: 56,
    });
  });
});

describe('settleDelta', () => {
  const pending = { day: DAY, inputTokens: 10, outputAllowance: 90, costMicroUsd: 500_000 };
  const base = { policy: POLICY, nowMs: NOW, price: FREE_PRICE, pending, reservedTokens: 100 };

  it('gives back what was reserved and not used', () => {
    const delta = settleDelta({ ...base, snap: EMPTY_SNAPSHOT, usedTokens: 30, actualCostMicroUsd: 100_000 });
    expect(delta).toEqual({ tokens: 70, costMicroUsd: 400_000 });
  });

  it('charges what the estimate missed, never past what the budget has left', () => {
    // 950 of 1,000 tokens and 0.9 of 1 USD spent today: 50 tokens and 100,000 µUSD left.
    const snap = snapshotFromItem({ pk: 'user#u', td: DAY, tu: 950, cd: DAY, cu: 900_000 });
    const over = settleDelta({ ...base, snap, usedTokens: 400, actualCostMicroUsd: 900_000 });
    expect(over).toEqual({ tokens: -50, costMicroUsd: -100_000 });
    const within = settleDelta({ ...base, snap, usedTokens: 120, actualCostMicroUsd: 550_000 });
    expect(within).toEqual({ tokens: -20, costMicroUsd: -50_000 });
  });

  it('charges nothing more once a budget is spent', () => {
    const snap = snapshotFromItem({ pk: 'user#u', td: DAY, tu: 1_200 });
    const { tokens } = settleDelta({ ...base, snap, usedTokens: 400, actualCostMicroUsd: 500_000 });
    expect(Math.abs(tokens)).toBe(0); // -0: a charge of nothing
  });
});

describe('globalRefund', () => {
  it('gives back to the shard what was taken and not used, never more', () => {
    expect(globalRefund({ tokens: 100, costMicroUsd: 56 }, 20, 10)).toEqual({ tokens: 80, costMicroUsd: 46 });
    expect(globalRefund({ tokens: 100, costMicroUsd: 56 }, 150, 90)).toEqual({ tokens: 0, costMicroUsd: 0 });
  });
});

describe('shardCostPercent', () => {
  it("says how full a shard's share of the global daily cost is today, and nothing without that limit", () => {
    // $1 over 4 shards: 250,000 µUSD each.
    const snap = snapshotFromItem({ pk: 'global#0', cd: DAY, cu: 125_000 });
    expect(shardCostPercent({ shards: 4, dailyCostUsd: 1 }, 0, snap, NOW)).toBe(50);
    expect(shardCostPercent({ shards: 4, dailyCostUsd: 1 }, 0, snap, NOW + DAY_MS)).toBe(0);
    expect(shardCostPercent({ shards: 4, hourlyMessages: 10 }, 0, snap, NOW)).toBeUndefined();
  });
});

describe('slotLimit', () => {
  it('is the global limit a freed slot makes room in', () => {
    expect(limitKind(slotLimit()).waitsFor).toBe('slot');
  });
});

describe('reservationFromMarker', () => {
  it('rebuilds the reservation a marker records, the inverse of pendingOf', () => {
    const reservation = {
      userId: 'u',
      requestId: 'r',
      dayNumber: 20_000,
      inputTokens: 10,
      outputAllowance: 90,
      reservedTokens: 100,
      reservedCostMicroUsd: 56,
      tokenEpoch: 2,
      costEpoch: 1,
    };
    expect(reservationFromMarker('u', 'r', pendingOf(reservation))).toEqual(reservation);
  });
});
