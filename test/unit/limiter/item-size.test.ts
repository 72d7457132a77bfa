import { marshall } from '@aws-sdk/util-dynamodb';
import { describe, expect, it } from 'vitest';
import {
  checkItemSizes,
  checkPolicyChange,
  ITEM_SIZE_BOUND_BYTES,
  maxReservations,
  RESERVATION_HOLD_MS,
  storedSizeBytes,
  worstCaseUserItem,
} from '../../../lambda/core/limiter/item/size';
import { DEFAULT_TIER_LIMITS, parseTierLimits } from '../../../lambda/core/limiter/policy';
import { itemSizeBytes } from '../../support/item-size';

const SETTINGS = { maxQueuedPerUser: 10, modelIds: ['echo'] };

describe('worstCaseUserItem', () => {
  it('bounds the reservations a user can hold by requestsInFlight, else by the bucket over the 18-minute hold', () => {
    expect(RESERVATION_HOLD_MS).toBe(1_080_000); // 900 s Timeout + 60 s, the sweep's 60 s grace and period
    expect(maxReservations(DEFAULT_TIER_LIMITS.free)).toBe(5 + 20 * 18);
    expect(maxReservations(DEFAULT_TIER_LIMITS.pro)).toBe(2 * 20);
    expect(maxReservations(DEFAULT_TIER_LIMITS.enterprise)).toBe(2 * 100);
  });

  it('keeps every default tier under the bound, free the largest (no in-flight cap: its burst stays 25)', () => {
    const sizes = (['free', 'pro', 'enterprise'] as const).map(
      (t) => worstCaseUserItem(DEFAULT_TIER_LIMITS[t], SETTINGS).bytes,
    );
    expect(sizes).toEqual([110_654, 20_629, 64_949]);
    expect(Math.max(...sizes)).toBeLessThan(ITEM_SIZE_BOUND_BYTES);
    expect(() => checkItemSizes(parseTierLimits({}), SETTINGS)).not.toThrow();
  });

  it('counts bytes as DynamoDB does, the same as the marshalled item', () => {
    const item = {
      pk: 'user#ann',
      n: 1_798_884_003_000,
      small: 0.5,
      waiting: ['a', 'bb'],
      r_x: { d: 20_820, mo: 'echo', a: 'claim' },
      yes: true,
    };
    expect(storedSizeBytes(item)).toBe(itemSizeBytes(marshall(item)));
  });
});

describe('checkItemSizes', () => {
  it('refuses a tier whose worst case passes the bound, naming the tier and the field to set', () => {
    expect(() =>
      checkItemSizes(parseTierLimits({ tiers: { free: { messagesPerMinute: 1_000 } } }), SETTINGS),
    ).toThrow(
      /^tiers\.free: a user's limiter item could reach 4,996,934 bytes \(18,005 reservations held at once\), over the 128 KB bound: set requestsInFlight \(at most 219\)/,
    );
  });

  it('refuses a requestsInFlight too large, and a queue too long, for the default tiers', () => {
    expect(() =>
      checkItemSizes(parseTierLimits({ tiers: { pro: { requestsInFlight: 5_000 } } }), SETTINGS),
    ).toThrow(/^tiers\.pro: .* lower requestsInFlight \(at most 219\)/);
    expect(() => checkItemSizes(parseTierLimits({}), { ...SETTINGS, maxQueuedPerUser: 100 })).toThrow(
      /^tiers\.free: .*142,604 bytes/,
    );
  });
});

describe('checkPolicyChange', () => {
  const tiers = parseTierLimits({});

  it('checks an override against the user tier, or every tier when the user has none', () => {
    const override = { limits: { messagesPerMinute: 600 } };
    expect(() => checkPolicyChange(tiers, { override }, SETTINGS)).toThrow(/^override\.free: /);
    // On pro the override's rate is capped by pro's 20 replies at once.
    expect(() => checkPolicyChange(tiers, { tier: 'pro', override }, SETTINGS)).not.toThrow();
    expect(() =>
      checkPolicyChange(tiers, { override: { limits: { requestsInFlight: 10 } } }, SETTINGS),
    ).not.toThrow();
  });
});
