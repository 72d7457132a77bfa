import { randomUUID } from 'node:crypto';
import { GetItemCommand } from '@aws-sdk/client-dynamodb';
import { marshall, unmarshall } from '@aws-sdk/util-dynamodb';
import { describe, expect, inject, it } from 'vitest';
import { DynamoLimiter } from '../../lambda/adapters/dynamo-limiter';
import type { AllowedDecision, DecideInput, Decision } from '../../lambda/core/limiter/decision';
import { shardKey } from '../../lambda/core/limiter/global/shards';
import { parseLimitsConfig } from '../../lambda/core/limiter/policy';
import type { ModelSpec } from '../../lambda/core/models';
import { localDynamoClient, localSqsClient } from '../../local/aws-clients';
import { createLocalResources } from '../../local/resources';
import { onEveryEmulator } from '../support/dynamodb-local';

/** 10:00:00 UTC: a minute starts. */
const NOW = Date.UTC(2026, 10, 24, 10, 0, 0);
/** Users' own limits out of the way: only the models' quotas bind. */
const OPEN_TIERS = {
  free: { messagesPerMinute: 60_000, burst: 0, dailyTokens: 100_000_000 },
  pro: { messagesPerMinute: 60_000, burst: 0, dailyTokens: 100_000_000 },
  enterprise: { messagesPerMinute: 60_000, burst: 0, dailyTokens: 100_000_000 },
};
const model = (id: string, accountQuota?: ModelSpec['accountQuota']): ModelSpec => ({
  id,
  kind: 'echo',
  inputUsdPerMillion: 0,
  outputUsdPerMillion: 0,
  maxOutputTokens: 1000,
  ...(accountQuota ? { accountQuota } : {}),
});

