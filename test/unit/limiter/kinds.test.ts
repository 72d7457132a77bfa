import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../../lambda/core/errors';
import { evaluate } from '../../../lambda/core/limiter/evaluate';
import { EMPTY_SNAPSHOT } from '../../../lambda/core/limiter/item/state';
import {
  ADMIN_FLAGS,
  isLimitName,
  LIMIT_KINDS,
  LIMIT_NAMES,
  limitKind,
  markerWindows,
  resetAttributes,
  resetFrees,
} from '../../../lambda/core/limiter/kinds/registry';
import {
  DEFAULT_TIER_LIMITS,
  limitPolicySchema,
  parseLimitsConfig,
  partialLimitPolicySchema,
} from '../../../lambda/core/limiter/policy';
import { dayNumber, isoWeekNumber, monthNumber, weekStartMs } from '../../../lambda/core/limiter/windows';
import { ECHO_MODEL } from '../../../lambda/core/models';
import { statusMessage } from '../../../lambda/services/chat-service';

const T0 = Date.UTC(2026, 10, 24, 10, 20, 0);
const FREE = DEFAULT_TIER_LIMITS.free;

describe('limit kinds, each declared once', () => {
  it('declares every limit with its unit, window, metric and the attributes it keeps', () => {
    expect(LIMIT_KINDS.map((k) => [k.name, k.unit, k.metric])).toEqual([
      ['messageRate', 'messages', 'MessageRateLimitExceeded'],
      ['hourlyMessages', 'messages', 'MessageRateLimitExceeded'],
      ['dailyMessages', 'messages', 'MessageRateLimitExceeded'],
      ['dailyTokens', 'tokens', 'TokenRateLimitExceeded'],
      ['requestsInFlight', 'requests', 'InFlightLimitExceeded'],
      ['tokensPerMinute', 'tokens', 'TokenRateLimitExceeded'],
      ['weeklyTokens', 'tokens', 'TokenRateLimitExceeded'],
      ['monthlyTokens', 'tokens', 'TokenRateLimitExceeded'],
      ['dailyCostUsd', 'usd', 'TokenRateLimitExceeded'],
      ['monthlyCostUsd', 'usd', 'TokenRateLimitExceeded'],
    ]);
    // The free bucket: 25 messages, whole again after 25 × 3 s.
    expect(limitKind('messageRate').windowSeconds(FREE)).toBe(75);
    expect(limitKind('hourlyMessages').windowSeconds(FREE)).toBe(3600);
    expect(limitKind('dailyTokens').windowSeconds(FREE)).toBe(86_400);
    expect(limitKind('weeklyTokens').windowSeconds(FREE)).toBe(7 * 86_400);
  });

  it('resets by scope exactly the attributes the kinds of that scope keep, but the daily accounting', () => {
    expect(resetAttributes('messages')).toEqual(['tat', 'hw', 'hc']);
    expect(resetAttributes('tokens')).toEqual(['ttat', 'tw', 'twu', 'tm', 'tmu']);
    expect(resetAttributes('cost')).toEqual(['cm', 'cmu']);
    expect(resetAttributes('all')).toEqual([
      'tat',
      'hw',
      'hc',
      'ttat',
      'tw',
      'twu',
      'tm',
      'tmu',
      'cm',
      'cmu',
    ]);
    // What `top` and `usage --history` read stays; the reset records it as freed (issue 23 item 6).
    expect(resetFrees('messages')).toEqual([{ count: 'dc', freed: 'dcf' }]);
    expect(resetFrees('tokens')).toEqual([{ count: 'tu', freed: 'tuf' }]);
    expect(resetFrees('cost')).toEqual([{ count: 'cu', freed: 'cuf' }]);
    expect(resetFrees('all').map((k) => k.count)).toEqual(['dc', 'tu', 'cu']);
  });

  it('leaves an optional limit the policy does not set out of status, but still plans it', () => {
    const input = { policy: FREE, snap: EMPTY_SNAPSHOT, nowMs: T0, model: ECHO_MODEL };
    expect(limitKind('hourlyMessages').state(input)).toBeUndefined();
    expect(
      limitKind('hourlyMessages').state({ ...input, policy: { ...FREE, hourlyMessages: 5 } }),
    ).toMatchObject({
      limit: 5,
      remaining: 5,
    });
  });

  it('tells status the unit, window and shadow flag of each limit', () => {
    const message = statusMessage(
      {
        userId: 'ann',
        tier: 'free',
        policy: FREE,
        limits: LIMIT_KINDS.flatMap(
          (k) => k.state({ policy: FREE, snap: EMPTY_SNAPSHOT, nowMs: T0, model: ECHO_MODEL }) ?? [],
        ),
        queued: [],
      },
      T0,
    );
    expect(message.limits.map((l) => [l.name, l.unit, l.windowSeconds, l.shadow])).toEqual([
      ['messageRate', 'messages', 75, false],
      ['dailyTokens', 'tokens', 86_400, false],
    ]);
    expect(isLimitName('busy')).toBe(false);
  });

  it('derives the names, the policy fields and the admin flags from the registry', () => {
    expect(LIMIT_NAMES).toEqual(LIMIT_KINDS.map((k) => k.name));
    // Every admin flag sets a field an override may set; required and optional fields as before.
    for (const { field } of ADMIN_FLAGS) {
      expect(partialLimitPolicySchema.safeParse({ [field]: 1 }).success, field).toBe(true);
    }
    const { messagesPerMinute: _m, ...withoutRate } = FREE;
    const { dailyTokens: _d, ...withoutTokens } = FREE;
    expect(limitPolicySchema.safeParse(FREE).success).toBe(true);
    expect(limitPolicySchema.safeParse(withoutRate).success).toBe(false);
    expect(limitPolicySchema.safeParse(withoutTokens).success).toBe(false);
    expect(limitPolicySchema.safeParse({ ...FREE, monthlyTokens: 0 }).success).toBe(false);
    expect(limitPolicySchema.safeParse({ ...FREE, dailyCostUsd: 0.5 }).success).toBe(true);
    expect(limitPolicySchema.safeParse({ ...FREE, hourlyMessages: 1.5 }).success).toBe(false);
    expect(limitPolicySchema.safeParse({ ...FREE, shadow: ['dailyTokens', 'busy'] }).success).toBe(false);
    expect(limitPolicySchema.safeParse({ ...FREE, nope: 1 }).success).toBe(false);
  });

  it('refuses a bad limits configuration with a ConfigError naming the field', () => {
    const bad = () => parseLimitsConfig({ tiers: { free: { dailyTokens: -1 } } });
    expect(bad).toThrow(ConfigError);
    expect(bad).toThrow(/^invalid limits configuration: [\s\S]*tiers\.free\.dailyTokens/);
    expect(() => parseLimitsConfig('{')).toThrow(ConfigError);
  });

  it('records in the reservation marker the window of every budget, under its own field', () => {
    expect(markerWindows(T0)).toEqual({ d: dayNumber(T0), w: isoWeekNumber(T0), m: monthNumber(T0) });
  });

  it('limits tokens per ISO week when LIMITS_CONFIG sets weeklyTokens, from Monday 00:00 UTC to the next', () => {
    expect(FREE.weeklyTokens).toBeUndefined();
    const policy = parseLimitsConfig('{"tiers":{"free":{"weeklyTokens":1000}}}').tiers.free;
    const sunday = Date.UTC(2026, 10, 29, 23, 59, 59, 999);
    const monday = sunday + 1;
    const week = isoWeekNumber(sunday);
    // 990 of the week's 1,000 tokens used: a request of 10 + the minimum 16 does not fit until Monday.
    const snap = Object.assign({}, EMPTY_SNAPSHOT, { exists: true, tw: week, twu: 990 });
    const ask = { estimatedInputTokens: 10, maxTokens: 100 };
    expect(evaluate(policy, snap, ask, sunday).blocking).toEqual({
      limit: 'weeklyTokens',
      retryAfterMs: 1,
      resetAtEpochMs: monday,
    });
    const next = evaluate(policy, snap, ask, monday);
    expect(next.blocking).toBeUndefined();
    expect(next.limits.find((l) => l.name === 'weeklyTokens')).toMatchObject({
      used: 0,
      resetAtEpochMs: weekStartMs(week + 2),
    });
    expect(limitKind('weeklyTokens').windowEndsAtMs?.(sunday)).toBe(monday);
  });
});
