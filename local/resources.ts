import {
  type AttributeDefinition,
  CreateTableCommand,
  DescribeTableCommand,
  type DynamoDBClient,
  ResourceInUseException,
} from '@aws-sdk/client-dynamodb';
import {
  CreateQueueCommand,
  GetQueueAttributesCommand,
  GetQueueUrlCommand,
  QueueNameExists,
  SetQueueAttributesCommand,
  type SQSClient,
  SQSServiceException,
} from '@aws-sdk/client-sqs';
import {
  FUNCTIONS,
  QUEUES,
  type QueueDefinition,
  type QueueKey,
  resourceName,
  TABLES,
  type TableDefinition,
  type TableKey,
} from '../lambda/core/resources';

/** Names of the local tables and URLs of the local queues, keyed like `TABLES` and `QUEUES`. */
export interface LocalResources {
  readonly tables: Record<TableKey, string>;
  readonly queues: Record<QueueKey, { url: string; arn: string }>;
}

/**
 * Creates every table and queue of `lambda/core/resources.ts` if missing (idempotent), named with
 * `prefix` so several stacks or test files can share one emulator. A queue that exists with other
 * attributes (an external emulator from an older run) is brought in line with the stack's. TTL is
 * not configured: the emulators do not expire items, so readers filter expired items themselves.
 */
export async function createLocalResources(
  dynamo: DynamoDBClient,
  sqs: SQSClient,
  prefix = '',
): Promise<LocalResources> {
  const tableEntries = await Promise.all(
    (Object.keys(TABLES) as TableKey[]).map(async (key) => {
      const name = resourceName(prefix, TABLES[key].id);
      await ensureTable(dynamo, name, TABLES[key]);
      return [key, name] as const;
    }),
  );
  // Dead-letter queues first: a queue's redrive policy names its DLQ's ARN.
  const queues = {} as Record<QueueKey, { url: string; arn: string }>;
  const ordered = (Object.keys(QUEUES) as QueueKey[]).sort(
    (a, b) => Number(hasDlq(QUEUES[a])) - Number(hasDlq(QUEUES[b])),
  );
  for (const key of ordered) {
    const def: QueueDefinition = QUEUES[key];
    const dlq = def.deadLetterQueue ? queues[def.deadLetterQueue as QueueKey] : undefined;
    queues[key] = await ensureQueue(sqs, resourceName(prefix, def.name), def, dlq?.arn);
  }
  return { tables: Object.fromEntries(tableEntries) as Record<TableKey, string>, queues };
}

/** The environment variables that tell handlers where the local resources are. */
export function resourceEnvironment(resources: LocalResources): Record<string, string> {
  const env: Record<string, string> = {};
  for (const key of Object.keys(TABLES) as TableKey[]) env[TABLES[key].env] = resources.tables[key];
  for (const key of Object.keys(QUEUES) as QueueKey[]) {
    const def: QueueDefinition = QUEUES[key];
    if (def.env) env[def.env] = resources.queues[key].url;
  }
  return env;
}

/**
 * The visibility timeout the CDK stack gives a queue: the definition's, raised to six times the
 * processor's Timeout as AWS advises for Lambda event sources. It mirrors
 * `lib/constructs/queues.ts` (which computes it there, not in the one definition); the parity test
 * in test/integration/sqs-poller.test.ts compares both with the synthesized template.
 */
export function stackVisibilityTimeoutSeconds(def: QueueDefinition): number {
  return Math.max(def.visibilityTimeoutSeconds, FUNCTIONS.processor.timeoutSeconds * 6);
}

/** The queue's attributes in SQS terms, as the stack sets them. */
export function queueAttributes(def: QueueDefinition, deadLetterArn?: string): Record<string, string> {
  const attributes: Record<string, string> = {
    VisibilityTimeout: String(stackVisibilityTimeoutSeconds(def)),
    MessageRetentionPeriod: String(def.retentionSeconds),
  };
  if (def.fifo) {
    attributes.FifoQueue = 'true';
    attributes.ContentBasedDeduplication = String(def.contentBasedDeduplication);
  }
  if (deadLetterArn && def.maxReceiveCount) {
    attributes.RedrivePolicy = JSON.stringify({
      deadLetterTargetArn: deadLetterArn,
      maxReceiveCount: def.maxReceiveCount,
    });
  }
  return attributes;
}

