import { describe, expect, it } from 'vitest';
import { type GlobalWaiter, mayGoNow, priorityOrder, shareOf } from '../../lambda/core/limiter/global';

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
