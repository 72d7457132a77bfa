import { describe, expect, it } from 'vitest';
import { limitReason } from '../../lambda/core/limit-reason';
import type { DeniedDecision } from '../../lambda/core/limiter/decision';
import type { UpdatePlan } from '../../lambda/core/limiter/expression';
import { type GlobalLimits, shardsForConcurrency } from '../../lambda/core/limiter/global/limits';
import { waiterOf, waiterValue } from '../../lambda/core/limiter/global/line';
import {
  parseModelQuotaName,
  quotaTokens,
  unusedQuotaTokens,
} from '../../lambda/core/limiter/global/model-quotas';
import { sharesCapacity } from '../../lambda/core/limiter/global/priority';
import {
  type GlobalAsk,
  planGlobalAdmission,
  planGlobalRelease,
  roomIn,
} from '../../lambda/core/limiter/global/shards';
import type { GlobalReservation } from '../../lambda/core/limiter/global/share-record';
import { EMPTY_SNAPSHOT, type LimiterSnapshot } from '../../lambda/core/limiter/item/state';
import { parseLimitsConfig } from '../../lambda/core/limiter/policy';

/** 10:00:30 UTC, half way through minute M. */
const NOW = Date.UTC(2026, 10, 24, 10, 0, 30);
const M = Math.floor(NOW / 60_000);
const echo = (accountQuota?: unknown, id = 'a') => ({
  id,
  kind: 'echo',
  inputUsdPerMillion: 0,
  outputUsdPerMillion: 0,
  maxOutputTokens: 1000,
  ...(accountQuota === undefined ? {} : { accountQuota }),
});
const configWith = (models: unknown[], global?: object) =>
  parseLimitsConfig({ tiers: {}, models, ...(global ? { global } : {}) });

