import { type Item, parseList } from 'structured-headers';
import { describe, expect, it } from 'vitest';
import type { LimitPolicy, LimitState } from '../../lambda/core/limiter/kinds/registry';
import { DEFAULT_TIER_LIMITS } from '../../lambda/core/limiter/policy';
import { rateLimitFields } from '../../lambda/core/rate-limit-fields';
import { messageComplete } from '../../lambda/core/server-messages';
import { statusLimits, statusMessage, withLimits } from '../../lambda/core/status-message';

const T0 = Date.UTC(2026, 11, 3, 12, 0, 0);
const HOUR = 3_600_000;

/** Every kind set; the weekly budget a shadow limit (reported, never enforced). */
const POLICY: LimitPolicy = {
  ...DEFAULT_TIER_LIMITS.free,
  hourlyMessages: 100,
  dailyMessages: 500,
  requestsInFlight: 5,
  tokensPerMinute: 10_000,
  weeklyTokens: 500_000,
  monthlyTokens: 2_000_000,
  dailyCostUsd: 5,
  monthlyCostUsd: 50.5,
  shadow: ['weeklyTokens'],
};

const STATES: LimitState[] = [
  { name: 'messageRate', limit: 25, used: 3, remaining: 22, resetAtEpochMs: T0 + 9_000 },
  { name: 'hourlyMessages', limit: 100, used: 40, remaining: 60, resetAtEpochMs: T0 + HOUR },
  { name: 'dailyMessages', limit: 500, used: 40, remaining: 460, resetAtEpochMs: T0 + 12 * HOUR },
  { name: 'dailyTokens', limit: 100_000, used: 12_345, remaining: 87_655, resetAtEpochMs: T0 + 12 * HOUR },
  { name: 'requestsInFlight', limit: 5, used: 1, remaining: 4, resetAtEpochMs: T0 + 960_500 },
  { name: 'tokensPerMinute', limit: 10_000, used: 1_024, remaining: 8_976, resetAtEpochMs: T0 + 6_144 },
  { name: 'weeklyTokens', limit: 500_000, used: 12_345, remaining: 487_655, resetAtEpochMs: T0 + 96 * HOUR },
  {
    name: 'monthlyTokens',
    limit: 2_000_000,
    used: 12_345,
    remaining: 1_987_655,
    resetAtEpochMs: T0 + 684 * HOUR,
  },
  { name: 'dailyCostUsd', limit: 5, used: 0.004321, remaining: 4.995679, resetAtEpochMs: T0 + 12 * HOUR },
  { name: 'monthlyCostUsd', limit: 50.5, used: 0.1, remaining: 50.4, resetAtEpochMs: T0 + 684 * HOUR },
];

/** A parsed list as [name, parameters] pairs, every item's value a string. */
function items(field: string): [string, Record<string, unknown>][] {
  return parseList(field).map((member) => {
    const [value, params] = member as Item;
    expect(typeof value).toBe('string');
    return [value as string, Object.fromEntries(params)];
  });
}

describe('rateLimitFields', () => {
  it('states every enforced limit as one RFC 9651 item with its quota, unit and window', () => {
    const fields = rateLimitFields(statusLimits(STATES, POLICY), T0)!;
    expect(items(fields.rateLimitPolicy)).toEqual([
      ['messageRate', { q: 25, w: 75 }],
      ['hourlyMessages', { q: 100, w: 3600 }],
      ['dailyMessages', { q: 500, w: 86_400 }],
      ['dailyTokens', { q: 100_000, qu: 'tokens', w: 86_400 }],
      ['requestsInFlight', { q: 5, qu: 'concurrent-requests' }],
      ['tokensPerMinute', { q: 10_000, qu: 'tokens', w: 60 }],
      ['monthlyTokens', { q: 2_000_000, qu: 'tokens', w: 2_592_000 }],
      ['dailyCostUsd', { q: 5_000_000, qu: 'usd-micros', w: 86_400 }],
      ['monthlyCostUsd', { q: 50_500_000, qu: 'usd-micros', w: 2_592_000 }],
    ]);
    expect(fields.rateLimitPolicy.startsWith('"messageRate";q=25;w=75, "hourlyMessages";q=100;w=3600')).toBe(
      true,
    );
  });

  it('states what is left of each and the seconds until it is whole, counted from the instant given', () => {
    const fields = rateLimitFields(statusLimits(STATES, POLICY), T0)!;
    expect(items(fields.rateLimit)).toEqual([
      ['messageRate', { r: 22, t: 9 }],
      ['hourlyMessages', { r: 60, t: 3600 }],
      ['dailyMessages', { r: 460, t: 43_200 }],
      ['dailyTokens', { r: 87_655, t: 43_200 }],
      ['requestsInFlight', { r: 4, t: 961 }],
      ['tokensPerMinute', { r: 8_976, t: 7 }],
      ['monthlyTokens', { r: 1_987_655, t: 2_462_400 }],
      ['dailyCostUsd', { r: 4_995_679, t: 43_200 }],
      ['monthlyCostUsd', { r: 50_400_000, t: 2_462_400 }],
    ]);
    // A reset already past is t=0, never negative.
    const past = rateLimitFields(statusLimits(STATES.slice(0, 1), POLICY), T0 + 20_000)!;
    expect(items(past.rateLimit)).toEqual([['messageRate', { r: 22, t: 0 }]]);
  });

  it('leaves out shadow limits, and gives no fields when no limit is enforced', () => {
    const shadowOnly = { ...POLICY, shadow: ['messageRate' as const] };
    expect(rateLimitFields(statusLimits(STATES.slice(0, 1), shadowOnly), T0)).toBeUndefined();
  });

  it('puts them on status and on message_complete, matching the limits each carries', () => {
    for (const message of [
      statusMessage({ userId: 'ann', tier: 'free', policy: POLICY, limits: STATES, queued: [] }, T0),
      withLimits(messageComplete('r1', 'hi', { inputTokens: 1, outputTokens: 1, totalTokens: 2 }, T0 - 5), {
        policy: POLICY,
        limits: STATES,
        atMs: T0,
      }),
    ]) {
      const limits = message.limits!.filter((l) => !l.shadow);
      const policy = items(message.rateLimitPolicy!);
      const now = items(message.rateLimit!);
      expect(policy.map(([name]) => name)).toEqual(limits.map((l) => l.name));
      for (const [i, l] of limits.entries()) {
        const perShown = l.unit === 'usd' ? 1_000_000 : 1;
        expect(policy[i]![1].q).toBe(Math.round(l.limit * perShown));
        expect(now[i]![1].r).toBe(Math.round(l.remaining * perShown));
        expect(now[i]![1].t).toBe(Math.max(0, Math.ceil((l.resetAt - T0) / 1000)));
      }
    }
  });
});
