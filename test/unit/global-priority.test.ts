import { describe, expect, it } from 'vitest';
import {
  EMPTY_LINE,
  LINE_BUCKETS,
  LINE_TTL_MARGIN_SECONDS,
  type LineView,
  lineBucket,
  lineOrderOf,
  linePartitionOf,
  linePartitions,
  lineWith,
  lineWithout,
  mayBeInLine,
  planLineEntry,
  planLineLeave,
  waitersFromLine,
} from '../../lambda/core/limiter/global/line';
import {
  FAR_LOOK_MS,
  type GlobalWaiter,
  isLiveWaiter,
  mayGoNow,
  NEAR_HEAD,
  priorityOrder,
  WAITER_STALE_MS,
  waitBehindMs,
  waitInLineMs,
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

  it('looks again rarely when far back in line, every few seconds among the first NEAR_HEAD, and is back before it turns urgent', () => {
    const ahead = Array.from({ length: NEAR_HEAD }, (_, i) => ({
      ...waiter(`p${i}`, 'pro', NOW - 100 + i),
      seenAtEpochMs: NOW,
    }));
    const me = waiter('f', 'free', NOW - 50);
    // Eleventh in line: a minute (FAR_LOOK_MS), not a second.
    expect(waitInLineMs(me, ahead, NOW, 60_000)).toBe(FAR_LOOK_MS);
    // Tenth: a second, as for the first (a slot may free any moment).
    expect(waitInLineMs(me, ahead.slice(1), NOW, 60_000)).toBe(1000);
    // 90 s before its deadline, far back: back in 30 s, when it goes before every tier.
    expect(waitInLineMs(waiter('f', 'free', NOW - 50, NOW + 90_000), ahead, NOW, 60_000)).toBe(30_000);
    // A direct request (no deadline) waits as for the first.
    expect(waitInLineMs(waiter('d', 'free', NOW, Number.POSITIVE_INFINITY), ahead, NOW, 60_000)).toBe(1000);
  });
});

describe('the global line, one item per waiter', () => {
  it('places waiters in priority order: urgent first by deadline, then by tier, oldest first, the user id breaking ties', () => {
    expect(linePartitions()).toEqual(['0', '1', '2', '3']);
    expect(linePartitionOf(waiter('u1', 'pro', NOW))).toBe(String(lineBucket('u1')));
    expect(lineOrderOf(waiter('u1', 'pro', 42), NOW, 60_000)).toBe('2#000000000000042#u1');
    expect(lineOrderOf(waiter('u1', 'free', 42, NOW + 60_000), NOW, 60_000)).toBe(
      `0#00${NOW + 60_000}#2#000000000000042#u1`,
    );
    const line = [
      waiter('f1', 'free', NOW - 9),
      waiter('p1', 'pro', NOW - 1),
      waiter('e1', 'enterprise', NOW),
      waiter('f2', 'free', NOW - 5),
      waiter('u2', 'free', NOW - 1, NOW + 40_000),
      waiter('u1', 'pro', NOW - 2, NOW + 30_000),
      ...['g3', 'g2', 'g7', 'g5'].map((u) => waiter(u, 'free', NOW - 5)),
    ];
    const byPlace = [...line].sort((a, b) =>
      lineOrderOf(a, NOW, 60_000) < lineOrderOf(b, NOW, 60_000) ? -1 : 1,
    );
    expect(byPlace.map((w) => w.userId)).toEqual(priorityOrder(line, NOW, 60_000).map((w) => w.userId));
  });

  it('spreads 10,000 users over the buckets within 10% of even', () => {
    const counts = new Array(LINE_BUCKETS).fill(0);
    for (let i = 0; i < 10_000; i++) counts[lineBucket(`user-${i}`)]++;
    for (const c of counts) expect(Math.abs(c - 10_000 / LINE_BUCKETS)).toBeLessThan(250);
  });

  it('knows a user may be in line when its entry is seen or lies past what was read of its partition', () => {
    const me = waiter('me', 'free', NOW);
    const partition = linePartitionOf(me);
    const at = (w: GlobalWaiter) => lineOrderOf(w, NOW, 60_000);
    const read = (entries: GlobalWaiter[], readTo?: string): LineView => ({
      parts: [{ partition, entries, ...(readTo ? { readTo } : {}) }],
    });
    const before = waiter('b', 'free', NOW - 10);
    // Nothing read of its partition: it may be.
    expect(mayBeInLine(EMPTY_LINE, me)).toBe(true);
    // Read to the partition's end without it: it is not.
    expect(mayBeInLine(read([before]), me)).toBe(false);
    // Read only up to an older one: it may be, further back.
    expect(mayBeInLine(read([before], at(before)), me)).toBe(true);
    expect(mayBeInLine(read([before, me], at(me)), me)).toBe(true);
    // Its own write puts it in place in a view that covers it, and its leave takes it out.
    const withMe = lineWith(read([before]), { ...me, seenAtEpochMs: NOW }, NOW, 60_000);
    expect(waitersFromLine(withMe, NOW).map((w) => w.userId)).toEqual(['me']);
    expect(withMe.parts[0]!.entries.map((w) => w.userId)).toEqual(['b', 'me']);
    expect(lineWithout(withMe, 'me').parts[0]!.entries.map((w) => w.userId)).toEqual(['b']);
    // Not in a view that stops before its place.
    expect(lineWith(read([before], at(before)), me, NOW, 60_000).parts[0]!.entries).toEqual([before]);
  });

  it('writes a waiter as its own item with its index keys and a TTL past its deadline, and leaves by removing them', () => {
    const me = { ...waiter('me', 'pro', NOW, NOW + 900_000), seenAtEpochMs: NOW, wakeAtEpochMs: NOW + 5000 };
    const plan = planLineEntry(me, NOW, 60_000);
    const written = Object.fromEntries(
      plan.update
        .replace(/^SET /, '')
        .split(' REMOVE ')[0]!
        .split(', ')
        .map((c) => c.split(' = ') as [string, string])
        .map(([n, v]) => [plan.names[n], plan.values[v]]),
    );
    expect(written).toEqual({
      lb: linePartitionOf(me),
      lo: lineOrderOf(me, NOW, 60_000),
      t: 'pro',
      at: NOW,
      dl: NOW + 900_000,
      l: 'requestsInFlight',
      s: NOW,
      wa: NOW + 5000,
      ttlEpochSeconds: (NOW + 900_000) / 1000 + LINE_TTL_MARGIN_SECONDS,
    });
    // The wake-up handle, the queued count and the scope it no longer has are removed; nothing is conditioned.
    expect(plan.update).toContain(' REMOVE ');
    expect(
      plan.update
        .split(' REMOVE ')[1]!
        .split(', ')
        .map((n) => plan.names[n]),
    ).toEqual(['h', 'q', 'sc']);
    expect(plan.condition).toBe('');
    // The sweep's removal is pinned to the entry as seen, and only of an item that exists.
    const leave = planLineLeave(NOW, me);
    expect(leave.condition).toMatch(/^attribute_exists\(#n\d+\) AND #n\d+ = :v\d+$/);
    expect(Object.values(leave.values)).toContain(NOW);
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
