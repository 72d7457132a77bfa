import { describe, expect, it } from 'vitest';
import { MAX_GLOBAL_SHARDS, shardsNeeded } from '../../lambda/core/limiter/global/limits';
import { SHARE_RECORDS_PER_SHARD } from '../../lambda/core/limiter/global/share-record';
import { parseLimitsConfig } from '../../lambda/core/limiter/policy';
import { parseStackConfig } from '../../lib/config';

const shardsOf = (global: object) => parseLimitsConfig({ global }).global?.shards;

describe('the global shard count', () => {
  it('holds 13 share records a shard', () => {
    expect(SHARE_RECORDS_PER_SHARD).toBe(13);
    expect(MAX_GLOBAL_SHARDS).toBe(1000);
  });

  it('needs ceil(requestsInFlight / 13) shards, none without the limit', () => {
    expect(shardsNeeded(undefined)).toBe(0);
    expect(shardsNeeded(1)).toBe(1);
    expect(shardsNeeded(13)).toBe(1);
    expect(shardsNeeded(14)).toBe(2);
    expect(shardsNeeded(1000)).toBe(77);
    expect(shardsNeeded(13_000)).toBe(1000);
  });

  it('takes the configured (or default) count, raised to fit requestsInFlight', () => {
    expect(shardsOf({ dailyTokens: 1000 })).toBe(4);
    expect(shardsOf({ dailyTokens: 1000, shards: 9 })).toBe(9);
    expect(shardsOf({ requestsInFlight: 3, hourlyMessages: 20 })).toBe(3);
    expect(shardsOf({ requestsInFlight: 52 })).toBe(4);
    expect(shardsOf({ requestsInFlight: 53 })).toBe(5);
    expect(shardsOf({ requestsInFlight: 1000 })).toBe(77);
    expect(shardsOf({ requestsInFlight: 1000, shards: 2 })).toBe(77);
    expect(shardsOf({ requestsInFlight: 1000, shards: 100 })).toBe(100);
    expect(shardsOf({ requestsInFlight: 13_000 })).toBe(1000);
    // Every shard holds at most 13 records: the configured requests in flight fit.
    for (const n of [1, 12, 13, 14, 100, 999, 1000, 4321]) {
      expect(shardsOf({ requestsInFlight: n })! * SHARE_RECORDS_PER_SHARD).toBeGreaterThanOrEqual(n);
    }
  });

  it('refuses a configuration whose derived shards do not fit, naming global.shards', () => {
    expect(() => shardsOf({ requestsInFlight: 13_001 })).toThrow(
      /requestsInFlight 13001 needs 1001 shards \(13 requests in flight each\), more than the 1000 allowed[\s\S]*global\.shards/,
    );
    expect(() => shardsOf({ requestsInFlight: 100, hourlyMessages: 7 })).toThrow(
      /requestsInFlight 100 needs 8 shards \(13 requests in flight each\), more than hourlyMessages allows/,
    );
    expect(shardsOf({ requestsInFlight: 100, hourlyMessages: 8 })).toBe(8);
    expect(() => shardsOf({ dailyTokens: 1000, shards: 1001 })).toThrow(/global\.shards/);
  });

  it('gives a stack without requestsInFlight the shards its reply runners need, in the limits the functions read', () => {
    const stack = (config: object) => parseStackConfig(config);
    const onlyTokens = stack({ limits: { tiers: {}, global: { dailyTokens: 1000 } } });
    // 100 reply runners by default: ceil(100 / 13) = 8 shards, so 104 requests may hold a share at once.
    expect(onlyTokens.global?.shards).toBe(8);
    expect(onlyTokens.limits?.global).toEqual({ dailyTokens: 1000, shards: 8 });
    expect(
      stack({ replyConcurrency: 300, limits: { tiers: {}, global: { dailyTokens: 1000 } } }).global?.shards,
    ).toBe(24);
    expect(
      stack({ replyConcurrency: 13, limits: { tiers: {}, global: { dailyTokens: 1000 } } }).global?.shards,
    ).toBe(4);
    // A count limit caps it (every shard needs a share of one); a named count or limit decides.
    expect(stack({ limits: { tiers: {}, global: { hourlyMessages: 5 } } }).global?.shards).toBe(5);
    expect(stack({ limits: { tiers: {}, global: { dailyTokens: 1000, shards: 2 } } }).global?.shards).toBe(2);
    expect(stack({ limits: { tiers: {}, global: { requestsInFlight: 20 } } }).global?.shards).toBe(4);
    expect(
      stack({ replyConcurrency: null, limits: { tiers: {}, global: { dailyTokens: 1000 } } }).global?.shards,
    ).toBe(4);
    expect(stack({}).global).toBeUndefined();
  });
});
