import { describe, expect, it } from 'vitest';
import { askOn, chooseModel } from '../../../lambda/core/limiter/decide/model';
import type { DecideInput } from '../../../lambda/core/limiter/decision';
import { snapshotFromItem } from '../../../lambda/core/limiter/item/codec';
import { EMPTY_SNAPSHOT, type LimiterSnapshot } from '../../../lambda/core/limiter/item/state';
import type { LimitPolicy } from '../../../lambda/core/limiter/kinds/registry';
import { planAdmission } from '../../../lambda/core/limiter/plan/admission';
import { DEFAULT_TIER_LIMITS } from '../../../lambda/core/limiter/policy';
import { dayNumber } from '../../../lambda/core/limiter/windows';
import type { ModelSpec } from '../../../lambda/core/models';

const NOW = Date.UTC(2026, 0, 3, 10, 0, 0);
const LARGE: ModelSpec = {
  id: 'large',
  kind: 'echo',
  inputUsdPerMillion: 3,
  outputUsdPerMillion: 15,
  maxOutputTokens: 4096,
};
const SMALL: ModelSpec = {
  id: 'small',
  kind: 'echo',
  inputUsdPerMillion: 0.1,
  outputUsdPerMillion: 0.4,
  maxOutputTokens: 1024,
};
const MODELS = [LARGE, SMALL];
const POLICY: LimitPolicy = {
  ...DEFAULT_TIER_LIMITS.free,
  dailyCostUsd: 0.01,
  defaultModel: 'large',
  fallbackModel: 'small',
};
const INPUT: DecideInput = { userId: 'u', requestId: 'r1', estimatedInputTokens: 100, maxTokens: 256 };

function planOn(policy: LimitPolicy, snap: LimiterSnapshot) {
  return (model: ModelSpec) =>
    planAdmission({
      policy,
      belief: snap,
      ask: askOn(INPUT, model),
      requestId: INPUT.requestId,
      queue: { mode: 'direct' },
      leaseUntilEpochMs: NOW + 60_000,
      nowMs: NOW,
    });
}

/** A user whose daily cost is spent but for `leftMicroUsd`. */
function costLeft(leftMicroUsd: number): LimiterSnapshot {
  return snapshotFromItem({ pk: 'user#u', cd: dayNumber(NOW), cu: 10_000 - leftMicroUsd });
}

describe('askOn', () => {
  it('prices the request by the model and caps its output at the model maximum', () => {
    const ask = askOn({ ...INPUT, modelMaxOutputTokens: 8192 }, SMALL);
    expect(ask).toMatchObject({ model: 'small', price: SMALL, modelMaxOutputTokens: 1024 });
    expect(askOn(INPUT, LARGE).modelMaxOutputTokens).toBe(4096);
  });
});

describe('chooseModel', () => {
  it('runs the request on the tier default when it names no model', () => {
    const choice = chooseModel(POLICY, MODELS, INPUT, planOn(POLICY, EMPTY_SNAPSHOT));
    expect(choice?.planned.kind).toBe('write');
    expect(choice?.served).toMatchObject({ model: 'large', fallbackFrom: undefined, price: LARGE });
  });

  it('refuses a model the tier may not use (nothing planned)', () => {
    const policy = { ...POLICY, models: ['small'] };
    expect(
      chooseModel(policy, MODELS, { ...INPUT, model: 'large' }, planOn(policy, EMPTY_SNAPSHOT)),
    ).toBeUndefined();
  });

  it('lands softly on the fallback model when a spent cost budget refuses the chosen one', () => {
    // Enough for the small model's reservation (100×0.1 + 256×0.4 ≈ 113 µUSD), not the large one's.
    const choice = chooseModel(POLICY, MODELS, INPUT, planOn(POLICY, costLeft(500)));
    expect(choice?.planned.kind).toBe('write');
    expect(choice?.served).toMatchObject({ model: 'small', fallbackFrom: 'large', price: SMALL });
  });

  it('keeps the refusal when the fallback does not fit either', () => {
    const choice = chooseModel(POLICY, MODELS, INPUT, planOn(POLICY, costLeft(0)));
    expect(choice?.planned.kind).toBe('reject');
    expect(choice?.served.model).toBe('large');
  });

  it('never falls back for a limit that is not a cost budget (a message limit holds whatever the model)', () => {
    const spent = snapshotFromItem({ pk: 'user#u', tat: NOW + 3_600_000 });
    const choice = chooseModel(POLICY, MODELS, INPUT, planOn(POLICY, spent));
    expect(choice?.planned.kind).toBe('reject');
    expect(choice?.planned.kind === 'reject' && choice.planned.evaluation.blocking?.limit).toBe(
      'messageRate',
    );
    expect(choice?.served.fallbackFrom).toBeUndefined();
  });
});
