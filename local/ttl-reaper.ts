import {
  type AttributeValue,
  ConditionalCheckFailedException,
  DeleteItemCommand,
  type DynamoDBClient,
  ScanCommand,
} from '@aws-sdk/client-dynamodb';
import type { Clock } from '../lambda/core/clock';
import type { TableDefinition } from '../lambda/core/resources';

/** A table the reaper watches: its local name and its definition (keys, TTL attribute). */
export interface ReapedTable {
  readonly name: string;
  readonly definition: TableDefinition;
}

export interface TtlReaperOptions {
  readonly dynamo: DynamoDBClient;
  /** Tables whose definition declares a `ttlAttribute`; the others are skipped. */
  readonly tables: readonly ReapedTable[];
  /** The stack's clock: an item expires when its TTL is at or before this clock's second. */
  readonly clock: Clock;
  /**
   * Time between sweeps (AWS: best effort, typically within two days); 0: no timer, sweeps only
   * when {@link TtlReaper.sweep} is called (tests). @default 2_000
   */
  readonly intervalMs?: number;
  readonly onError?: (err: unknown) => void;
}

export interface TtlReaper {
  /** One sweep of every table now; resolves with how many items it deleted. */
  sweep(): Promise<number>;
  stop(): Promise<void>;
}

/**
 * DynamoDB's Time to Live, which the emulators lack (dynalite does not implement it): a background
 * process deletes the items whose TTL attribute — a Number, epoch seconds — is before the current
 * time (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/howitworks-ttl.html).
 * AWS deletes within days; locally a sweep every few seconds, on the stack's clock, so that
 * `npm run admin -- clock --advance 3d` expires what three days would in AWS.
 *
 * As in AWS, an expired item stays readable until it is deleted (readers filter it themselves),
 * an attribute that is not a Number is ignored, and so is an expiry more than five years past
 * (AWS's rule for values that are likely milliseconds or mistakes).
 */
export function startTtlReaper(options: TtlReaperOptions): TtlReaper {
  const tables = options.tables.filter((t) => t.definition.ttlAttribute !== undefined);
  let running: Promise<number> | undefined;
  let stopped = false;
  // Stopping aborts a sweep in flight: a store that hangs must not hang the stack's stop.
  const controller = new AbortController();

  const sweep = (): Promise<number> => {
    // One sweep at a time: the timer skips a beat rather than scanning twice at once.
    running ??= sweepAll(options.dynamo, tables, options.clock, controller.signal).finally(() => {
      running = undefined;
    });
    return running;
  };
  const intervalMs = options.intervalMs ?? 2_000;
  const timer =
    intervalMs > 0
      ? setInterval(() => {
          if (!stopped && !running) sweep().catch((err) => options.onError?.(err));
        }, intervalMs)
      : undefined;
  timer?.unref();

  return {
    sweep,
    stop: async () => {
      stopped = true;
      clearInterval(timer);
      controller.abort();
      await running?.catch(() => undefined);
    },
  };
}

/** Five years, the age past which AWS's TTL process leaves an expiry alone. */
const MAX_EXPIRED_AGE_SECONDS = 5 * 365 * 86_400;

async function sweepAll(
  dynamo: DynamoDBClient,
  tables: readonly ReapedTable[],
  clock: Clock,
  signal: AbortSignal,
) {
  let deleted = 0;
  for (const table of tables) deleted += await sweepTable(dynamo, table, clock, signal);
  return deleted;
}

async function sweepTable(
  dynamo: DynamoDBClient,
  table: ReapedTable,
  clock: Clock,
  abortSignal: AbortSignal,
): Promise<number> {
  const ttl = table.definition.ttlAttribute!;
  const keys = [table.definition.partitionKey.name, table.definition.sortKey?.name].filter(
    (k): k is string => k !== undefined,
  );
  let deleted = 0;
  let startKey: Record<string, AttributeValue> | undefined;
  do {
    const nowSeconds = Math.floor(clock() / 1000);
    // The filter only saves bytes on the way back; the delete's condition is what decides.
    const page = await dynamo.send(
      new ScanCommand({
        TableName: table.name,
        ExclusiveStartKey: startKey,
        FilterExpression: '#ttl <= :now AND #ttl >= :oldest',
        ExpressionAttributeNames: { '#ttl': ttl },
        ExpressionAttributeValues: {
          ':now': { N: String(nowSeconds) },
          ':oldest': { N: String(nowSeconds - MAX_EXPIRED_AGE_SECONDS) },
        },
      }),
      { abortSignal },
    );
    startKey = page.LastEvaluatedKey;
    for (const item of page.Items ?? []) {
      const expiry = item[ttl];
      if (expiry?.N === undefined) continue; // a String or any other type: TTL ignores the item
      const key = Object.fromEntries(keys.map((k) => [k, item[k]!]));
      try {
        await dynamo.send(
          new DeleteItemCommand({
            TableName: table.name,
            Key: key,
            // Deleted only if its TTL is still the one that passed: an item written again since
            // the scan (a new window, a renewed lease, a policy that cleared its TTL) carries a
            // new expiry, or none, and stays.
            ConditionExpression: '#ttl = :seen',
            ExpressionAttributeNames: { '#ttl': ttl },
            ExpressionAttributeValues: { ':seen': { N: expiry.N } },
          }),
          { abortSignal },
        );
        deleted++;
      } catch (err) {
        if (!(err instanceof ConditionalCheckFailedException)) throw err;
      }
    }
  } while (startKey);
  return deleted;
}
