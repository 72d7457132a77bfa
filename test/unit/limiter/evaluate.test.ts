import { describe, expect, it } from 'vitest';
import { DAY_MS, type Evaluation, evaluate, HOUR_MS } from '../../../lambda/core/limiter/evaluate';
import { EMPTY_SNAPSHOT, type LimiterSnapshot } from '../../../lambda/core/limiter/item/state';
import type { LimitPolicy } from '../../../lambda/core/limiter/kinds/registry';
import { planAdmission } from '../../../lambda/core/limiter/plan/admission';
import { DEFAULT_TIER_LIMITS, effectivePolicy } from '../../../lambda/core/limiter/policy';

const FREE = DEFAULT_TIER_LIMITS.free;
/** A fixed instant well inside a UTC hour: 2026-11-24T10:20:00Z. */
const T0 = Date.UTC(2026, 10, 24, 10, 20, 0);
const ASK = { estimatedInputTokens: 100 };

/** What the conditional write does on admission, applied to a snapshot (the test's "item"). */
function admitted(
  policy: LimitPolicy,
  snap: LimiterSnapshot,
  ev: Evaluation,
  nowMs: number,
): LimiterSnapshot {
  const interval = 60_000 / policy.messagesPerMinute;
  const hour = Math.floor(nowMs / HOUR_MS);
  const day = Math.floor(nowMs / DAY_MS);
  return {
    ...snap,
    exists: true,
    tat: Math.max(snap.tat ?? nowMs, nowMs) + interval,
    hw: hour,
    hc: (snap.hw === hour ? (snap.hc ?? 0) : 0) + 1,
    dw: day,
    dc: (snap.dw === day ? (snap.dc ?? 0) : 0) + 1,
    td: day,
    tu: (snap.td === day ? (snap.tu ?? 0) : 0) + (ev.reservation?.reservedTokens ?? 0),
  };
}

/** Sends `n` requests at `nowMs`; returns how many were admitted and the resulting snapshot. */
function burst(policy: LimitPolicy, snap: LimiterSnapshot, n: number, nowMs: number, ask = ASK) {
  let s = snap;
  let admittedCount = 0;
  for (let i = 0; i < n; i++) {
    const ev = evaluate(policy, s, ask, nowMs);
    if (ev.blocking) continue;
    admittedCount++;
    s = admitted(policy, s, ev, nowMs);
  }
  return { admittedCount, snap: s };
}

describe('message bucket (GCRA)', () => {
  it('admits 25 back to back for free, then refuses with the exact wait for the next refill', () => {
    const { admittedCount, snap } = burst(FREE, EMPTY_SNAPSHOT, 40, T0);
    expect(admittedCount).toBe(25);
    const ev = evaluate(FREE, snap, ASK, T0);
    expect(ev.blocking).toMatchObject({ limit: 'messageRate', retryAfterMs: 3000 });
    expect(ev.limits.find((l) => l.name === 'messageRate')).toMatchObject({ remaining: 0, used: 25 });
  });

  it('refills one message every 3 s: 1 ms early is refused, on time is admitted, the next waits 3 s', () => {
    const { snap } = burst(FREE, EMPTY_SNAPSHOT, 25, T0);
    expect(evaluate(FREE, snap, ASK, T0 + 2999).blocking).toMatchObject({ retryAfterMs: 1 });
    const ev = evaluate(FREE, snap, ASK, T0 + 3000);
    expect(ev.blocking).toBeUndefined();
    const after = admitted(FREE, snap, ev, T0 + 3000);
    expect(evaluate(FREE, after, ASK, T0 + 3000).blocking).toMatchObject({ retryAfterMs: 3000 });
  });

  it('an idle bucket is full again after capacity × interval, never fuller', () => {
    const { snap } = burst(FREE, EMPTY_SNAPSHOT, 25, T0);
    expect(burst(FREE, snap, 40, T0 + 75_000).admittedCount).toBe(25);
    expect(burst(FREE, snap, 40, T0 + 10 * 60_000).admittedCount).toBe(25);
    expect(burst(FREE, snap, 40, T0 + 30_000).admittedCount).toBe(10);
  });

  it('burst 0 caps back-to-back messages at one minute’s worth', () => {
    const policy = { ...FREE, messagesPerMinute: 6, burst: 0 };
    expect(burst(policy, EMPTY_SNAPSHOT, 20, T0).admittedCount).toBe(6);
  });
});

