import { describe, expect, it } from 'vitest';
import { EMPTY_SNAPSHOT, type LimiterSnapshot, type LimiterView } from '../../lambda/core/limiter/item/state';
import type { LimitState } from '../../lambda/core/limiter/kinds/registry';
import { DEFAULT_TIER_LIMITS } from '../../lambda/core/limiter/policy';
import { isNewerPlace } from '../../lambda/core/queue/places';
import type { QueuedRequest } from '../../lambda/core/queue/request';
import { planRepairs, SWEEP_GRACE_MS } from '../../lambda/core/queue/sweep';

const T0 = Date.UTC(2026, 10, 24, 12, 0, 0);
const policy = { ...DEFAULT_TIER_LIMITS.free, requestsInFlight: 1 };

const waiting = (requestId: string, enqueuedAtEpochMs = T0): QueuedRequest => ({
  requestId,
  connectionId: 'c',
  contentKey: 'k',
  estimatedInputTokens: 1,
  enqueuedAtEpochMs,
  expiresAtEpochMs: enqueuedAtEpochMs + 960_000,
});

function viewOf(snap: Partial<LimiterSnapshot>, limits: LimitState[] = []): LimiterView {
  return {
    snap: { ...EMPTY_SNAPSHOT, exists: true, ...snap },
    tier: 'free',
    policy,
    limits,
    observedAtMs: T0,
  };
}

describe('planRepairs', () => {
  it('leaves a wake-up parked behind a busy in-flight slot alone until that slot lapses', () => {
    const lease = T0 + 900_000;
    const view = viewOf(
      { waiting: ['q1'], queued: { q1: waiting('q1') }, inFlight: { d1: lease }, parkedWakeUp: 'handle' },
      [{ name: 'requestsInFlight', limit: 1, used: 1, remaining: 0, resetAtEpochMs: lease }],
    );
    expect(planRepairs(view, T0 + 10 * 60_000).repairs).toEqual([]);
    expect(planRepairs(view, T0 + 10 * 60_000).nextLookEpochMs).toBe(lease + SWEEP_GRACE_MS);
    // Past the lease and the grace: the runner never settled, and nobody served the head.
    const late = planRepairs(view, lease + SWEEP_GRACE_MS).repairs.map((r) => r.kind);
    expect(late).toEqual(['lapsed-slot', 'lost-wake-up']);
  });

  it('leaves an active request held for its lease alone, and wakes the processor once it lapsed', () => {
    const lease = T0 + 960_000;
    const view = viewOf({
      active: { requestId: 'a1', leaseUntilEpochMs: lease, attempts: 1 },
      queued: { a1: waiting('a1') },
      inFlight: { a1: lease },
    });
    expect(planRepairs(view, lease + SWEEP_GRACE_MS - 1)).toEqual({
      repairs: [],
      nextLookEpochMs: lease + SWEEP_GRACE_MS,
    });
    expect(planRepairs(view, lease + SWEEP_GRACE_MS).repairs).toEqual([
      { kind: 'orphaned-active', requestId: 'a1' },
    ]);
  });

  it('says nothing needs an end for an item without a list, an active request or a slot', () => {
    expect(planRepairs(viewOf({ inFlight: {} }), T0)).toEqual({ repairs: [], nextLookEpochMs: undefined });
  });
});

describe('isNewerPlace', () => {
  it('drops a place computed from an older version of the list, whatever order they arrive in', () => {
    expect(isNewerPlace({ position: 1, queueVersion: 4 }, { position: 2, queueVersion: 3 })).toBe(false);
    expect(isNewerPlace({ position: 2, queueVersion: 3 }, { position: 1, queueVersion: 4 })).toBe(true);
    expect(isNewerPlace(undefined, { position: 2, queueVersion: 3 })).toBe(true);
    expect(isNewerPlace({ position: 1 }, { position: 2 })).toBe(true);
  });
});
