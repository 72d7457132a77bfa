import { type AttributeValue, type DynamoDBClient, GetItemCommand } from '@aws-sdk/client-dynamodb';
import { GetQueueAttributesCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { TABLES } from '../core/resources';
import type { HealthProbePort, HealthQueue, HealthTable } from '../services/admin-service';
import { AdapterError } from './errors';

/** The key `health` reads in every table: never written, so the read costs one small GetItem. */
export const HEALTH_PROBE_KEY = 'health#probe';

export interface HealthProbeOptions {
  readonly dynamo: DynamoDBClient;
  readonly sqs: SQSClient;
  readonly tableNames: Readonly<Partial<Record<HealthTable, string>>>;
  readonly queueUrls: Readonly<Partial<Record<HealthQueue, string>>>;
  readonly breakerState: () => 'closed' | 'open';
}

/**
 * `health`'s probes: a GetItem of a key nobody writes per table (any answer, "no item" included,
 * means the table answers) and SQS's own counters per queue. Nothing is scanned or written.
 */
export class StoreHealthProbe implements HealthProbePort {
  constructor(private readonly options: HealthProbeOptions) {}

  async probeTable(table: HealthTable): Promise<void> {
    const name = this.options.tableNames[table];
    if (!name) throw new AdapterError(`no ${table} table configured`);
    const { partitionKey, sortKey } = TABLES[table] as (typeof TABLES)[HealthTable] & {
      sortKey?: { name: string };
    };
    const key: Record<string, AttributeValue> = { [partitionKey.name]: { S: HEALTH_PROBE_KEY } };
    if (sortKey) key[sortKey.name] = { S: HEALTH_PROBE_KEY };
    await this.options.dynamo.send(new GetItemCommand({ TableName: name, Key: key }));
  }

  async queueDepth(queue: HealthQueue): Promise<number> {
    const url = this.options.queueUrls[queue];
    if (!url) throw new AdapterError(`no ${queue} queue configured`);
    const { Attributes } = await this.options.sqs.send(
      new GetQueueAttributesCommand({
        QueueUrl: url,
        AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
      }),
    );
    return (
      Number(Attributes?.ApproximateNumberOfMessages ?? 0) +
      Number(Attributes?.ApproximateNumberOfMessagesNotVisible ?? 0)
    );
  }

  breakerState(): 'closed' | 'open' {
    return this.options.breakerState();
  }
}