describe('fixed-window quotas (UTC hour and day)', () => {
  const policy: LimitPolicy = {
    ...FREE,
    messagesPerMinute: 600,
    burst: 0,
    hourlyMessages: 3,
    dailyMessages: 5,
  };

  it('the hourly quota refuses until the next UTC hour, then counts afresh', () => {
    const { admittedCount, snap } = burst(policy, EMPTY_SNAPSHOT, 10, T0);
    expect(admittedCount).toBe(3);
    const nextHour = Date.UTC(2026, 10, 24, 11, 0, 0);
    expect(evaluate(policy, snap, ASK, T0).blocking).toMatchObject({
      limit: 'hourlyMessages',
      retryAfterMs: nextHour - T0,
      resetAtEpochMs: nextHour,
    });
    expect(evaluate(policy, snap, ASK, nextHour - 1).blocking?.limit).toBe('hourlyMessages');
    const fresh = evaluate(policy, snap, ASK, nextHour);
    expect(fresh.blocking).toBeUndefined();
    expect(fresh.limits.find((l) => l.name === 'hourlyMessages')).toMatchObject({ used: 0, remaining: 3 });
  });

  it('the daily quota outlasts the hour and reopens at UTC midnight', () => {
    let s = burst(policy, EMPTY_SNAPSHOT, 10, T0).snap;
    s = burst(policy, s, 10, T0 + HOUR_MS).snap;
    const later = T0 + 2 * HOUR_MS;
    const midnight = Date.UTC(2026, 10, 25);
    expect(evaluate(policy, s, ASK, later).blocking).toMatchObject({
      limit: 'dailyMessages',
      retryAfterMs: midnight - later,
    });
    expect(evaluate(policy, s, ASK, midnight).blocking).toBeUndefined();
  });

  it('a window rolls over exactly at the boundary, not a rolling 60 minutes after the first message', () => {
    const justBefore = Date.UTC(2026, 10, 24, 10, 59, 59, 999);
    const { snap } = burst(policy, EMPTY_SNAPSHOT, 3, justBefore);
    expect(evaluate(policy, snap, ASK, justBefore + 1).blocking).toBeUndefined();
  });
});

describe('daily token budget', () => {
  const policy: LimitPolicy = {
    ...FREE,
    dailyTokens: 10_000,
    defaultMaxOutputTokens: 1024,
    minOutputTokens: 16,
  };
  const today = Math.floor(T0 / DAY_MS);

  it('reserves input plus the default output allowance', () => {
    expect(evaluate(policy, EMPTY_SNAPSHOT, ASK, T0).reservation).toMatchObject({
      inputTokens: 100,
      outputAllowance: 1024,
      reservedTokens: 1124,
    });
  });

  it('honours a smaller maxTokens and caps the allowance at what is left', () => {
    expect(evaluate(policy, EMPTY_SNAPSHOT, { ...ASK, maxTokens: 50 }, T0).reservation?.outputAllowance).toBe(
      50,
    );
    const snap = { ...EMPTY_SNAPSHOT, exists: true, td: today, tu: 9_500 };
    expect(evaluate(policy, snap, ASK, T0).reservation).toMatchObject({
      inputTokens: 100,
      outputAllowance: 400,
      reservedTokens: 500,
    });
  });

  it("caps the allowance at the model's maximum output, whatever the client asks for", () => {
    const ask = { ...ASK, maxTokens: 100_000, modelMaxOutputTokens: 4096 };
    expect(
      evaluate({ ...policy, dailyTokens: 1_000_000 }, EMPTY_SNAPSHOT, ask, T0).reservation,
    ).toMatchObject({
      inputTokens: 100,
      outputAllowance: 4096,
      reservedTokens: 4196,
    });
    // The default allowance too.
    const small = { ...ASK, modelMaxOutputTokens: 256 };
    expect(evaluate(policy, EMPTY_SNAPSHOT, small, T0).reservation?.outputAllowance).toBe(256);
  });

  it('refuses when the allowance would fall below the minimum, until the next UTC midnight', () => {
    const snap = { ...EMPTY_SNAPSHOT, exists: true, td: today, tu: 10_000 - 100 - 15 };
    const ev = evaluate(policy, snap, ASK, T0);
    expect(ev.reservation).toBeUndefined();
    const midnight = Date.UTC(2026, 10, 25);
    expect(ev.blocking).toEqual({
      limit: 'dailyTokens',
      retryAfterMs: midnight - T0,
      resetAtEpochMs: midnight,
    });
    const atMinimum = { ...snap, tu: 10_000 - 100 - 16 };
    expect(evaluate(policy, atMinimum, ASK, T0).reservation?.outputAllowance).toBe(16);
  });

  it('a budget used up yesterday is whole today', () => {
    const snap = { ...EMPTY_SNAPSHOT, exists: true, td: today - 1, tu: 10_000 };
    const ev = evaluate(policy, snap, ASK, T0);
    expect(ev.blocking).toBeUndefined();
    expect(ev.limits.find((l) => l.name === 'dailyTokens')).toMatchObject({ used: 0, remaining: 10_000 });
  });

  it('repeated reservations never sum past the budget', () => {
    const { snap } = burst({ ...policy, messagesPerMinute: 1000 }, EMPTY_SNAPSHOT, 100, T0);
    expect(snap.tu).toBeLessThanOrEqual(10_000);
    expect(snap.tu).toBeGreaterThan(10_000 - 100 - 16);
  });
});