function describeModelQuotas(backend: string, endpoint: () => string) {
  describe(`model account quotas on ${backend}`, () => {
    /** A fresh table and `n` limiter instances on it, serving `models` (no global limit). */
    async function instances(
      models: ModelSpec[],
      n = 6,
      globalWaitersTtlMs?: number,
      tiers: object = OPEN_TIERS,
    ) {
      const { tables } = await createLocalResources(
        localDynamoClient(endpoint()),
        localSqsClient(inject('sqsEndpoint')),
        `quota-${randomUUID().slice(0, 8)}`,
      );
      const client = localDynamoClient(endpoint());
      const config = parseLimitsConfig({ tiers, models });
      const make = () =>
        new DynamoLimiter({
          client,
          tableName: tables.limits,
          tiers: config.tiers,
          models: config.models,
          global: config.global,
          timeoutMs: 30_000,
          inFlightLeaseMs: 60_000,
          globalWaitersTtlMs,
        });
      /** What the shards hold, summed: an attribute's total over every shard item. */
      const shardSum = async (attr: string) => {
        let sum = 0;
        for (let k = 0; k < config.global!.shards; k++) {
          const got = await client.send(
            new GetItemCommand({ TableName: tables.limits, Key: marshall({ pk: shardKey(k) }) }),
          );
          const value = got.Item ? unmarshall(got.Item)[attr] : undefined;
          sum += typeof value === 'number' ? value : 0;
        }
        return sum;
      };
      return { limiters: Array.from({ length: n }, make), shards: config.global!.shards, shardSum };
    }
    /** 10 tokens in, 90 allowed out. */
    const ask = (userId: string, on: string, over: Partial<DecideInput> = {}): DecideInput => ({
      userId,
      requestId: randomUUID(),
      estimatedInputTokens: 10,
      maxTokens: 90,
      model: on,
      ...over,
    });
    /** `n` decisions at once over 50 users and every instance, on model `on`. */
    const burst = (limiters: DynamoLimiter[], on: string, at = NOW, n = 300) =>
      Promise.all(
        Array.from({ length: n }, (_, i) => limiters[i % limiters.length]!.decide(ask(`u${i % 50}`, on), at)),
      );
    const admitted = (ds: Decision[]) => ds.filter((d): d is AllowedDecision => d.allowed);
    const used = async (limiter: DynamoLimiter, name: string, at = NOW) =>
      (await limiter.status('anyone', undefined, at)).global?.find((g) => g.name === name);

    it('admits exactly 5 requests a minute on a model with a quota of 5 under 300 decisions from 6 instances, then 5 more the next minute', async () => {
      const { limiters, shards } = await instances([model('a', { requestsPerMinute: 5 })]);
      // No global limit: the quota alone makes the shards, four (shares 2 + 1 + 1 + 1).
      expect(shards).toBe(4);
      const decisions = await burst(limiters, 'a');
      expect(admitted(decisions)).toHaveLength(5);
      // The rest are told to come back when the minute ends.
      const refused = decisions.filter((d) => !d.allowed);
      expect(refused).toHaveLength(295);
      expect(new Set(refused.map((d) => (d.allowed ? '' : d.limit)))).toEqual(
        new Set(['global.model.a.requestsPerMinute']),
      );
      expect(refused[0]).toMatchObject({ limit: 'global.model.a.requestsPerMinute', retryAfterMs: 60_000 });
      expect(await used(limiters[0]!, 'global.model.a.requestsPerMinute')).toMatchObject({
        used: 5,
        limit: 5,
        remaining: 0,
        unit: 'requests',
        resetAtEpochMs: NOW + 60_000,
      });
      // Later in the minute, still none.
      expect(admitted(await burst(limiters, 'a', NOW + 30_000))).toHaveLength(0);
      // The next minute opens: 5 more, and no more.
      const next = await burst(limiters, 'a', NOW + 60_000);
      expect(admitted(next)).toHaveLength(5);
      expect(await used(limiters[0]!, 'global.model.a.requestsPerMinute', NOW + 60_000)).toMatchObject({
        used: 5,
        remaining: 0,
      });
    }, 60_000);

    it('reserves input + 5 × the allowance against tokensPerMinute with burndown 5, never overdrawn under a burst, and refunds at settle to the same minute only', async () => {
      const { limiters, shardSum } = await instances([
        model('c', { tokensPerMinute: 4_600, outputTokenBurndown: 5 }),
      ]);
      // Each request counts 10 + 90 × 5 = 460; shares of 4,600 over 4 shards are 1,150: two fit each.
      const first = await burst(limiters, 'c');
      expect(admitted(first)).toHaveLength(8);
      expect(first.find((d) => !d.allowed)).toMatchObject({
        limit: 'global.model.c.tokensPerMinute',
        retryAfterMs: 60_000,
      });
      expect((await used(limiters[0]!, 'global.model.c.tokensPerMinute'))?.used).toBe(8 * 460);
      // Each reply used 10 in and 10 out: 10 + 10 × 5 = 60 counted, 400 back each, in the same minute.
      await Promise.all(
        admitted(first).map((d, i) =>
          limiters[i % 6]!.reconcile(d.reservation, { inputTokens: 10, outputTokens: 10 }, NOW + 1),
        ),
      );
      expect((await used(limiters[0]!, 'global.model.c.tokensPerMinute', NOW + 1))?.used).toBe(8 * 60);
      // What came back is used again, and no more: each shard holds 120, two more of 460 fit its 1,150.
      const second = await burst(limiters, 'c', NOW + 2);
      expect(admitted(second)).toHaveLength(8);
      expect((await used(limiters[0]!, 'global.model.c.tokensPerMinute', NOW + 2))?.used).toBe(
        8 * 60 + 8 * 460,
      );
      // Settled after the minute ended: nothing goes back (the minute it was taken from is over, and
      // a refund goes there or nowhere); the shards still hold what that minute counted.
      await Promise.all(
        admitted(second).map((d, i) =>
          limiters[i % 6]!.reconcile(d.reservation, { inputTokens: 10, outputTokens: 10 }, NOW + 60_001),
        ),
      );
      expect(await shardSum('mqt_c')).toBe(8 * 60 + 8 * 460);
      expect((await used(limiters[0]!, 'global.model.c.tokensPerMinute', NOW + 60_001))?.used).toBe(0);
    }, 60_000);

    it("gives the quota's request and tokens back when the user's own write then refuses (stale belief)", async () => {
      // One message a minute for the user: instance 0 saw it with room, instance 1 then spends it.
      const tight = { ...OPEN_TIERS, free: { messagesPerMinute: 1, burst: 0 } };
      const { limiters } = await instances([model('a', { requestsPerMinute: 5 })], 2, undefined, tight);
      const [stale, other] = limiters as [DynamoLimiter, DynamoLimiter];
      await stale.view('solo', undefined, NOW);
      expect((await other.decide(ask('solo', 'a'), NOW)).allowed).toBe(true);
      // `stale` plans from its belief, takes a shard's share of the quota, its user write fails, it
      // reads, refuses by the user's own limit — and gives the request (and its tokens) back.
      expect(await stale.decide(ask('solo', 'a'), NOW)).toMatchObject({
        allowed: false,
        limit: 'messageRate',
      });
      expect(await used(stale, 'global.model.a.requestsPerMinute')).toMatchObject({ used: 1, remaining: 4 });
    }, 30_000);

    it('a quota on model a does not hold back model b: neither its full minute nor those waiting for it', async () => {
      // Every look at who waits is fresh here (in service, a direct request trusts a second-old view).
      const { limiters } = await instances([model('a', { requestsPerMinute: 5 }), model('b')], 6, 0);
      expect(admitted(await burst(limiters, 'a', NOW, 60))).toHaveLength(5);
      // Model b has no quota: 40 at once all go (13 shares a shard, 4 shards), while a is full.
      expect(admitted(await burst(limiters, 'b', NOW + 1, 40))).toHaveLength(40);
      // A user waits in line for model a's quota (the processor's look at its queued request).
      await limiters[0]!.joinGlobalLine({
        userId: 'waiting-for-a',
        tier: 'free',
        enqueuedAtEpochMs: NOW,
        deadlineEpochMs: NOW + 900_000,
        wakeUp: 'h-a',
        seenAtEpochMs: NOW + 2,
        wakeAtEpochMs: NOW + 60_000,
        limit: 'model.a.requestsPerMinute',
        scope: 'model:a',
      });
      // A direct request on b goes; one on a, in the next minute, waits behind the waiter.
      expect((await limiters[1]!.decide(ask('direct', 'b'), NOW + 3)).allowed).toBe(true);
      expect(await limiters[1]!.decide(ask('direct', 'a'), NOW + 60_000)).toMatchObject({
        allowed: false,
        limit: 'global.model.a.requestsPerMinute',
        retryAfterMs: 1000,
      });
      // The waiter's own turn: its request on a is admitted in the new minute.
      const own = await limiters[2]!.decide(ask('waiting-for-a', 'a'), NOW + 60_001);
      expect(own.allowed).toBe(true);
    }, 60_000);
  });
}

onEveryEmulator(describeModelQuotas);
