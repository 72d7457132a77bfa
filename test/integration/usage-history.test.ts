import { randomUUID } from 'node:crypto';
import { DynamoDBClient, GetItemCommand, QueryCommand } from '@aws-sdk/client-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { DynamoLimiter } from '../../lambda/adapters/dynamo-limiter';
import { parseTierLimits } from '../../lambda/core/limiter/policy';
import { LOCAL_CREDENTIALS, LOCAL_REGION, localDynamoClient, localSqsClient } from '../../local/aws-clients';
import { createLocalResources } from '../../local/resources';
import { type DynamoProxy, startDynamoProxy } from '../support/dynamo-proxy';
import { itemSizeBytes } from '../support/item-size';

const DAY = 86_400_000;
const DAY_ONE = Date.UTC(2026, 10, 24, 10, 0, 0);
const tiers = parseTierLimits({ tiers: { free: { dailyTokens: 10_000 } } });

/**
 * The 35-day usage history out of the user's item (issue 22): the admission that closes a day holds
 * it in the item, the store writes it once to a history item (Requests table), and the next day that
 * closes writes it again — so a history write lost to a crash or a lost answer is repaired.
 */
describe('usage history in history items', () => {
  const endpoint = () => inject('dynamodbEndpoint');
  let limitsTable: string;
  let requestsTable: string;
  let proxy: DynamoProxy;
  const errors: string[] = [];
  const limiter = () =>
    new DynamoLimiter({
      // One attempt per call, as the runtime builds the limiter's client: the limiter sees each fault.
      client: new DynamoDBClient({
        endpoint: proxy.endpoint,
        region: LOCAL_REGION,
        credentials: LOCAL_CREDENTIALS,
        maxAttempts: 1,
      }),
      tableName: limitsTable,
      historyTableName: requestsTable,
      onHistoryError: (cause) => errors.push(cause),
      tiers,
      timeoutMs: 5_000,
    });
  const ask = (userId: string) => ({
    userId,
    requestId: randomUUID(),
    estimatedInputTokens: 10,
    maxTokens: 40,
  });
  const rawItem = async (user: string) => {
    const { Item } = await localDynamoClient(endpoint()).send(
      new GetItemCommand({
        TableName: limitsTable,
        Key: { pk: { S: `user#${user}` } },
        ConsistentRead: true,
      }),
    );
    return Item;
  };
  const historyDates = async (user: string) => {
    const { Items } = await localDynamoClient(endpoint()).send(
      new QueryCommand({
        TableName: requestsTable,
        KeyConditionExpression: 'pk = :pk',
        ExpressionAttributeValues: { ':pk': { S: `usage#${user}` } },
      }),
    );
    return (Items ?? []).map((i) => unmarshall(i).sk as string);
  };

  beforeAll(async () => {
    const resources = await createLocalResources(
      localDynamoClient(endpoint()),
      localSqsClient(inject('sqsEndpoint')),
      `history-${randomUUID().slice(0, 8)}`,
    );
    limitsTable = resources.tables.limits;
    requestsTable = resources.tables.requests;
    proxy = await startDynamoProxy(endpoint());
  });
  afterEach(() => {
    proxy.clear();
    errors.length = 0;
  });
  afterAll(async () => {
    await proxy.stop();
  });

  it('keeps the user item the same size day after day, and reads 35 days back in one Query', async () => {
    const user = `u-${randomUUID()}`;
    const l = limiter();
    const sizes: number[] = [];
    for (let d = 0; d < 40; d++) {
      expect((await l.decide(ask(user), DAY_ONE + d * DAY)).allowed).toBe(true);
      sizes.push(itemSizeBytes((await rawItem(user))!));
    }
    // Day one holds no closed day yet; from day two on the item holds exactly one (`hd`, ~25
    // bytes) and no more: its size moves only with the digits of its numbers (320–327 bytes).
    expect(sizes[0]).toBeLessThan(300);
    expect(Math.max(...sizes.slice(1))).toBeLessThan(330);
    const last = unmarshall((await rawItem(user))!);
    expect(last.hist).toBeUndefined();
    expect(last.hd).toEqual({ d: 20819, t: 50, c: 26, m: 1, q: 0 });
    expect(await historyDates(user)).toHaveLength(39);
    proxy.reset();
    const history = (await limiter().status(user, undefined, DAY_ONE + 39 * DAY, { history: true })).history!;
    expect(proxy.calls()).toEqual({ GetItem: 1, Query: 1 });
    expect(history).toHaveLength(35);
    expect(history.every((d) => d.messages === 1 && d.tokens === 50)).toBe(true);
    expect(history.at(-1)!.date).toBe('2027-01-02');
    // What it costs in calls: one PutItem once per user and day, with the day's first admission.
    proxy.reset();
    expect((await l.decide(ask(user), DAY_ONE + 39 * DAY + 1)).allowed).toBe(true);
    expect(proxy.calls()).toEqual({ UpdateItem: 1 });
    proxy.reset();
    expect((await l.decide(ask(user), DAY_ONE + 40 * DAY)).allowed).toBe(true);
    expect(proxy.calls()).toEqual({ UpdateItem: 1, PutItem: 1 });
    expect(errors).toEqual([]);
  }, 60_000);

  it('writes a day whose history write failed (a crash between the two steps) with the next day that closes', async () => {
    const user = `u-${randomUUID()}`;
    const l = limiter();
    expect((await l.decide(ask(user), DAY_ONE)).allowed).toBe(true);
    // Day two's admission lands; the history write of day one does not.
    proxy.inject((op, body) => op === 'PutItem' && body.includes(`usage#${user}`), { kind: 'throttle' });
    expect((await l.decide(ask(user), DAY_ONE + DAY)).allowed).toBe(true);
    expect(proxy.faulted().throttle).toBe(1);
    expect(errors).toHaveLength(1);
    proxy.clear();
    expect(await historyDates(user)).toEqual([]);
    // Meanwhile the day is read from the item.
    const meanwhile = (await limiter().status(user, undefined, DAY_ONE + DAY, { history: true })).history!;
    expect(meanwhile.slice(-2).map((d) => d.messages)).toEqual([1, 1]);
    // Day three closes day two; its history item carries day one too.
    expect((await l.decide(ask(user), DAY_ONE + 2 * DAY)).allowed).toBe(true);
    expect((await l.decide(ask(user), DAY_ONE + 3 * DAY)).allowed).toBe(true);
    expect(await historyDates(user)).toEqual(['2026-11-25', '2026-11-26']);
    const history = (await limiter().status(user, undefined, DAY_ONE + 3 * DAY, { history: true })).history!;
    expect(history.slice(-4).map((d) => [d.date, d.messages, d.tokens])).toEqual([
      ['2026-11-24', 1, 50],
      ['2026-11-25', 1, 50],
      ['2026-11-26', 1, 50],
      ['2026-11-27', 1, 50],
    ]);
  }, 30_000);

  it('writes the day a rolling admission closed when that admission landed but its answer was lost', async () => {
    const user = `u-${randomUUID()}`;
    const l = limiter();
    expect((await l.decide(ask(user), DAY_ONE)).allowed).toBe(true);
    expect((await l.decide(ask(user), DAY_ONE + 1)).allowed).toBe(true);
    // The write that closes day one lands and its answer is lost: the decision recovers it from
    // its marker, and no history write follows it.
    let rolls = 0;
    proxy.inject(
      (op, body) =>
        op === 'UpdateItem' && body.includes(`user#${user}`) && body.includes('"hd"') && rolls++ === 0,
      { kind: 'drop-answer' },
    );
    expect((await l.decide(ask(user), DAY_ONE + DAY)).allowed).toBe(true);
    expect(proxy.faulted()['drop-answer']).toBe(1);
    proxy.clear();
    expect(await historyDates(user)).toEqual([]);
    expect((await l.decide(ask(user), DAY_ONE + 2 * DAY)).allowed).toBe(true);
    const history = (await limiter().status(user, undefined, DAY_ONE + 2 * DAY, { history: true })).history!;
    expect(history.slice(-3).map((d) => [d.date, d.messages, d.tokens])).toEqual([
      ['2026-11-24', 2, 100],
      ['2026-11-25', 1, 50],
      ['2026-11-26', 1, 50],
    ]);
  }, 30_000);
});
