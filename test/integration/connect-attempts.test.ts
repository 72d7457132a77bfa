import { randomUUID } from 'node:crypto';
import { GetItemCommand } from '@aws-sdk/client-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { ConnectAttempts } from '../../lambda/adapters/connect-attempts';
import { localDynamoClient, localSqsClient } from '../../local/aws-clients';
import { createLocalResources } from '../../local/resources';

const NOW = Date.UTC(2026, 10, 24, 10, 0, 0);

/** The `$connect` bucket on the embedded DynamoDB emulator: same item, same math as before. */
describe('ConnectAttempts', () => {
  const client = localDynamoClient(inject('dynamodbEndpoint'));
  let tableName: string;
  const attempts = () => new ConnectAttempts({ client, tableName, timeoutMs: 30_000 });
  const address = () => `10.${Math.floor(Math.random() * 255)}.${Math.floor(Math.random() * 255)}.7`;

  beforeAll(async () => {
    const resources = await createLocalResources(
      client,
      localSqsClient(inject('sqsEndpoint')),
      `connect-${randomUUID().slice(0, 8)}`,
    );
    tableName = resources.tables.limits;
  });

  it('admits perMinute attempts of one address, then tells when the next one may come', async () => {
    const ip = address();
    const bucket = attempts();
    const results = [];
    for (let i = 0; i < 6; i++) results.push(await bucket.consume(ip, 5, NOW));
    expect(results.map((r) => r.allowed)).toEqual([true, true, true, true, true, false]);
    // One attempt refills every 12 s; the sixth may come when the first one has.
    expect(results[5]?.retryAfterMs).toBe(12_000);
    expect(await bucket.consume(ip, 5, NOW + 12_000)).toEqual({ allowed: true, retryAfterMs: 0 });
  });

  it('keeps the bucket in the ip#<addr> item of the limits table, with a TTL', async () => {
    const ip = address();
    await attempts().consume(ip, 20, NOW);
    const { Item } = await client.send(
      new GetItemCommand({ TableName: tableName, Key: { pk: { S: `ip#${ip}` } }, ConsistentRead: true }),
    );
    expect(unmarshall(Item!)).toEqual({
      pk: `ip#${ip}`,
      tat: NOW + 3000,
      ttlEpochSeconds: NOW / 1000 + 3600,
    });
  });

  it('admits exactly the bucket under 40 racing attempts from several instances', async () => {
    const ip = address();
    const instances = Array.from({ length: 4 }, attempts);
    const results = await Promise.all(
      Array.from({ length: 40 }, (_, i) => instances[i % instances.length]!.consume(ip, 10, NOW)),
    );
    expect(results.filter((r) => r.allowed)).toHaveLength(10);
  }, 30_000);

  it('keeps addresses apart', async () => {
    const [a, b] = [address(), address()];
    const bucket = attempts();
    for (let i = 0; i < 2; i++) await bucket.consume(a, 2, NOW);
    expect((await bucket.consume(a, 2, NOW)).allowed).toBe(false);
    expect((await bucket.consume(b, 2, NOW)).allowed).toBe(true);
  });
});
