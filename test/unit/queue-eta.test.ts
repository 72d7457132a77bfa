import { describe, expect, it } from 'vitest';
import type { DeniedDecision } from '../../lambda/core/limiter/decision';
import type { LimitState } from '../../lambda/core/limiter/kinds/registry';
import { DEFAULT_TIER_LIMITS } from '../../lambda/core/limiter/policy';
import {
  admissionTimeEpochMs,
  estimatedWaitSeconds,
  notBeforeEpochMs,
  waitFloorSeconds,
} from '../../lambda/core/queue/eta';

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

describe('a window that holds the head holds the requests behind it (waitFloorSeconds)', () => {
  const denied = (limit: DeniedDecision['limit'], retryAfterMs: number) =>
    ({ allowed: false, limit, retryAfterMs }) as DeniedDecision;

  it('keeps the end of the window a time-bound refusal waits for, never a slot or the queue ahead', () => {
    expect(notBeforeEpochMs(denied('global.model.echo.requestsPerMinute', 35_000), NOW)).toBe(NOW + 35_000);
    expect(notBeforeEpochMs(denied('global.hourlyMessages', 1_800_000), NOW)).toBe(NOW + 1_800_000);
    expect(notBeforeEpochMs(denied('messageRate', 3000), NOW)).toBe(NOW + 3000);
    // A slot may free any moment (a reply ends): no floor.
    expect(notBeforeEpochMs(denied('team.requestsInFlight', 1000), NOW)).toBeUndefined();
    expect(notBeforeEpochMs(denied('global.requestsInFlight', 1000), NOW)).toBeUndefined();
    expect(notBeforeEpochMs(denied('requestsInFlight', 1000), NOW)).toBeUndefined();
    expect(notBeforeEpochMs(denied('queue', 0), NOW)).toBeUndefined();
    expect(notBeforeEpochMs(denied('busy', 1500), NOW)).toBeUndefined();
  });

  it("gives every request behind the head at least the head's wait, in whole seconds", () => {
    const queue = {
      waiting: ['a', 'b', 'c'],
      queued: { a: { notBeforeEpochMs: NOW + 34_200 }, b: {}, c: { notBeforeEpochMs: NOW + 60_000 } },
    };
    expect([1, 2, 3].map((p) => waitFloorSeconds(queue, p, NOW))).toEqual([35, 35, 60]);
    // Past: no floor.
    expect(waitFloorSeconds(queue, 2, NOW + 40_000)).toBe(0);
    expect(waitFloorSeconds({ waiting: ['b'], queued: { b: {} } }, 1, NOW)).toBe(0);
  });
});
