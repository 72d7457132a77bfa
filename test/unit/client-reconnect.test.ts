import { describe, expect, it } from 'vitest';
import { messageRate } from '../../lambda/core/limiter/kinds/message-rate';
import { LIMIT_KINDS } from '../../lambda/core/limiter/kinds/registry';
import { tokensPerMinute } from '../../lambda/core/limiter/kinds/tokens-per-minute';
import { DEFAULT_TIER_LIMITS } from '../../lambda/core/limiter/policy';
import { ECHO_MODEL } from '../../lambda/core/models';
import { LIMIT_REFILLS } from '../../local/limit-names';
import { backoffMs, judgeRequests } from '../../local/web/reconnect.js';
import { remainingAt } from '../../local/web/refill.js';

const T0 = Date.UTC(2026, 11, 3, 12, 0, 0);

/** A status with these waiting requests and, when given, a limit counted in requests. */
function status(waiting: string[], inFlightUsed?: number) {
  return {
    queue: { requests: waiting.map((requestId, i) => ({ requestId, position: i + 1 })) },
    limits: [
      { unit: 'messages', used: 3 },
      ...(inFlightUsed === undefined ? [] : [{ unit: 'requests', used: inFlightUsed }]),
    ],
  };
}

describe('judging the requests of earlier connections after a reconnect (SPEC §9.5)', () => {
  it('keeps what the server lists as waiting, at its new place, and calls the rest lost', () => {
    const judged = judgeRequests(['a', 'b', 'c'], new Set(), status(['c', 'x']));
    expect([...judged.waiting]).toEqual([
      ['c', 1],
      ['x', 2],
    ]);
    expect(judged.lost).toEqual(['a', 'b']);
    expect(judged.unsure).toEqual([]);
  });

  it('keeps a request heard of on the new connection (a reply that went on, a kept reply)', () => {
    const judged = judgeRequests(['a', 'b'], new Set(['a']), status([]));
    expect(judged.lost).toEqual(['b']);
  });

  it('is unsure, not lost, while the status shows replies in flight', () => {
    expect(judgeRequests(['a', 'b'], new Set(), status([], 1))).toMatchObject({
      lost: [],
      unsure: ['a', 'b'],
    });
    expect(judgeRequests(['a', 'b'], new Set(), status([], 0))).toMatchObject({
      lost: ['a', 'b'],
      unsure: [],
    });
  });

  it('backs off 1, 2, 4 … 30 s', () => {
    expect([0, 1, 2, 3, 4, 5, 6].map(backoffMs)).toEqual([1000, 2000, 4000, 8000, 16_000, 30_000, 30_000]);
  });
});

describe("the page's gauges between two statuses", () => {
  it('asks each kind how it fills: buckets, fixed windows, slots', () => {
    expect(Object.keys(LIMIT_REFILLS)).toEqual(LIMIT_KINDS.map((k) => k.name));
    expect(LIMIT_REFILLS).toMatchObject({
      messageRate: 'bucket',
      tokensPerMinute: 'bucket',
      hourlyMessages: 'window',
      dailyTokens: 'window',
      monthlyCostUsd: 'window',
      requestsInFlight: 'slot',
    });
  });

  it.each([
    ['message rate', messageRate, { ...DEFAULT_TIER_LIMITS.free }, 25 * 3000],
    ['tokens per minute', tokensPerMinute, { ...DEFAULT_TIER_LIMITS.free, tokensPerMinute: 600 }, 45_000],
  ] as const)('projects the %s bucket exactly as the server counts it later', (_, kind, policy, aheadMs) => {
    // The bucket as a status shows it at T0 (its arrival time `aheadMs` ahead), then the same
    // bucket's state at later instants, which the projection must match to the unit.
    const snap = { [kind.attributes[0]!]: T0 + aheadMs };
    const input = (nowMs: number) => ({ policy, snap, nowMs, model: ECHO_MODEL });
    const at0 = kind.state(input(T0))!;
    const shown = {
      limit: at0.limit,
      remaining: at0.remaining,
      resetAt: at0.resetAtEpochMs,
      windowSeconds: kind.windowSeconds(policy),
    };
    for (let t = T0; t <= T0 + aheadMs + 5000; t += 250)
      expect(remainingAt(shown, 'bucket', t), `at +${t - T0} ms`).toBe(kind.state(input(t))!.remaining);
  });

  it('fills a fixed window at its end only, and never moves a slot', () => {
    const shown = { limit: 100, remaining: 10, resetAt: T0 + 60_000, windowSeconds: 3600 };
    expect(remainingAt(shown, 'window', T0 + 59_999)).toBe(10);
    expect(remainingAt(shown, 'window', T0 + 60_000)).toBe(100);
    expect(remainingAt(shown, 'slot', T0 + 600_000)).toBe(10);
  });
});
