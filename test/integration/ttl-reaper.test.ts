import { GetItemCommand, PutItemCommand, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { marshall } from '@aws-sdk/util-dynamodb';
import { describe, expect, it } from 'vitest';
import { TABLES, TTL_ATTRIBUTE } from '../../lambda/core/resources';
import { localDynamoClient } from '../../local/aws-clients';
import { startTtlReaper } from '../../local/ttl-reaper';
import { createTestResources } from '../support/emulators';

const T0 = Date.parse('2026-01-31T23:59:50Z');
const seconds = (ms: number) => Math.floor(ms / 1000);

/** DynamoDB TTL on the local stack: the reaper, on an injected clock, against dynalite. */
describe('startTtlReaper (DynamoDB TTL for the emulators)', () => {
  async function setup() {
    const res = await createTestResources('ttl');
    let nowMs = T0;
    const reaper = startTtlReaper({
      dynamo: res.dynamo,
      tables: [
        { name: res.tables.limits, definition: TABLES.limits },
        { name: res.tables.requests, definition: TABLES.requests },
      ],
      clock: () => nowMs,
      intervalMs: 3_600_000, // sweeps only when the test asks
    });
    const put = (table: string, item: Record<string, unknown>) =>
      res.dynamo.send(new PutItemCommand({ TableName: table, Item: marshall(item) }));
    const exists = async (table: string, key: Record<string, unknown>) =>
      (
        await res.dynamo.send(
          new GetItemCommand({ TableName: table, Key: marshall(key), ConsistentRead: true }),
        )
      ).Item !== undefined;
    return {
      res,
      reaper,
      put,
      exists,
      advance: (ms: number) => {
        nowMs += ms;
      },
    };
  }

  it('deletes items whose TTL has passed on the stack’s clock, and only those', async () => {
    const { res, reaper, put, exists, advance } = await setup();
    const limits = res.tables.limits;
    await put(limits, { pk: 'user#idle', [TTL_ATTRIBUTE]: seconds(T0) + 2 * 86_400 });
    await put(limits, { pk: 'user#soon', [TTL_ATTRIBUTE]: seconds(T0) + 60 });
    await put(limits, { pk: 'user#policy' }); // no TTL: never expires
    await put(limits, { pk: 'user#text', [TTL_ATTRIBUTE]: String(seconds(T0) - 10) }); // not a Number: ignored
    await put(limits, { pk: 'user#ancient', [TTL_ATTRIBUTE]: seconds(T0) - 6 * 365 * 86_400 }); // > 5 years: ignored
    await put(res.tables.requests, { pk: 'reply#a', sk: 'part#1', [TTL_ATTRIBUTE]: seconds(T0) + 60 });

    expect(await reaper.sweep()).toBe(0);
    advance(61_000);
    expect(await reaper.sweep()).toBe(2);
    expect(await exists(limits, { pk: 'user#soon' })).toBe(false);
    expect(await exists(res.tables.requests, { pk: 'reply#a', sk: 'part#1' })).toBe(false);
    expect(await exists(limits, { pk: 'user#idle' })).toBe(true);

    advance(3 * 86_400_000); // `npm run admin -- clock --advance 3d`
    expect(await reaper.sweep()).toBe(1);
    expect(await exists(limits, { pk: 'user#idle' })).toBe(false);
    for (const pk of ['user#policy', 'user#text', 'user#ancient'])
      expect(await exists(limits, { pk })).toBe(true);
    await reaper.stop();
  });

  it('keeps an item written again between the scan and the delete (its TTL is no longer the one that passed)', async () => {
    const { res, reaper, put, exists, advance } = await setup();
    const limits = res.tables.limits;
    await put(limits, { pk: 'user#busy', [TTL_ATTRIBUTE]: seconds(T0) + 10 });
    // A decision lands just before the reaper's delete: it renews the item's TTL.
    const writer = localDynamoClient(res.dynamodbEndpoint);
    res.dynamo.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName === 'DeleteItemCommand')
          await writer.send(
            new UpdateItemCommand({
              TableName: limits,
              Key: marshall({ pk: 'user#busy' }),
              UpdateExpression: 'SET #ttl = :ttl',
              ExpressionAttributeNames: { '#ttl': TTL_ATTRIBUTE },
              ExpressionAttributeValues: marshall({ ':ttl': seconds(T0) + 2 * 86_400 }),
            }),
          );
        return next(args);
      },
      { step: 'initialize', name: 'renewBeforeDelete' },
    );
    advance(11_000);
    expect(await reaper.sweep()).toBe(0);
    expect(await exists(limits, { pk: 'user#busy' })).toBe(true);
    await reaper.stop();
  });
});
