import { describe, expect, it } from 'vitest';
import { limitsOf } from '../../../lambda/core/limiter/decide/resolve';
import { snapshotFromItem } from '../../../lambda/core/limiter/item/codec';
import { planCrossingMarks, unmarkedCrossings } from '../../../lambda/core/limiter/plan/warnings';
import { parseTierLimits } from '../../../lambda/core/limiter/policy';
import { dayNumber } from '../../../lambda/core/limiter/windows';

const NOW = Date.UTC(2026, 11, 3, 12, 0, 0);
const DAY = dayNumber(NOW);
const policy = parseTierLimits({
  tiers: { free: { messagesPerMinute: 600, burst: 100, dailyMessages: 20 } },
}).free;

/** An admission's write, as it returned the item: `count` messages today, the marks given. */
const crossingsAt = (count: number, marks: Record<string, number> = {}) => {
  const after = snapshotFromItem({ pk: 'user#u', dw: DAY, dc: count, ...marks });
  return unmarkedCrossings(policy, after, limitsOf(policy, after, NOW), NOW).map((c) => [
    c.limit,
    c.thresholdPercent,
    c.remaining,
  ]);
};

describe('crossings an admission wrote but did not plan (a racing admission planned a few short)', () => {
  it('finds the 80 % and 100 % thresholds the item now stands at, in windows not marked', () => {
    expect(crossingsAt(15)).toEqual([]);
    expect(crossingsAt(16)).toEqual([['dailyMessages', 80, 4]]);
    expect(crossingsAt(20)).toEqual([
      ['dailyMessages', 80, 0],
      ['dailyMessages', 100, 0],
    ]);
    // Marked for today (by the admission that planned it): nothing late.
    expect(crossingsAt(20, { w_dailyMessages: DAY, wf_dailyMessages: DAY })).toEqual([]);
    expect(crossingsAt(20, { w_dailyMessages: DAY })).toEqual([['dailyMessages', 100, 0]]);
    // A mark of yesterday is not today's.
    expect(crossingsAt(20, { w_dailyMessages: DAY - 1, wf_dailyMessages: DAY })).toEqual([
      ['dailyMessages', 80, 0],
    ]);
  });

  it('marks each in one conditioned write, so of two instances only one publishes it', () => {
    const plan = planCrossingMarks([
      {
        limit: 'dailyMessages',
        window: DAY,
        remaining: 0,
        limitValue: 20,
        unit: 'messages',
        resetAtEpochMs: 0,
        thresholdPercent: 100,
      },
    ]);
    expect(plan.update).toMatch(/^SET #n\d+ = :v\d+$/);
    expect(plan.condition).toMatch(/^\(attribute_not_exists\(#n\d+\) OR #n\d+ <> :v\d+\)$/);
    expect(Object.values(plan.names)).toEqual(['wf_dailyMessages']);
    expect(Object.values(plan.values)).toEqual([DAY]);
  });
});
