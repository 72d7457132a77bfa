import { describe, expect, it } from 'vitest';
import {
  allowedDecision,
  BUSY_RETRY_AFTER_MS,
  busyDecision,
  type DecisionBasis,
  deniedDecision,
  failedClosedDecision,
  failedOpenDecision,
  globalDeniedDecision,
  modelRefusedDecision,
} from '../../../lambda/core/limiter/decide/decisions';
import { landedAdmission } from '../../../lambda/core/limiter/decide/landed';
import { askOn } from '../../../lambda/core/limiter/decide/model';
import { limitsOf, policyOf, tierOf } from '../../../lambda/core/limiter/decide/resolve';
import type { DecideInput } from '../../../lambda/core/limiter/decision';
import { snapshotFromItem } from '../../../lambda/core/limiter/item/codec';
import { EMPTY_SNAPSHOT, type LimiterSnapshot } from '../../../lambda/core/limiter/item/state';
import { type AdmissionPlan, planAdmission } from '../../../lambda/core/limiter/plan/admission';
import { DEFAULT_TIER_LIMITS } from '../../../lambda/core/limiter/policy';
import { dayNumber } from '../../../lambda/core/limiter/windows';
import { ECHO_MODEL } from '../../../lambda/core/models';

const NOW = Date.UTC(2026, 0, 3, 10, 0, 0);
const POLICY = DEFAULT_TIER_LIMITS.free;
const INPUT: DecideInput = { userId: 'u', requestId: 'r1', estimatedInputTokens: 100, maxTokens: 256 };
const basis = (snap: LimiterSnapshot = EMPTY_SNAPSHOT): DecisionBasis => ({
  tier: 'free',
  policy: POLICY,
  snap,
  nowMs: NOW,
});

function plan(snap: LimiterSnapshot, input: DecideInput = INPUT): AdmissionPlan {
  return planAdmission({
    policy: POLICY,
    belief: snap,
    ask: askOn(input, ECHO_MODEL),
    requestId: input.requestId,
    queue: { mode: 'direct' },
    leaseUntilEpochMs: NOW + 60_000,
    nowMs: NOW,
  });
}

describe('tierOf and policyOf', () => {
  it("takes the user's own tier over the token's claim, and free when neither says", () => {
    expect(tierOf(snapshotFromItem({ pk: 'user#u', tier: 'pro' }), 'enterprise')).toBe('pro');
    expect(tierOf(EMPTY_SNAPSHOT, 'enterprise')).toBe('enterprise');
    expect(tierOf(EMPTY_SNAPSHOT, undefined)).toBe('free');
  });

  it('applies an unexpired override on top of the tier, and drops it once expired', () => {
    const snap = snapshotFromItem({ pk: 'user#u', ovr: { limits: { burst: 1 }, expiresAtEpochMs: NOW + 1 } });
    expect(policyOf(DEFAULT_TIER_LIMITS, snap, undefined, NOW).burst).toBe(1);
    expect(policyOf(DEFAULT_TIER_LIMITS, snap, undefined, NOW + 1).burst).toBe(POLICY.burst);
  });

  it('lists every limit the policy sets, as status shows them', () => {
    expect(limitsOf(POLICY, EMPTY_SNAPSHOT, NOW).map((l) => l.name)).toEqual(
      limitsOf(POLICY, EMPTY_SNAPSHOT, NOW + 1).map((l) => l.name),
    );
    expect(limitsOf(POLICY, EMPTY_SNAPSHOT, NOW).length).toBeGreaterThan(0);
  });
});

