import { describe, expect, it } from 'vitest';
import { limitReason, queueFullClause, utcInstant } from '../../lambda/core/limit-reason';
import type { LimitPolicy, LimitState } from '../../lambda/core/limiter/kinds/registry';
import { DEFAULT_TIER_LIMITS } from '../../lambda/core/limiter/policy';

const NOON = Date.UTC(2026, 11, 3, 12, 0, 0);
const FREE = DEFAULT_TIER_LIMITS.free;
const POLICY: LimitPolicy = {
  ...FREE,
  hourlyMessages: 100,
  requestsInFlight: 5,
  tokensPerMinute: 10_000,
  dailyCostUsd: 5,
};

const denied = (limit: string, limits: LimitState[] = [], queued = 0) =>
  ({ limit, limits, policy: POLICY, queued }) as Parameters<typeof limitReason>[0];

describe('limitReason', () => {
  it('names the message rate, its state, its refill and when the next message fits', () => {
    const rate: LimitState = {
      name: 'messageRate',
      limit: 25,
      used: 25,
      remaining: 0,
      resetAtEpochMs: NOON + 75_000,
    };
    expect(limitReason(denied('messageRate', [rate]), 3_000, NOON)).toBe(
      'Message rate: 25 of 25 used; one more every 3 s, next at 12:00:03 UTC.',
    );
    // A partial second rounds up: never earlier than the truth.
    expect(limitReason(denied('messageRate', [rate]), 2_001, NOON)).toBe(
      'Message rate: 25 of 25 used; one more every 3 s, next at 12:00:03 UTC.',
    );
  });

  it('says when a window frees, in the limit’s unit, with the date when it is another day', () => {
    const hourly: LimitState = {
      name: 'hourlyMessages',
      limit: 100,
      used: 100,
      remaining: 0,
      resetAtEpochMs: NOON + 3_600_000,
    };
    expect(limitReason(denied('hourlyMessages', [hourly]), 3_600_000, NOON)).toBe(
      'Hourly messages: 100 of 100 used; frees at 13:00:00 UTC.',
    );
    const tokens: LimitState = {
      name: 'dailyTokens',
      limit: 100_000,
      used: 99_950,
      remaining: 50,
      resetAtEpochMs: NOON + 43_200_000,
    };
    expect(limitReason(denied('dailyTokens', [tokens]), 43_200_000, NOON)).toBe(
      'Daily tokens: 99,950 of 100,000 used; frees at 2026-12-04 00:00:00 UTC.',
    );
    const cost: LimitState = {
      name: 'dailyCostUsd',
      limit: 5,
      used: 4.999973,
      remaining: 0.000027,
      resetAtEpochMs: NOON + 43_200_000,
    };
    expect(limitReason(denied('dailyCostUsd', [cost]), 43_200_000, NOON)).toBe(
      'Daily cost: $4.999973 of $5.00 used; frees at 2026-12-04 00:00:00 UTC.',
    );
  });

  it('tells a token bucket’s refill and a slot that frees when a reply ends', () => {
    const tpm: LimitState = {
      name: 'tokensPerMinute',
      limit: 10_000,
      used: 9_990,
      remaining: 10,
      resetAtEpochMs: NOON + 59_940,
    };
    expect(limitReason(denied('tokensPerMinute', [tpm]), 6_000, NOON)).toBe(
      'Tokens per minute: 9,990 of 10,000 used; 10,000 more every 60 s, next at 12:00:06 UTC.',
    );
    const slots: LimitState = {
      name: 'requestsInFlight',
      limit: 5,
      used: 5,
      remaining: 0,
      resetAtEpochMs: NOON + 900_000,
    };
    expect(limitReason(denied('requestsInFlight', [slots]), 1_000, NOON)).toBe(
      'Requests in flight: 5 of 5 used; one frees when one of your replies ends.',
    );
  });

  it('words a full queue, a queue it may not overtake, a global limit, a busy item and an outage', () => {
    const rate: LimitState = {
      name: 'messageRate',
      limit: 25,
      used: 25,
      remaining: 0,
      resetAtEpochMs: NOON + 75_000,
    };
    expect(limitReason(denied('messageRate', [rate]), 3_000, NOON, queueFullClause(10, 10))).toBe(
      'Message rate: 25 of 25 used; one more every 3 s, next at 12:00:03 UTC; your queue is full (10 of 10 waiting).',
    );
    expect(limitReason(denied('queue', [], 3), 0, NOON)).toBe(
      'Your 3 earlier requests wait first: your requests run in the order you sent them.',
    );
    expect(limitReason(denied('global.hourlyMessages'), 1_500, NOON)).toBe(
      "Hourly messages for all users: the stack's limit is reached; room again at 12:00:02 UTC.",
    );
    expect(limitReason(denied('busy'), 1_000, NOON)).toBe(
      'Too many of your requests arrived at once; nothing was counted; try again at 12:00:01 UTC.',
    );
    expect(limitReason(denied('unavailable'), 1_000, NOON)).toBe(
      'The limiter is unavailable; nothing was counted; try again at 12:00:01 UTC.',
    );
  });

  it('writes instants as UTC wall time, rounded up to the second', () => {
    expect(utcInstant(NOON + 1, NOON)).toBe('12:00:01 UTC');
    expect(utcInstant(NOON, NOON)).toBe('12:00:00 UTC');
  });
});
