import { describe, expect, it } from 'vitest';
import {
  USAGE_BUCKETS,
  USAGE_INDEX_MODEL,
  usageBucket,
  usageDayKey,
  usageDayKeys,
} from '../../../lambda/core/limiter/plan/usage-key';

const NOW = Date.UTC(2026, 11, 3, 10, 0, 0);

describe('the usage index buckets', () => {
  const { requestsPerSecond, indexWritesPerRequest, partitionWritesPerSecond, headroom } = USAGE_INDEX_MODEL;
  const writesPerSecond = requestsPerSecond * indexWritesPerRequest;

  it('are sized from the scale model: a twentieth of a partition per bucket, 256 buckets', () => {
    expect(USAGE_BUCKETS).toBe(256);
    expect(writesPerSecond / USAGE_BUCKETS).toBeLessThanOrEqual(partitionWritesPerSecond / headroom);
    // Twenty times the model still fits under one partition's rate.
    expect((20 * writesPerSecond) / USAGE_BUCKETS).toBeLessThan(partitionWritesPerSecond);
  });

  it('spread 100,000 users evenly enough that the hottest bucket stays under a twentieth of a partition', () => {
    const users = new Array<number>(USAGE_BUCKETS).fill(0);
    for (let i = 0; i < 100_000; i++) users[usageBucket(`user-${i}`)]! += 1;
    const hottest = Math.max(...users);
    expect(hottest).toBe(453); // the mean is 390.6
    // Every user at the model's average rate: the hottest bucket's index writes a second.
    expect((writesPerSecond * hottest) / 100_000).toBeLessThan(partitionWritesPerSecond / headroom);
    expect(Math.min(...users)).toBeGreaterThan(0);
  });

  it('name every key `top` reads, and a user key is among them', () => {
    const keys = usageDayKeys(NOW);
    expect(keys).toHaveLength(USAGE_BUCKETS);
    expect(keys).toContain(usageDayKey('ann', NOW));
    expect(keys).toContain(usageDayKey(`user-${NOW}`, NOW));
    // Keys written with the former 16 buckets are among them: `top` still finds them.
    expect(keys.slice(0, 16)).toEqual(
      Array.from({ length: 16 }, (_, b) => `${Math.floor(NOW / 86_400_000)}#${b}`),
    );
  });
});