/**
 * CreateQueue's answer for a taken name with other attributes. SQS is query-compatible, so the SDK
 * names the error after its query-protocol code (`AWS.SimpleQueueService.QueueNameExists` from
 * fauxqs) rather than throwing the `QueueNameExists` class; the JSON `__type` names it exactly.
 */
function isQueueNameExists(err: unknown): boolean {
  if (err instanceof QueueNameExists) return true;
  return (
    err instanceof SQSServiceException &&
    (err as { __type?: string }).__type?.endsWith('#QueueNameExists') === true
  );
}

function hasDlq(def: QueueDefinition): boolean {
  return def.deadLetterQueue !== undefined;
}

async function ensureTable(client: DynamoDBClient, name: string, def: TableDefinition): Promise<void> {
  const keys = [
    def.partitionKey,
    def.sortKey,
    ...(def.globalIndexes ?? []).flatMap((i) => [i.partitionKey, i.sortKey]),
  ];
  const attributes = new Map<string, AttributeDefinition>();
  for (const key of keys)
    if (key) attributes.set(key.name, { AttributeName: key.name, AttributeType: key.type });
  try {
    await client.send(
      new CreateTableCommand({
        TableName: name,
        BillingMode: 'PAY_PER_REQUEST',
        AttributeDefinitions: [...attributes.values()],
        KeySchema: [
          { AttributeName: def.partitionKey.name, KeyType: 'HASH' },
          ...(def.sortKey ? [{ AttributeName: def.sortKey.name, KeyType: 'RANGE' as const }] : []),
        ],
        GlobalSecondaryIndexes: def.globalIndexes?.map((index) => ({
          IndexName: index.indexName,
          KeySchema: [
            { AttributeName: index.partitionKey.name, KeyType: 'HASH' as const },
            ...(index.sortKey ? [{ AttributeName: index.sortKey.name, KeyType: 'RANGE' as const }] : []),
          ],
          Projection:
            index.include?.length === 0
              ? { ProjectionType: 'KEYS_ONLY' as const }
              : index.include
                ? { ProjectionType: 'INCLUDE' as const, NonKeyAttributes: [...index.include] }
                : { ProjectionType: 'ALL' as const },
        })),
      }),
    );
  } catch (err) {
    if (!(err instanceof ResourceInUseException)) throw err;
  }
  await waitForActive(client, name);
}

async function waitForActive(client: DynamoDBClient, name: string): Promise<void> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const { Table } = await client.send(new DescribeTableCommand({ TableName: name }));
    if (Table?.TableStatus === 'ACTIVE') return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`table ${name} did not become ACTIVE`);
}

async function ensureQueue(
  client: SQSClient,
  name: string,
  def: QueueDefinition,
  deadLetterArn: string | undefined,
): Promise<{ url: string; arn: string }> {
  const attributes = queueAttributes(def, deadLetterArn);
  let QueueUrl: string | undefined;
  try {
    ({ QueueUrl } = await client.send(new CreateQueueCommand({ QueueName: name, Attributes: attributes })));
  } catch (err) {
    if (!isQueueNameExists(err)) throw err;
    // Same name, other attributes: make it the stack's queue (FifoQueue cannot change, and matches).
    ({ QueueUrl } = await client.send(new GetQueueUrlCommand({ QueueName: name })));
    const { FifoQueue: _fifo, ...settable } = attributes;
    await client.send(new SetQueueAttributesCommand({ QueueUrl, Attributes: settable }));
  }
  if (!QueueUrl) throw new Error(`queue ${name} has no URL`);
  const { Attributes } = await client.send(
    new GetQueueAttributesCommand({ QueueUrl, AttributeNames: ['QueueArn'] }),
  );
  const arn = Attributes?.QueueArn;
  if (!arn) throw new Error(`queue ${name} has no ARN`);
  return { url: QueueUrl, arn };
}