describe('retryAfterMs when several limits block', () => {
  it('is the latest of the blocking limits: the earliest moment the request fits them all', () => {
    const policy: LimitPolicy = { ...FREE, hourlyMessages: 25 };
    const { snap } = burst(policy, EMPTY_SNAPSHOT, 25, T0);
    const ev = evaluate(policy, snap, ASK, T0);
    const nextHour = Date.UTC(2026, 10, 24, 11);
    expect(ev.blocking).toMatchObject({ limit: 'hourlyMessages', retryAfterMs: nextHour - T0 });
    // At that moment the bucket has long refilled, so the request fits every limit.
    expect(evaluate(policy, snap, ASK, T0 + ev.blocking!.retryAfterMs).blocking).toBeUndefined();
  });

  it('picks the bucket when it is the later of two', () => {
    const policy: LimitPolicy = { ...FREE, hourlyMessages: 25 };
    const nearHourEnd = Date.UTC(2026, 10, 24, 10, 59, 59);
    const { snap } = burst(policy, EMPTY_SNAPSHOT, 25, nearHourEnd);
    const ev = evaluate(policy, snap, ASK, nearHourEnd);
    expect(ev.blocking).toMatchObject({ limit: 'messageRate', retryAfterMs: 3000 });
    expect(evaluate(policy, snap, ASK, nearHourEnd + 2999).blocking).toBeDefined();
    expect(evaluate(policy, snap, ASK, nearHourEnd + 3000).blocking).toBeUndefined();
  });

  it('tokens and the bucket together wait until midnight', () => {
    const { snap } = burst(FREE, EMPTY_SNAPSHOT, 25, T0);
    const spent = { ...snap, tu: FREE.dailyTokens };
    const ev = evaluate(FREE, spent, ASK, T0);
    expect(ev.blocking).toMatchObject({ limit: 'dailyTokens', retryAfterMs: Date.UTC(2026, 10, 25) - T0 });
  });
});

