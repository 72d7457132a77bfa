import { describe, expect, it } from 'vitest';
import { EMPTY_SNAPSHOT, type LimiterSnapshot } from '../../../lambda/core/limiter/item/state';
import { markerWindows } from '../../../lambda/core/limiter/kinds/registry';
import { planAdmission } from '../../../lambda/core/limiter/plan/admission';
import { planSettle } from '../../../lambda/core/limiter/plan/settle';
import {
  ITEM_TTL_SECONDS,
  itemTtlEpochSeconds,
  POLICY_TTL_SECONDS,
  REPAIR_MARGIN_MS,
} from '../../../lambda/core/limiter/plan/ttl';
import { DEFAULT_TIER_LIMITS } from '../../../lambda/core/limiter/policy';
import { dayNumber, monthNumber } from '../../../lambda/core/limiter/windows';

const FREE = { ...DEFAULT_TIER_LIMITS.free, monthlyTokens: 100_000, dailyCostUsd: 1 };
const JAN_3 = Date.UTC(2026, 0, 3, 10, 0, 0);
const FEB_1 = Date.UTC(2026, 1, 1);

/** The plan's expression with its placeholders filled in, to read what it pins. */
function readable(plan: { update: string; condition: string; names: Record<string, string> }) {
  const fill = (text: string) => text.replace(/#n\d+/g, (n) => plan.names[n] ?? n);
  return { update: fill(plan.update), condition: fill(plan.condition) };
}

describe('itemTtlEpochSeconds', () => {
  it('never precedes the end of the month an admission counts in, however long the user stays idle', () => {
    expect(itemTtlEpochSeconds({ nowMs: JAN_3, keepsPolicy: false })).toBe(FEB_1 / 1000);
    // Near the month's end, the idle TTL is the later one.
    const late = Date.UTC(2026, 0, 31, 12);
    expect(itemTtlEpochSeconds({ nowMs: late, keepsPolicy: false })).toBe(late / 1000 + ITEM_TTL_SECONDS);
    expect(itemTtlEpochSeconds({ nowMs: JAN_3, keepsPolicy: true })).toBe(JAN_3 / 1000 + POLICY_TTL_SECONDS);
  });

  it('outlives a state held past both (a lease, a queued deadline), with time for the sweep to repair it', () => {
    const lastSeconds = Date.UTC(2026, 0, 31, 23, 59, 50);
    const heldUntil = FEB_1 + 3 * 86_400_000;
    expect(
      itemTtlEpochSeconds({ nowMs: lastSeconds, keepsPolicy: false, holdsUntilEpochMs: heldUntil }),
    ).toBe((heldUntil + REPAIR_MARGIN_MS) / 1000);
  });
});

describe('planSettle', () => {
  const feb = Date.UTC(2026, 1, 1, 0, 0, 10);
  const pending = {
    windows: markerWindows(feb),
    day: dayNumber(feb),
    month: monthNumber(feb),
    inputTokens: 10,
    outputAllowance: 1000,
    tokenEpoch: 0,
    costEpoch: 0,
    costMicroUsd: 602,
  };
  const settle = (belief: LimiterSnapshot) =>
    readable(
      planSettle({
        policy: FREE,
        belief,
        requestId: 'r',
        pending,
        delta: { tokens: 960, costMicroUsd: 576 },
        nowMs: feb + 5_000,
        endsActive: false,
      }),
    );

  it("refunds into the reservation's own day and month, pinned to them", () => {
    const { update, condition } = settle({
      ...EMPTY_SNAPSHOT,
      exists: true,
      td: pending.day,
      tu: 1010,
      tm: pending.month,
      tmu: 1010,
      cd: pending.day,
      cu: 602,
    });
    expect(update).toContain('tu = tu - ');
    expect(update).toContain('tmu = tmu - ');
    expect(update).toContain('cu = cu - ');
    expect(condition).toContain('td = ');
    expect(condition).toContain('tm = ');
  });

  it('pins "nowhere" when its belief is of the day before, so the store decides, never the belief', () => {
    const { update, condition } = settle({
      ...EMPTY_SNAPSHOT,
      exists: true,
      td: pending.day - 1,
      tu: 5,
      tm: pending.month - 1,
      tmu: 5,
    });
    expect(update).not.toContain('tu = tu - ');
    expect(condition).toContain('(attribute_not_exists(td) OR td <> ');
    expect(condition).toContain('(attribute_not_exists(tm) OR tm <> ');
  });

  it('voids only the reset scope: a reset of tokens keeps the cost refund', () => {
    const { update, condition } = settle({
      ...EMPTY_SNAPSHOT,
      exists: true,
      tokenEpoch: 1,
      cd: pending.day,
      cu: 602,
    });
    expect(update).not.toContain('tu = tu - ');
    expect(update).toContain('cu = cu - ');
    expect(condition).toContain('attribute_exists(te)');
    expect(condition).toContain('attribute_not_exists(ce)');
  });
});

describe('planAdmission', () => {
  it("keeps an earlier day's marker while its request may still settle, and drops one whose slot is gone", () => {
    const today = Date.UTC(2026, 0, 16, 0, 0, 10);
    const yesterday = dayNumber(today) - 1;
    const belief: LimiterSnapshot = {
      ...EMPTY_SNAPSHOT,
      exists: true,
      reservations: {
        streaming: { day: yesterday, inputTokens: 10, outputAllowance: 100 },
        running: { day: yesterday, inputTokens: 10, outputAllowance: 100 },
        crashed: { day: yesterday, inputTokens: 10, outputAllowance: 100 },
      },
      active: { requestId: 'streaming', leaseUntilEpochMs: today + 900_000, attempts: 1 },
      inFlight: { streaming: today + 900_000, running: today + 100_000, crashed: today - 1 },
    };
    const planned = planAdmission({
      policy: FREE,
      belief,
      ask: { estimatedInputTokens: 10 },
      requestId: 'new',
      queue: { mode: 'direct' },
      leaseUntilEpochMs: today + 960_000,
      nowMs: today,
    });
    if (planned.kind !== 'write') throw new Error(`expected a write, got ${planned.kind}`);
    const { update, condition } = readable(planned.plan);
    const removed = update.slice(update.indexOf('REMOVE'));
    expect(removed).toContain('r_crashed');
    expect(removed).not.toContain('r_streaming');
    expect(removed).not.toContain('r_running');
    // The dropped one is pinned: its lapsed slot as seen (dropped in the same write), not active.
    expect(condition).toContain('fl.crashed = ');
    expect(condition).toContain('(attribute_not_exists(act) OR act.id <> ');
  });
});
