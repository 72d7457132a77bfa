import { randomUUID } from 'node:crypto';
import { GetItemCommand, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import { beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { DynamoLimiter } from '../../lambda/adapters/dynamo-limiter';
import { parseTierLimits } from '../../lambda/core/limiter/policy';
import { type AdminDeps, AdminService } from '../../lambda/services/admin-service';
import { localDynamoClient, localSqsClient } from '../../local/aws-clients';
import { createLocalResources } from '../../local/resources';

const NOW = Date.UTC(2026, 0, 16, 0, 0, 10);

/**
 * `purge-queue` and `reset` end an active request that can no longer settle (issue 20, finding 4:
 * its reservation marker was dropped when a new day opened, and every later delivery stopped at
 * it, so the user's queue was stuck for good), on dynalite with the real limiter.
 */
describe('AdminService with a stuck active request', () => {
  let tableName: string;
  const client = () => localDynamoClient(inject('dynamodbEndpoint'));

  beforeAll(async () => {
    const resources = await createLocalResources(
      client(),
      localSqsClient(inject('sqsEndpoint')),
      `admin-stuck-${randomUUID().slice(0, 8)}`,
    );
    tableName = resources.tables.limits;
  });

  const setUp = async () => {
    const limiter = new DynamoLimiter({ client: client(), tableName, tiers: parseTierLimits({}) });
    const userId = `u-${randomUUID()}`;
    await limiter.enqueue(
      {
        userId,
        requestId: 'stuck',
        connectionId: 'c',
        contentKey: 'k',
        estimatedInputTokens: 10,
        enqueuedAtEpochMs: NOW,
        expiresAtEpochMs: NOW + 60_000,
      },
      10,
      NOW,
    );
    const started = await limiter.decide(
      {
        userId,
        requestId: 'stuck',
        estimatedInputTokens: 10,
        queue: { mode: 'replay', leaseUntilEpochMs: NOW + 960_000 },
      },
      NOW,
    );
    expect(started.allowed).toBe(true);
    // What the first admission of a new day used to do: drop the marker of a request still running.
    await client().send(
      new UpdateItemCommand({
        TableName: tableName,
        Key: { pk: { S: `user#${userId}` } },
        UpdateExpression: 'REMOVE r_stuck',
      }),
    );
    const unused = {} as never;
    const deps: AdminDeps = {
      limiter,
      store: unused,
      sender: unused,
      directory: unused,
      health: unused,
      log: { info: vi.fn(), warn: vi.fn(), error: vi.fn() },
      now: () => NOW + 1_000,
    };
    return { admin: new AdminService(deps), userId };
  };
  const itemOf = async (userId: string) => {
    const { Item } = await client().send(
      new GetItemCommand({
        TableName: tableName,
        Key: { pk: { S: `user#${userId}` } },
        ConsistentRead: true,
      }),
    );
    return unmarshall(Item!);
  };

  it('ends it on purge-queue, with its data and its in-flight slot', async () => {
    const { admin, userId } = await setUp();
    expect(await admin.run({ operation: 'purge-queue', userId })).toMatchObject({
      purged: [],
      endedActive: 'stuck',
    });
    const item = await itemOf(userId);
    expect(item.act).toBeUndefined();
    expect(item.q_stuck).toBeUndefined();
    expect(item.fl).toEqual({});
  });

  it('ends it on reset', async () => {
    const { admin, userId } = await setUp();
    expect(await admin.run({ operation: 'reset', userId, scope: 'tokens' })).toMatchObject({
      endedActive: 'stuck',
    });
    expect((await itemOf(userId)).act).toBeUndefined();
  });
});
