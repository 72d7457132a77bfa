import { DescribeTableCommand } from '@aws-sdk/client-dynamodb';
import { GetQueueAttributesCommand } from '@aws-sdk/client-sqs';
import { describe, expect, it } from 'vitest';
import { QUEUES, TABLES } from '../../lambda/core/resources';
import { createLocalResources } from '../../local/resources';
import { createTestResources } from '../support/emulators';

describe('createLocalResources', () => {
  it('creates every table with the key schema of the one definition', async () => {
    const res = await createTestResources('resources');
    const { Table } = await res.dynamo.send(new DescribeTableCommand({ TableName: res.tables.connections }));
    expect(Table?.KeySchema).toEqual([
      { AttributeName: TABLES.connections.partitionKey.name, KeyType: 'HASH' },
    ]);
    expect(Table?.GlobalSecondaryIndexes?.[0]?.IndexName).toBe('byUser');
    const requests = await res.dynamo.send(new DescribeTableCommand({ TableName: res.tables.requests }));
    expect(requests.Table?.KeySchema?.map((k) => k.AttributeName)).toEqual(['pk', 'sk']);
  });

  it('creates the FIFO queue with a redrive policy to the FIFO dead-letter queue', async () => {
    const res = await createTestResources('resources');
    const { Attributes } = await res.sqs.send(
      new GetQueueAttributesCommand({ QueueUrl: res.queues.requests.url, AttributeNames: ['All'] }),
    );
    expect(Attributes?.FifoQueue).toBe('true');
    const redrive = JSON.parse(Attributes?.RedrivePolicy ?? '{}');
    expect(redrive.deadLetterTargetArn).toBe(res.queues.dlq.arn);
    expect(Number(redrive.maxReceiveCount)).toBe(QUEUES.requests.maxReceiveCount);
  });

  it('is idempotent: a second run finds the same resources', async () => {
    const res = await createTestResources('resources');
    const prefix = res.tables.limits.replace(/-Limits$/, '');
    const again = await createLocalResources(res.dynamo, res.sqs, prefix);
    expect(again.tables).toEqual(res.tables);
    expect(again.queues.requests.url).toBe(res.queues.requests.url);
  });
});
