import { describe, expect, it } from 'vitest';
import type { LimitState } from '../../lambda/core/limiter/kinds/registry';
import { DEFAULT_TIER_LIMITS } from '../../lambda/core/limiter/policy';
import { admissionTimeEpochMs, estimatedWaitSeconds } from '../../lambda/core/queue/eta';

const free = DEFAULT_TIER_LIMITS.free;
const NOW = Date.UTC(2026, 10, 24, 10, 30, 0);

/** A free-tier bucket that has just been emptied: the next message fits in 3 s, whole in 75 s. */
const emptyBucket: LimitState = {
  name: 'messageRate',
  limit: 25,
  used: 25,
  remaining: 0,
  resetAtEpochMs: NOW + 75_000,
};

describe('admissionTimeEpochMs', () => {
  it('spaces the waiting requests of an empty bucket one refill (3 s) apart', () => {
    const times = [1, 2, 3, 4, 5].map((k) => admissionTimeEpochMs(k, [emptyBucket], free, NOW) - NOW);
    expect(times).toEqual([3000, 6000, 9000, 12000, 15000]);
  });

  it('admits at once while the bucket has room for the position', () => {
    const partly: LimitState = { ...emptyBucket, used: 22, remaining: 3, resetAtEpochMs: NOW + 66_000 };
    expect(admissionTimeEpochMs(3, [partly], free, NOW)).toBe(NOW);
    expect(admissionTimeEpochMs(4, [partly], free, NOW)).toBe(NOW + 3000);
  });

  it('waits for the next UTC hour when the hourly quota has no room', () => {
    const nextHour = Date.UTC(2026, 10, 24, 11, 0, 0);
    const hourly: LimitState = {
      name: 'hourlyMessages',
      limit: 100,
      used: 100,
      remaining: 0,
      resetAtEpochMs: nextHour,
    };
    const bucketFull: LimitState = { ...emptyBucket, used: 0, remaining: 25, resetAtEpochMs: NOW };
    expect(admissionTimeEpochMs(1, [bucketFull, hourly], free, NOW)).toBe(nextHour);
  });

  it('waits for tomorrow when the token budget cannot cover the minimum output', () => {
    const tomorrow = Date.UTC(2026, 10, 25);
    const tokens: LimitState = {
      name: 'dailyTokens',
      limit: 100_000,
      used: 99_990,
      remaining: 10,
      resetAtEpochMs: tomorrow,
    };
    expect(admissionTimeEpochMs(1, [tokens], free, NOW)).toBe(tomorrow);
  });
});

describe('estimatedWaitSeconds', () => {
  it('rounds up to whole seconds and never goes below zero', () => {
    const almost: LimitState = { ...emptyBucket, resetAtEpochMs: NOW + 72_500 };
    expect(estimatedWaitSeconds(1, [almost], free, NOW)).toBe(1);
    expect(estimatedWaitSeconds(1, [{ ...emptyBucket, resetAtEpochMs: NOW }], free, NOW)).toBe(0);
  });
});
