import { randomUUID } from 'node:crypto';
import {
  ConditionalCheckFailedException,
  type DynamoDBClient,
  PutItemCommand,
  UpdateItemCommand,
} from '@aws-sdk/client-dynamodb';
import { marshall, unmarshall } from '@aws-sdk/util-dynamodb';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import type { UpdatePlan } from '../../lambda/core/limiter/expression';
import { MODEL_QUOTA_REQUESTS_PREFIX } from '../../lambda/core/limiter/item/attributes';
import { parseLimitsConfig } from '../../lambda/core/limiter/policy';
import { localDynamoClient, localSqsClient } from '../../local/aws-clients';
import { createLocalResources } from '../../local/resources';
import { simulate } from '../../local/simulate/engine';
import { applyPlan } from '../../local/simulate/memory-item';
import { parseTraffic } from '../../local/simulate/traffic';
import { onEveryEmulator } from '../support/dynamodb-local';

const T0 = Date.UTC(2026, 0, 5, 12, 0, 0);

/**
 * Traffic that makes every kind of write: admissions (direct and replayed), enqueues, expiries,
 * settles with refunds and charges, global and team shard shares taken, released and given back
 * whole (a team refusal), a model quota counted and refunded, budget marks.
 */
function traffic(): string {
  const lines: string[] = [];
  const users = ['a', 'b', 'c'];
  for (let i = 0; i < 24; i++) {
    lines.push(
      JSON.stringify({
        at: new Date(T0 + i * 150).toISOString(),
        userId: users[i % 3],
        tier: i % 3 === 2 ? 'pro' : 'free',
        ...(i % 3 === 2 ? {} : { team: 'x' }),
        inputTokens: 40 + i,
        outputTokens: 30 + 7 * i,
      }),
    );
  }
  return lines.join('\n');
}

const LIMITS = parseLimitsConfig({
  tiers: {
    free: { messagesPerMinute: 3, burst: 1, dailyTokens: 2_000, defaultMaxOutputTokens: 200 },
    pro: { requestsInFlight: 1, dailyCostUsd: 1 },
  },
  models: [
    {
      id: 'echo',
      kind: 'echo',
      inputUsdPerMillion: 0.2,
      outputUsdPerMillion: 0.6,
      maxOutputTokens: 4096,
      accountQuota: { requestsPerMinute: 8, tokensPerMinute: 4_000, outputTokenBurndown: 2 },
    },
  ],
  global: { requestsInFlight: 4, hourlyMessages: 40, dailyTokens: 6_000, shards: 2 },
  teams: { x: { requestsInFlight: 1, hourlyMessages: 12 } },
});

/**
 * The simulator's in-memory store executes the limiter's UpdateItem plans itself
 * (local/simulate/memory-item.ts). Here every write it applied is sent, in the same order, to a
 * real DynamoDB emulator: each must pass its condition there too, and leave the same item.
 */
onEveryEmulator((backend, endpoint) => {
  describe(`the simulator's store against ${backend}`, () => {
    let client: DynamoDBClient;
    let tableName: string;

    beforeAll(async () => {
      client = localDynamoClient(endpoint());
      const resources = await createLocalResources(
        client,
        localSqsClient(inject('sqsEndpoint')),
        `simulate-${randomUUID().slice(0, 8)}`,
      );
      tableName = resources.tables.limits;
    });

    it('every write lands on DynamoDB as it did in memory and leaves the same item; sent again, both stores agree', async () => {
      const writes: { key: string; plan: UpdatePlan; after: Record<string, unknown> }[] = [];
      const result = simulate(parseTraffic(traffic()), LIMITS, {
        maxQueueWaitSeconds: 30,
        onWrite: (key, plan, after) => writes.push({ key, plan, after: structuredClone(after) }),
      });
      // The run made each kind of write this test means to check.
      expect(result.admitted.afterQueueing).toBeGreaterThan(0);
      expect(writes.some((w) => w.key.startsWith('global#'))).toBe(true);
      expect(writes.some((w) => w.key.startsWith('team#x#'))).toBe(true);
      const quotaCounted = (w: (typeof writes)[number]) =>
        Object.keys(w.after).some((name) => name.startsWith(MODEL_QUOTA_REQUESTS_PREFIX));
      expect(writes.some((w) => w.key.startsWith('global#') && quotaCounted(w))).toBe(true);
      expect(writes.length).toBeGreaterThan(40);
      const prefix = `-${randomUUID().slice(0, 6)}`;
      const send = (pk: string, plan: UpdatePlan) =>
        client.send(
          new UpdateItemCommand({
            TableName: tableName,
            Key: marshall({ pk }),
            UpdateExpression: plan.update,
            ConditionExpression: plan.condition || undefined,
            ExpressionAttributeNames: plan.names,
            ...(Object.keys(plan.values).length > 0
              ? {
                  ExpressionAttributeValues: marshall(plan.values, {
                    removeUndefinedValues: true,
                    convertClassInstanceToMap: true,
                  }),
                }
              : {}),
            ReturnValues: 'ALL_NEW',
          }),
        );
      let failedTwice = 0;
      for (const [i, { key, plan, after }] of writes.entries()) {
        const pk = `${key}${prefix}`;
        const answer = await send(pk, plan);
        const { pk: _pk, ...stored } = unmarshall(answer.Attributes ?? {});
        expect({ write: i, item: stored }).toEqual({ write: i, item: after });
        // The same write again, on the item it left: both stores agree whether its condition
        // holds now (most fail: a marker it sets must not exist), and on the item if it does.
        const again = structuredClone(after);
        const appliedInMemory = applyPlan(again, plan);
        // On a copy of the item, so the sequence itself goes on from the item the write left.
        const copy = `${pk}#again`;
        await client.send(
          new PutItemCommand({
            TableName: tableName,
            Item: marshall({ ...after, pk: copy }, { removeUndefinedValues: true }),
          }),
        );
        const appliedInDynamo = await send(copy, plan).then(
          (a) => unmarshall(a.Attributes ?? {}),
          (err: unknown) => {
            if (err instanceof ConditionalCheckFailedException) return undefined;
            throw err;
          },
        );
        expect({ write: i, applied: appliedInMemory }).toEqual({
          write: i,
          applied: appliedInDynamo !== undefined,
        });
        if (appliedInDynamo) {
          const { pk: _again, ...twice } = appliedInDynamo;
          expect({ write: i, twice }).toEqual({ write: i, twice: again });
          failedTwice--;
        }
        failedTwice++;
      }
      // The second sends that fail their condition are most of them: the false side is checked too.
      expect(failedTwice).toBeGreaterThan(writes.length / 2);
    }, 120_000);
  });
});