describe('effective policy and overrides', () => {
  it('an unexpired override applies on top of the tier; an expired one does not', () => {
    const override = { limits: { messagesPerMinute: 2, burst: 0 }, expiresAtEpochMs: T0 + 60_000 };
    expect(effectivePolicy(FREE, override, T0)).toMatchObject({
      messagesPerMinute: 2,
      burst: 0,
      dailyTokens: 100_000,
    });
    expect(effectivePolicy(FREE, override, T0 + 60_000)).toBe(FREE);
    expect(effectivePolicy(FREE, { limits: { burst: 1 } }, T0 + 10 * DAY_MS).burst).toBe(1);
  });

  it('the override changes how many messages fit', () => {
    const override = { limits: { messagesPerMinute: 2, burst: 0 }, expiresAtEpochMs: T0 + 60_000 };
    expect(burst(effectivePolicy(FREE, override, T0), EMPTY_SNAPSHOT, 10, T0).admittedCount).toBe(2);
    expect(
      burst(effectivePolicy(FREE, override, T0 + 60_000), EMPTY_SNAPSHOT, 40, T0 + 60_000).admittedCount,
    ).toBe(25);
  });
});

const REPLAY = { mode: 'replay' as const, leaseUntilEpochMs: T0 + 110_000 };

describe('planAdmission', () => {
  const base = { policy: FREE, ask: ASK, requestId: 'req-1', nowMs: T0, leaseUntilEpochMs: T0 + 960_000 };

  it('plans a write for a fresh user whose condition pins the absence of the item state', () => {
    const plan = planAdmission({ ...base, belief: EMPTY_SNAPSHOT, queue: { mode: 'direct' } });
    expect(plan.kind).toBe('write');
    if (plan.kind !== 'write') return;
    expect(plan.plan.condition).toMatch(/attribute_not_exists/);
    expect(plan.plan.update).toMatch(/SET/);
  });

  it('a busy bucket in the belief picks the push-on case, bounded by now + tolerance', () => {
    const { snap } = burst(FREE, EMPTY_SNAPSHOT, 3, T0);
    const plan = planAdmission({ ...base, belief: snap, queue: { mode: 'direct' } });
    if (plan.kind !== 'write') throw new Error(`expected a write, got ${plan.kind}`);
    const tolerance = Object.entries(plan.plan.values).find(([, v]) => v === T0 + 24 * 3000);
    expect(tolerance).toBeDefined();
    expect(plan.plan.condition).toContain(`<= ${tolerance?.[0]}`);
  });

  it('rejects from the belief when a limit blocks, and holds back direct sends behind a waiting queue', () => {
    const { snap } = burst(FREE, EMPTY_SNAPSHOT, 25, T0);
    expect(planAdmission({ ...base, belief: snap, queue: { mode: 'direct' } }).kind).toBe('reject');
    const waiting = { ...EMPTY_SNAPSHOT, exists: true, waiting: ['other'] };
    expect(planAdmission({ ...base, belief: waiting, queue: { mode: 'direct' } }).kind).toBe('queued-ahead');
    expect(planAdmission({ ...base, belief: waiting, queue: REPLAY }).kind).toBe('not-head');
  });

  it('a replay of the head of the queue writes, removes it and makes it active in the same update', () => {
    const waiting = { ...EMPTY_SNAPSHOT, exists: true, waiting: ['req-1', 'req-2'] };
    const plan = planAdmission({ ...base, belief: waiting, queue: REPLAY });
    if (plan.kind !== 'write') throw new Error(`expected a write, got ${plan.kind}`);
    expect(plan.plan.update).toMatch(/REMOVE .*\[0\]/);
    expect(plan.plan.condition).toMatch(/\[0\] = /);
    expect(Object.values(plan.plan.values)).toContainEqual({ id: 'req-1', lease: T0 + 110_000, att: 1 });
  });

  it('holds the next head back while another queued request of the user is being answered', () => {
    const busy = {
      ...EMPTY_SNAPSHOT,
      exists: true,
      waiting: ['req-1'],
      active: { requestId: 'req-0', leaseUntilEpochMs: T0 + 1000, attempts: 1 },
    };
    expect(planAdmission({ ...base, belief: busy, queue: REPLAY }).kind).toBe('not-head');
  });

  it('names a direct request whose id is still reserved or waiting a duplicate', () => {
    const reserved = {
      ...EMPTY_SNAPSHOT,
      exists: true,
      reservations: { 'req-1': { day: 1, inputTokens: 1, outputAllowance: 1 } },
    };
    expect(planAdmission({ ...base, belief: reserved, queue: { mode: 'direct' } }).kind).toBe('duplicate');
  });
});