describe('decision builders', () => {
  it('refuses by the limit that blocks, with its retry and reset', () => {
    const spent = snapshotFromItem({ pk: 'user#u', tat: NOW + 3_600_000 });
    const planned = plan(spent);
    if (planned.kind !== 'reject') throw new Error(`expected a reject, got ${planned.kind}`);
    const denied = deniedDecision(basis(spent), planned);
    expect(denied).toMatchObject({
      allowed: false,
      limit: planned.evaluation.blocking!.limit,
      retryAfterMs: planned.evaluation.blocking!.retryAfterMs,
      resetAtEpochMs: planned.evaluation.blocking!.resetAtEpochMs,
      queued: 0,
    });
  });

  it('refuses a reused id of a request still pending as a duplicate, retry now', () => {
    const pending = snapshotFromItem({ pk: 'user#u', r_r1: { d: dayNumber(NOW), i: 1, o: 1 } });
    const planned = plan(pending);
    if (planned.kind !== 'duplicate') throw new Error(`expected a duplicate, got ${planned.kind}`);
    expect(deniedDecision(basis(pending), planned)).toMatchObject({
      limit: 'duplicate',
      retryAfterMs: 0,
      resetAtEpochMs: NOW,
    });
  });

  it('names a global refusal after its limit and waits as long as told', () => {
    const planned = plan(EMPTY_SNAPSHOT);
    if (planned.kind !== 'write') throw new Error('expected a write');
    expect(globalDeniedDecision(basis(), 'hourlyMessages', 5_000, planned)).toMatchObject({
      allowed: false,
      limit: 'global.hourlyMessages',
      retryAfterMs: 5_000,
      resetAtEpochMs: NOW + 5_000,
    });
  });

  it('spreads busy refusals over one to two seconds by the injected randomness', () => {
    expect(busyDecision(basis(), () => 0)).toMatchObject({
      limit: 'busy',
      retryAfterMs: BUSY_RETRY_AFTER_MS,
    });
    expect(busyDecision(basis(), () => 0.9999).retryAfterMs).toBe(2 * BUSY_RETRY_AFTER_MS - 1);
  });

  it('refuses a model the tier may not use without a wait', () => {
    expect(modelRefusedDecision(basis())).toMatchObject({
      limit: 'model',
      retryAfterMs: 0,
      resetAtEpochMs: NOW,
    });
  });

  it('fails closed as unavailable for a second, and open with the allowance the model permits', () => {
    expect(failedClosedDecision('free', POLICY, NOW)).toMatchObject({
      allowed: false,
      limit: 'unavailable',
      retryAfterMs: 1000,
      limits: [],
    });
    const small = { ...ECHO_MODEL, maxOutputTokens: 100 };
    const open = failedOpenDecision(INPUT, 'free', POLICY, small, NOW);
    expect(open).toMatchObject({ allowed: true, failedOpen: true, model: 'echo', limits: [] });
    expect(open.reservation).toMatchObject({
      outputAllowance: 100,
      reservedTokens: 200,
      dayNumber: dayNumber(NOW),
    });
  });

  it("admits with the reservation the write made, at the item's epochs", () => {
    const planned = plan(EMPTY_SNAPSHOT);
    if (planned.kind !== 'write') throw new Error('expected a write');
    const after = snapshotFromItem({ pk: 'user#u', te: 2, ce: 3, ttat: NOW + 5 });
    const served = { model: 'echo', price: ECHO_MODEL };
    const allowed = allowedDecision(basis(after), INPUT, planned, served);
    expect(allowed).toMatchObject({
      allowed: true,
      failedOpen: false,
      model: 'echo',
      warnings: planned.warnings,
    });
    expect(allowed.reservation).toMatchObject({
      userId: 'u',
      requestId: 'r1',
      dayNumber: planned.day,
      tokenEpoch: 2,
      costEpoch: 3,
      price: {
        inputUsdPerMillion: ECHO_MODEL.inputUsdPerMillion,
        outputUsdPerMillion: ECHO_MODEL.outputUsdPerMillion,
      },
    });
    expect(allowed.reservation.bucketAfterEpochMs).toBe(planned.movesBucket ? NOW + 5 : undefined);
  });

  it('admits a write whose answer was lost from its marker, counted once', () => {
    const marker = { d: dayNumber(NOW), i: 100, o: 256, e: 1, ce: 0, c: 42 };
    const landedSnap = snapshotFromItem({ pk: 'user#u', r_r1: marker });
    const evaluation = plan(landedSnap).evaluation;
    const landed = landedAdmission(INPUT, landedSnap, evaluation);
    expect(landed).toMatchObject({
      kind: 'already-admitted',
      inputTokens: 100,
      outputAllowance: 256,
      tokenEpoch: 1,
    });
    expect(landedAdmission(INPUT, EMPTY_SNAPSHOT, evaluation)).toBeUndefined();
    // A replay landed only if it also became the user's active request.
    const replay = { ...INPUT, queue: { mode: 'replay' as const, leaseUntilEpochMs: NOW + 1 } };
    expect(landedAdmission(replay, landedSnap, evaluation)).toBeUndefined();
    const allowed = allowedDecision(basis(landedSnap), INPUT, landed!, { model: 'echo', price: ECHO_MODEL });
    expect(allowed.reservation).toMatchObject({
      reservedTokens: 356,
      reservedCostMicroUsd: 42,
      tokenEpoch: 1,
    });
    expect(allowed.warnings).toEqual([]);
  });
});
