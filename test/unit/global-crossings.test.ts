import { describe, expect, it } from 'vitest';
import { globalCrossings, teamCrossings } from '../../lambda/core/limiter/global/crossings';
import type { GlobalLimitState } from '../../lambda/core/limiter/global/limits';

const NOW = Date.UTC(2026, 10, 24, 15, 30, 0);
const DAY = Math.floor(NOW / 86_400_000);
const HOUR = Math.floor(NOW / 3_600_000);

const state = (
  s: Partial<GlobalLimitState> & Pick<GlobalLimitState, 'name' | 'limit' | 'used'>,
): GlobalLimitState => ({
  remaining: Math.max(0, s.limit - s.used),
  unit: 'tokens',
  resetAtEpochMs: (DAY + 1) * 86_400_000,
  shadow: false,
  ...s,
});

describe('globalCrossings', () => {
  it('gives 80 % from 80 % used and 100 % from the whole, in the window the limit counts in', () => {
    expect(globalCrossings([state({ name: 'global.dailyTokens', limit: 1_000, used: 799 })], NOW)).toEqual(
      [],
    );
    expect(
      globalCrossings([state({ name: 'global.dailyTokens', limit: 1_000, used: 800 })], NOW).map((c) => [
        c.thresholdPercent,
        c.window,
      ]),
    ).toEqual([[80, DAY]]);
    expect(
      globalCrossings(
        [
          state({ name: 'global.dailyCostUsd', limit: 2.5, used: 2.5, unit: 'usd' }),
          state({ name: 'global.hourlyMessages', limit: 10, used: 9, unit: 'messages' }),
        ],
        NOW,
      ).map((c) => [c.limit, c.thresholdPercent, c.window, c.unit]),
    ).toEqual([
      ['global.dailyCostUsd', 80, DAY, 'usd'],
      ['global.dailyCostUsd', 100, DAY, 'usd'],
      ['global.hourlyMessages', 80, HOUR, 'messages'],
    ]);
  });

  it('leaves out a shadowed limit and the requests in flight (no window, not a budget)', () => {
    expect(
      globalCrossings(
        [
          state({ name: 'global.dailyTokens', limit: 1_000, used: 1_000, shadow: true }),
          state({ name: 'global.requestsInFlight', limit: 5, used: 5, unit: 'requests' }),
        ],
        NOW,
      ),
    ).toEqual([]);
  });
});

describe('teamCrossings', () => {
  it("names a team's crossings `team.<limit>` with the team, as the global rule decides them", () => {
    expect(
      teamCrossings(
        'alpha',
        [
          state({ name: 'global.dailyTokens', limit: 1_000, used: 1_000 }),
          state({ name: 'global.hourlyMessages', limit: 10, used: 7, unit: 'messages' }),
          state({ name: 'global.monthlyCostUsd', limit: 50, used: 40, unit: 'usd', shadow: true }),
        ],
        NOW,
      ).map((c) => [c.team, c.limit, c.thresholdPercent, c.window, c.used]),
    ).toEqual([
      ['alpha', 'team.dailyTokens', 80, DAY, 1_000],
      ['alpha', 'team.dailyTokens', 100, DAY, 1_000],
    ]);
  });
});