/** An expression with its names and values written in (`#n0` → the attribute, `:v0` → the value). */
const spelled = (plan: UpdatePlan, expression: string) =>
  expression
    .replace(/#n\d+/g, (n) => plan.names[n]!)
    .replace(/:v\d+/g, (v) => JSON.stringify(plan.values[v]));

describe('models[].accountQuota in LIMITS_CONFIG', () => {
  it('takes requestsPerMinute, tokensPerMinute and a burndown, and makes them global limits per model', () => {
    const config = configWith([
      echo({ requestsPerMinute: 5, tokensPerMinute: 20_000, outputTokenBurndown: 5 }),
      echo(undefined, 'b'),
    ]);
    expect(config.global).toEqual({
      shards: 4,
      models: { a: { requestsPerMinute: 5, tokensPerMinute: 20_000, outputTokenBurndown: 5 } },
    });
  });

  it('refuses a quota with neither measure, a zero, a fraction, or an unknown field, naming the field', () => {
    const error = (quota: unknown) => {
      try {
        configWith([echo(quota)]);
      } catch (err) {
        return (err as Error).message.replace('invalid limits configuration: ✖ ', '');
      }
      return 'accepted';
    };
    expect(error({})).toBe(
      'an accountQuota needs requestsPerMinute or tokensPerMinute\n  → at models[0].accountQuota',
    );
    expect(error({ requestsPerMinute: 0 })).toBe(
      'Too small: expected number to be >=1\n  → at models[0].accountQuota.requestsPerMinute',
    );
    expect(error({ tokensPerMinute: 10, outputTokenBurndown: 1.5 })).toBe(
      'Invalid input: expected int, received number\n  → at models[0].accountQuota.outputTokenBurndown',
    );
    expect(error({ requestsPerMinute: 5, rpm: 5 })).toBe(
      'Unrecognized key: "rpm"\n  → at models[0].accountQuota',
    );
    expect(error({ requestsPerMinute: 5 })).toBe('accepted');
  });

  it('gives every shard a share of at least one request: the shards are at most the smallest requestsPerMinute', () => {
    expect(configWith([echo({ requestsPerMinute: 3 })]).global?.shards).toBe(3);
    expect(configWith([echo({ tokensPerMinute: 1_000 })]).global?.shards).toBe(4);
    expect(configWith([echo({ requestsPerMinute: 50 })], { hourlyMessages: 100 }).global?.shards).toBe(4);
    expect(() => configWith([echo({ requestsPerMinute: 5 })], { shards: 6 })).toThrow(
      "invalid limits configuration: global.shards 6 is more than model a's accountQuota.requestsPerMinute 5 allows (every shard needs a share of at least one request)",
    );
    // 40 in flight need 4 shards (13 shares each): more than a quota of 3 requests a minute allows.
    expect(() => configWith([echo({ requestsPerMinute: 3 })], { requestsInFlight: 40 })).toThrow(
      /global\.requestsInFlight needs 4 shards.*requestsPerMinute 3/,
    );
    // The stack's shards for its reply runners (100 at once: 8) stop at the smallest quota too.
    expect(shardsForConcurrency(undefined, 100, { a: { requestsPerMinute: 5 } })).toBe(5);
    expect(shardsForConcurrency(undefined, 100, { a: { requestsPerMinute: 50 } })).toBe(8);
    expect(shardsForConcurrency(undefined, 100, undefined)).toBeUndefined();
  });
});

describe('a model quota on the global shards', () => {
  const limits: GlobalLimits = {
    shards: 4,
    models: { a: { requestsPerMinute: 5, tokensPerMinute: 4_600, outputTokenBurndown: 5 } },
  };
  const ask: GlobalAsk = {
    requestId: 'r1',
    userId: 'u',
    tokens: 100,
    costMicroUsd: 0,
    weight: 1,
    leaseUntilEpochMs: NOW + 60_000,
    quota: { modelId: 'a', quotaTokens: quotaTokens(limits.models!.a!, 10, 90) },
  };
  const shard = (over: Record<string, number>): LimiterSnapshot =>
    ({ ...EMPTY_SNAPSHOT, exists: true, ...over }) as LimiterSnapshot;

  it('counts input + output × burndown, as Bedrock does', () => {
    expect(ask.quota?.quotaTokens).toBe(460);
    expect(quotaTokens({ requestsPerMinute: 1 }, 10, 90)).toBe(100);
  });

  it("refuses on a shard whose share of the minute is used (shares 2, 1, 1, 1 of 5), until the minute's end", () => {
    const full = shard({ mqm_a: M, mqr_a: 2, mqt_a: 920 });
    expect(roomIn(limits, 0, full, ask, NOW)).toMatchObject({
      blocking: 'model.a.requestsPerMinute',
      retryAfterMs: 30_000,
    });
    // Shard 1's share is one request: its one taken, it is full too; a tokens share of 1,150 left 690.
    expect(roomIn(limits, 1, shard({ mqm_a: M, mqr_a: 1, mqt_a: 460 }), ask, NOW).blocking).toBe(
      'model.a.requestsPerMinute',
    );
    expect(roomIn(limits, 0, shard({ mqm_a: M, mqr_a: 1, mqt_a: 700 }), ask, NOW)).toMatchObject({
      blocking: 'model.a.tokensPerMinute',
      retryAfterMs: 30_000,
    });
    // What the last minute counted does not count in this one; another model's ask is not bounded.
    expect(
      roomIn(limits, 0, shard({ mqm_a: M - 1, mqr_a: 2, mqt_a: 920 }), ask, NOW).blocking,
    ).toBeUndefined();
    const other = { ...ask, quota: { modelId: 'b', quotaTokens: 460 } };
    expect(roomIn(limits, 0, full, other, NOW).blocking).toBeUndefined();
  });

  it("plans the count under its share in the shard's minute, or opens the minute only if the shard's is older", () => {
    const same = planGlobalAdmission({
      limits,
      shard: 0,
      belief: shard({ mqm_a: M, mqr_a: 1, mqt_a: 460 }),
      ask,
      nowMs: NOW,
    });
    expect(spelled(same.plan, same.plan.condition)).toContain(`mqm_a = ${M} AND mqr_a <= 1 AND mqt_a <= 690`);
    expect(spelled(same.plan, same.plan.update)).toContain('mqr_a = mqr_a + 1, mqt_a = mqt_a + 460');
    expect(same.taken.quota).toEqual({ modelId: 'a', quotaTokens: 460, minute: M });
    const opened = planGlobalAdmission({
      limits,
      shard: 0,
      belief: shard({ mqm_a: M - 1 }),
      ask,
      nowMs: NOW,
    });
    expect(spelled(opened.plan, opened.plan.condition)).toContain(
      `(attribute_not_exists(mqm_a) OR mqm_a < ${M})`,
    );
    expect(spelled(opened.plan, opened.plan.update)).toContain(`mqm_a = ${M}, mqr_a = 1, mqt_a = 460`);
    // A model without a quota writes no quota counter.
    const free = planGlobalAdmission({
      limits,
      shard: 0,
      belief: EMPTY_SNAPSHOT,
      ask: { ...ask, quota: undefined },
      nowMs: NOW,
    });
    expect(Object.values(free.plan.names).filter((n) => n.startsWith('mq'))).toEqual([]);
    expect(free.taken.quota).toBeUndefined();
  });

  it('gives back to the minute it was taken from, or nowhere: unused tokens at settle, the request too when undone', () => {
    const taken: GlobalReservation = {
      shard: 0,
      tokens: 100,
      costMicroUsd: 0,
      weight: 1,
      hour: Math.floor(NOW / 3_600_000),
      day: Math.floor(NOW / 86_400_000),
      quota: { modelId: 'a', quotaTokens: 460, minute: M },
    };
    const holding = shard({ mqm_a: M, mqr_a: 2, mqt_a: 920 });
    const withShare = { ...holding, shareRecords: ['r1'], inFlight: { r1: NOW + 60_000 } };
    const used = { inputTokens: 10, outputTokens: 10 };
    // 10 + 10 × 5 = 60 used of 460: 400 back while it is still that minute, none after.
    expect(unusedQuotaTokens(taken.quota, limits.models, used, NOW)).toBe(400);
    expect(unusedQuotaTokens(taken.quota, limits.models, used, (M + 1) * 60_000)).toBe(0);
    const settle = planGlobalRelease({
      belief: withShare,
      requestId: 'r1',
      taken,
      refund: { tokens: 80, costMicroUsd: 0, quotaTokens: 400 },
      undo: false,
    })!;
    expect(spelled(settle, settle.condition)).toContain(`mqm_a = ${M}`);
    expect(spelled(settle, settle.update)).toContain('mqt_a = mqt_a - 400');
    expect(spelled(settle, settle.update)).not.toContain('mqr_a');
    const undo = planGlobalRelease({
      belief: withShare,
      requestId: 'r1',
      taken,
      refund: { tokens: 100, costMicroUsd: 0 },
      undo: true,
    })!;
    expect(spelled(undo, undo.update)).toContain('mqr_a = mqr_a - 1, mqt_a = mqt_a - 460');
    // The shard moved on to the next minute: pinned to that, and nothing given back there.
    const later = planGlobalRelease({
      belief: { ...withShare, mqm_a: M + 1 } as LimiterSnapshot,
      requestId: 'r1',
      taken,
      refund: { tokens: 100, costMicroUsd: 0 },
      undo: true,
    })!;
    expect(spelled(later, later.condition)).toContain(`(attribute_not_exists(mqm_a) OR mqm_a <> ${M})`);
    expect(spelled(later, later.update)).not.toContain('mqr_a');
  });
});

describe('naming and waiting for a model quota', () => {
  it('reads a quota name whose model id has dots and colons', () => {
    expect(parseModelQuotaName('model.anthropic.claude-3-haiku-20240307-v1:0.tokensPerMinute')).toEqual({
      modelId: 'anthropic.claude-3-haiku-20240307-v1:0',
      measure: 'tokensPerMinute',
    });
    expect(parseModelQuotaName('model..requestsPerMinute')).toBeUndefined();
    expect(parseModelQuotaName('hourlyMessages')).toBeUndefined();
  });

  it('says whose quota is in use, how much, and when it frees', () => {
    const decision: Pick<DeniedDecision, 'limit' | 'limits' | 'policy' | 'queued' | 'quotaLimit'> = {
      limit: 'global.model.a.requestsPerMinute',
      limits: [],
      policy: {} as DeniedDecision['policy'],
      queued: 0,
      quotaLimit: 5,
    };
    expect(limitReason(decision, 30_000, NOW)).toBe(
      "The model a's account quota of 5 requests a minute is in use for all users; room again at 10:01:00 UTC.",
    );
  });

  it("keeps a waiter's scope in the line, and a model's waiter holds back only that model's requests", () => {
    const waiter = {
      userId: 'w',
      tier: 'free' as const,
      enqueuedAtEpochMs: NOW,
      deadlineEpochMs: NOW + 900_000,
      seenAtEpochMs: NOW,
      limit: 'model.a.requestsPerMinute' as const,
      scope: 'model:a',
    };
    const read = waiterOf('w', waiterValue(waiter));
    expect(read).toMatchObject({ limit: 'model.a.requestsPerMinute', scope: 'model:a' });
    expect(sharesCapacity(read!, ['model:a'])).toBe(true);
    expect(sharesCapacity(read!, ['model:b'])).toBe(false);
    expect(sharesCapacity({ scope: undefined }, ['model:b'])).toBe(true);
  });
});
