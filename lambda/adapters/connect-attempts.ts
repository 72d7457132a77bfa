import {
  ConditionalCheckFailedException,
  type DynamoDBClient,
  GetItemCommand,
  UpdateItemCommand,
} from '@aws-sdk/client-dynamodb';
import { marshall, unmarshall } from '@aws-sdk/util-dynamodb';
import { IP_ARRIVAL_ATTR, IP_KEY_PREFIX, KEY_ATTR } from '../core/limiter/item/attributes';
import type { LimitPolicy } from '../core/limiter/kinds/registry';
import { bucketOf } from '../core/limiter/windows';
import { TTL_ATTRIBUTE } from '../core/resources';
import { AdapterError } from './errors';

/** Rounds of condition failures before giving up: each one means another attempt won a race. */
const MAX_ATTEMPTS = 8;

/** How long an address's bucket outlives its last attempt. */
const ITEM_TTL_SECONDS = 3600;

export class ConnectAttemptsError extends AdapterError {}

export interface ConnectAttemptsOptions {
  readonly client: DynamoDBClient;
  /** The limits table: the bucket is the `ip#<addr>` item, beside the users' items. */
  readonly tableName: string;
  /** Per-call timeout. @default 2000 */
  readonly timeoutMs?: number;
}

/**
 * Connection attempts per source address at `$connect`: a GCRA bucket of `perMinute` attempts
 * refilled one every 60/perMinute s, in the `ip#<addr>` item (attribute `tat`, the theoretical
 * arrival time in epoch ms), one conditional write per attempt.
 *
 * The `$connect` function's own adapter, apart from the limiter, so its bundle holds only this and
 * the connection registry (the same item and attributes DynamoLimiter used for it).
 */
export class ConnectAttempts {
  private readonly client: DynamoDBClient;
  private readonly tableName: string;
  private readonly timeoutMs: number;

  constructor(options: ConnectAttemptsOptions) {
    this.client = options.client;
    this.tableName = options.tableName;
    this.timeoutMs = options.timeoutMs ?? 2000;
  }

  async consume(
    sourceIp: string,
    perMinute: number,
    nowMs: number,
  ): Promise<{ allowed: boolean; retryAfterMs: number }> {
    // The message bucket's math with no burst: capacity perMinute, tolerance (capacity - 1) intervals.
    const { intervalMs, toleranceMs } = bucketOf({ messagesPerMinute: perMinute, burst: 0 } as LimitPolicy);
    const key = { [KEY_ATTR]: `${IP_KEY_PREFIX}${sourceIp}` };
    let tat: number | undefined;
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      if (tat !== undefined && tat - nowMs > toleranceMs) {
        return { allowed: false, retryAfterMs: Math.ceil(tat - toleranceMs - nowMs) };
      }
      const values: Record<string, number> = {
        ':now': nowMs,
        ':ttl': Math.floor(nowMs / 1000) + ITEM_TTL_SECONDS,
      };
      let update: string;
      let condition: string;
      if (tat === undefined || tat <= nowMs) {
        // An empty (or fully refilled) bucket: the attempt starts the clock afresh. The condition
        // guarantees the bucket is still empty as we believe: had another attempt moved `tat` past
        // now since we looked, setting it to now + interval would forget that attempt.
        condition = '(attribute_not_exists(#tat) OR #tat <= :now)';
        update = 'SET #tat = :next, #ttl = :ttl';
        values[':next'] = nowMs + intervalMs;
      } else {
        // A partly used bucket: the attempt adds one interval to `tat`. The condition pins `tat`
        // inside the window we decided from (still in the future, still within the tolerance), so
        // of any number of racing attempts only as many as the bucket holds can succeed.
        condition = '(#tat > :now AND #tat <= :limit)';
        update = 'SET #tat = #tat + :interval, #ttl = :ttl';
        values[':limit'] = nowMs + toleranceMs;
        values[':interval'] = intervalMs;
      }
      try {
        await this.client.send(
          new UpdateItemCommand({
            TableName: this.tableName,
            Key: marshall(key),
            UpdateExpression: update,
            ConditionExpression: condition,
            ExpressionAttributeNames: { '#tat': IP_ARRIVAL_ATTR, '#ttl': TTL_ATTRIBUTE },
            ExpressionAttributeValues: marshall(values),
            ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
          }),
          { abortSignal: AbortSignal.timeout(this.timeoutMs) },
        );
        return { allowed: true, retryAfterMs: 0 };
      } catch (err) {
        if (!(err instanceof ConditionalCheckFailedException)) throw err;
        // Another attempt moved the bucket. Real DynamoDB returns the item with the failure;
        // emulators may not, and then it is read.
        const item = err.Item ? unmarshall(err.Item) : await this.read(key);
        const stored = item?.[IP_ARRIVAL_ATTR];
        tat = typeof stored === 'number' ? stored : undefined;
      }
    }
    throw new ConnectAttemptsError(`connection limit for ${sourceIp} did not settle`);
  }

  private async read(key: Record<string, string>): Promise<Record<string, unknown> | undefined> {
    const { Item } = await this.client.send(
      new GetItemCommand({ TableName: this.tableName, Key: marshall(key), ConsistentRead: true }),
      { abortSignal: AbortSignal.timeout(this.timeoutMs) },
    );
    return Item ? unmarshall(Item) : undefined;
  }
}
