import { randomUUID } from 'node:crypto';
import { GetItemCommand } from '@aws-sdk/client-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { DynamoLimiter } from '../../lambda/adapters/dynamo-limiter';
import type { AllowedDecision } from '../../lambda/core/limiter/decision';
import { userKey } from '../../lambda/core/limiter/item/attributes';
import { parseTierLimits } from '../../lambda/core/limiter/policy';
import { localDynamoClient, localSqsClient } from '../../local/aws-clients';
import { createLocalResources } from '../../local/resources';
import { onEveryEmulator } from '../support/dynamodb-local';

const NOW = Date.UTC(2026, 11, 3, 10, 0, 0);
const DAY = 86_400_000;
const tiers = parseTierLimits({
  tiers: {
    free: { dailyMessages: 3, dailyTokens: 1_000, messagesPerMinute: 100, defaultMaxOutputTokens: 40 },
  },
});

/**
 * SPEC §9.5 / issue 23 item 6: `reset` frees the limits and never rewrites the accounting —
 * `top`, `usage` history and the history a day's rollover writes keep what was used.
 */
onEveryEmulator((backend, endpoint) => {
  describe(`reset on ${backend}`, () => {
    let tableName: string;
    const limiter = () =>
      new DynamoLimiter({ client: localDynamoClient(endpoint()), tableName, tiers, timeoutMs: 30_000 });
    const ask = (userId: string) => ({ userId, requestId: randomUUID(), estimatedInputTokens: 10 });
    const used = async (l: DynamoLimiter, userId: string, name: string, at: number) =>
      (await l.status(userId, undefined, at)).limits.find((x) => x.name === name)?.used;
    /** One message answered with 10 input and 5 output tokens: 15 tokens used. */
    const chat = async (l: DynamoLimiter, userId: string, at: number) => {
      const decision = await l.decide(ask(userId), at);
      if (!decision.allowed) return decision.limit;
      await l.reconcile((decision as AllowedDecision).reservation, { inputTokens: 10, outputTokens: 5 }, at);
      return 'ok';
    };

    beforeAll(async () => {
      const resources = await createLocalResources(
        localDynamoClient(endpoint()),
        localSqsClient(inject('sqsEndpoint')),
        `reset-${randomUUID().slice(0, 8)}`,
      );
      tableName = resources.tables.limits;
    });

    it('frees the daily limits while top, the history and the next rollover keep what was used', async () => {
      const l = limiter();
      const user = `u-${randomUUID()}`;
      expect([await chat(l, user, NOW), await chat(l, user, NOW + 1), await chat(l, user, NOW + 2)]).toEqual([
        'ok',
        'ok',
        'ok',
      ]);
      expect(await chat(l, user, NOW + 3)).toBe('dailyMessages');

      await limiter().reset(user, 'all', NOW + 4);
      // The limits are whole again…
      expect(await used(l, user, 'dailyMessages', NOW + 5)).toBe(0);
      expect(await used(l, user, 'dailyTokens', NOW + 5)).toBe(0);
      // …and what was used is still what was used.
      const today = (await l.status(user, undefined, NOW + 5)).history?.slice(-1);
      expect(today).toMatchObject([{ date: '2026-12-03', messages: 3, tokens: 45 }]);
      expect((await l.top('messages', 10, NOW + 5)).users.find((u) => u.userId === user)).toEqual({
        userId: user,
        tokens: 45,
        costUsd: 0.000015,
        messages: 3,
      });

      // Three more messages fit the freed quota, the fourth does not: the limit counts after the reset.
      for (let i = 0; i < 3; i++) expect(await chat(l, user, NOW + 10 + i)).toBe('ok');
      expect(await chat(l, user, NOW + 20)).toBe('dailyMessages');
      expect(await used(l, user, 'dailyTokens', NOW + 21)).toBe(45);
      expect((await l.top('tokens', 10, NOW + 21)).users.find((u) => u.userId === user)).toMatchObject({
        tokens: 90,
        messages: 6,
      });

      // The next day starts from nothing, and the day that closed goes to history whole.
      expect(await chat(l, user, NOW + DAY)).toBe('ok');
      expect(await used(l, user, 'dailyMessages', NOW + DAY)).toBe(1);
      const history = (await l.status(user, undefined, NOW + DAY)).history?.slice(-2);
      expect(history).toMatchObject([
        { date: '2026-12-03', messages: 6, tokens: 90 },
        { date: '2026-12-04', messages: 1, tokens: 15 },
      ]);
      const { Item } = await localDynamoClient(endpoint()).send(
        new GetItemCommand({ TableName: tableName, Key: { pk: { S: userKey(user) } } }),
      );
      const item = unmarshall(Item ?? {});
      // What the reset freed belonged to the day that ended.
      expect([item.dcf, item.tuf, item.cuf]).toEqual([undefined, undefined, undefined]);
    });

    it('frees only the scope it is given', async () => {
      const l = limiter();
      const user = `u-${randomUUID()}`;
      for (let i = 0; i < 2; i++) await chat(l, user, NOW + i);
      await l.reset(user, 'tokens', NOW + 5);
      expect(await used(l, user, 'dailyTokens', NOW + 6)).toBe(0);
      expect(await used(l, user, 'dailyMessages', NOW + 6)).toBe(2);
      expect((await l.top('tokens', 10, NOW + 6)).users.find((u) => u.userId === user)).toMatchObject({
        tokens: 30,
        messages: 2,
      });
    });
  });
});
