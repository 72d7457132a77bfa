import { describe, expect, it } from 'vitest';
import { type LineView, planLineWrite } from '../../lambda/core/limiter/global/line';
import {
  type GlobalWaiter,
  isLiveWaiter,
  mayGoNow,
  priorityOrder,
  WAITER_STALE_MS,
  waitBehindMs,
} from '../../lambda/core/limiter/global/priority';
import { roomIn, shareOf } from '../../lambda/core/limiter/global/shards';
import { EMPTY_SNAPSHOT } from '../../lambda/core/limiter/item/state';
import { HOUR_MS, hourNumber } from '../../lambda/core/limiter/windows';

const NOW = 1_800_000_000_000;
const waiter = (
  userId: string,
  tier: GlobalWaiter['tier'],
  at: number,
  dl = NOW + 900_000,
): GlobalWaiter => ({
  userId,
  tier,
  enqueuedAtEpochMs: at,
  deadlineEpochMs: dl,
  limit: 'requestsInFlight',
});

describe('global priority', () => {
  it('orders by tier, then oldest first; a request within a minute of its deadline goes first', () => {
    const line = [
      waiter('f1', 'free', NOW - 9),
      waiter('p1', 'pro', NOW - 1),
      waiter('e1', 'enterprise', NOW),
      waiter('f2', 'free', NOW - 5),
    ];
    expect(priorityOrder(line, NOW, 60_000).map((w) => w.userId)).toEqual(['e1', 'p1', 'f1', 'f2']);
    const urgent = [...line, waiter('f3', 'free', NOW - 1, NOW + 30_000)];
    expect(priorityOrder(urgent, NOW, 60_000)[0]?.userId).toBe('f3');
  });

  it('gives exactly one of several users queued in the same millisecond the turn', () => {
    const line = ['g3', 'g2', 'g7', 'g5'].map((u) => waiter(u, 'free', NOW));
    const turns = line.filter((me) => mayGoNow(me, line, NOW, 60_000));
    expect(turns.map((w) => w.userId)).toEqual(['g2']);
  });

  it('splits a limit into shares that add up to it exactly', () => {
    for (const [limit, shards] of [
      [2050, 3],
      [7, 2],
      [100, 8],
      [3, 3],
    ] as const) {
      const shares = Array.from({ length: shards }, (_, k) => shareOf(limit, shards, k));
      expect(shares.reduce((a, b) => a + b, 0)).toBe(limit);
      expect(Math.max(...shares) - Math.min(...shares)).toBeLessThanOrEqual(1);
    }
  });
});

describe('the global line', () => {
  it("keeps a waiter deferred to a window's start live until shortly after it, and no longer", () => {
    const w = { ...waiter('e', 'enterprise', NOW), seenAtEpochMs: NOW, wakeAtEpochMs: NOW + 600_000 };
    expect(isLiveWaiter(w, NOW + 599_000)).toBe(true);
    expect(isLiveWaiter(w, NOW + 600_000 + WAITER_STALE_MS)).toBe(true);
    expect(isLiveWaiter(w, NOW + 600_001 + WAITER_STALE_MS)).toBe(false);
    // Without a wake-up, overdue 15 s after its last write; without either time, dead.
    expect(isLiveWaiter({ ...w, wakeAtEpochMs: undefined }, NOW + WAITER_STALE_MS + 1)).toBe(false);
    expect(isLiveWaiter(waiter('x', 'free', NOW), NOW)).toBe(false);
    // Past its deadline, dead whatever its schedule.
    expect(isLiveWaiter({ ...w, deadlineEpochMs: NOW + 1000 }, NOW + 1000)).toBe(false);
  });

  it('makes a request behind the first in line wait until that one looks again, or a second when it is due', () => {
    const first = { ...waiter('e', 'enterprise', NOW), wakeAtEpochMs: NOW + 30_000 };
    expect(waitBehindMs({ ...first, limit: 'hourlyMessages' }, NOW)).toBe(30_000);
    expect(waitBehindMs({ ...first, limit: 'hourlyMessages' }, NOW + 30_500)).toBe(1000);
    // A slot may free any moment, and a settle wakes the first in line at once.
    expect(waitBehindMs(first, NOW)).toBe(1000);
  });

  it('past the cap lists a newcomer only in place of the last in order, and a near-deadline one always', () => {
    const entries = ['a', 'b', 'c'].map((u, i) => ({
      ...waiter(u, 'pro', NOW - 10 + i),
      seenAtEpochMs: NOW,
    }));
    const line: LineView = { exists: true, hasMap: true, entries };
    const join = (w: GlobalWaiter) => planLineWrite({ line, nowMs: NOW, urgentMs: 60_000, join: w, cap: 3 });
    // A free one goes after all three: not listed, nothing written.
    expect(join({ ...waiter('f', 'free', NOW - 100), seenAtEpochMs: NOW })).toBeUndefined();
    // An enterprise one takes the place of the last (the newest pro one).
    expect(join({ ...waiter('e', 'enterprise', NOW), seenAtEpochMs: NOW })).toMatchObject({
      listed: true,
      removed: ['c'],
    });
    // A free one within a minute of its deadline goes first, so it is listed.
    expect(join({ ...waiter('u', 'free', NOW, NOW + 30_000), seenAtEpochMs: NOW })).toMatchObject({
      listed: true,
      removed: ['c'],
    });
    // One already in line is refreshed whatever the count.
    expect(join({ ...entries[2]!, seenAtEpochMs: NOW + 1 })).toMatchObject({ listed: true, removed: [] });
  });
});

describe('global shards under clock skew', () => {
  it("counts a shard already in the next hour as that hour's, and refuses until that hour ends", () => {
    const limits = { hourlyMessages: 4, shards: 2 } as const;
    const hourEnd = (hourNumber(NOW) + 1) * HOUR_MS;
    const behind = hourEnd - 2000;
    const ask = {
      requestId: 'r',
      userId: 'u',
      tokens: 0,
      costMicroUsd: 0,
      weight: 1,
      leaseUntilEpochMs: behind + 60_000,
    };
    // Full in the next hour: from a clock 2 s behind, full too, until the next hour's end.
    const rolled = { ...EMPTY_SNAPSHOT, exists: true, hw: hourNumber(hourEnd), hc: 2 };
    expect(roomIn(limits, 0, rolled, ask, behind)).toMatchObject({
      blocking: 'hourlyMessages',
      retryAfterMs: hourEnd + HOUR_MS - behind,
    });
    // One message in it: room for one more, in that hour.
    expect(roomIn(limits, 0, { ...rolled, hc: 1 }, ask, behind).blocking).toBeUndefined();
  });
});

describe('global limits configuration', () => {
  it('defaults to 4 shards, or fewer when a count limit is smaller, and names a bad shard count', async () => {
    const { parseLimitsConfig } = await import('../../lambda/core/limiter/policy');
    expect(parseLimitsConfig({ global: { dailyTokens: 1000 } }).global?.shards).toBe(4);
    expect(parseLimitsConfig({ global: { requestsInFlight: 3, hourlyMessages: 20 } }).global?.shards).toBe(3);
    expect(parseLimitsConfig({ global: { hourlyMessages: 2, shards: 1 } }).global?.shards).toBe(1);
    expect(() => parseLimitsConfig({ global: { requestsInFlight: 3, shards: 4 } })).toThrow(/global\.shards/);
    expect(parseLimitsConfig({}).global).toBeUndefined();
  });
});
