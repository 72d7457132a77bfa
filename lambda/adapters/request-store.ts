import {
  type AttributeValue,
  ConditionalCheckFailedException,
  DeleteItemCommand,
  type DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
  UpdateItemCommand,
} from '@aws-sdk/client-dynamodb';
import { marshall, unmarshall } from '@aws-sdk/util-dynamodb';
import { isTerminal, type QueuedRequest, type RequestStatus } from '../core/queue/request';
import { TTL_ATTRIBUTE } from '../core/resources';

/** How long records stay after they end (for `status`, audits and late duplicates). */
const RECORD_RETENTION_SECONDS = 24 * 3600;
/** Undelivered replies are kept this long for `resume` (SPEC §4). */
export const REPLY_RETENTION_SECONDS = 3600;

const userKey = (userId: string) => `user#${userId}`;
const requestSortKey = (requestId: string) => `req#${requestId}`;
const replySortKey = (requestId: string) => `reply#${requestId}`;
const TOTAL_KEY = { pk: 'queue', sk: 'total' } as const;

export interface StoredReply {
  readonly requestId: string;
  /** The server message to deliver, as JSON-able data. */
  readonly message: Record<string, unknown>;
  readonly storedAtEpochMs: number;
}

export type TransitionResult =
  | { readonly ok: true; readonly record: QueuedRequest }
  | { readonly ok: false; readonly record: QueuedRequest | undefined };

/**
 * Queued request records, the global queue counter and undelivered replies, in the requests table
 * (pk/sk). Every status change is a conditional write on the expected current status.
 */
export class RequestStore {
  constructor(
    private readonly client: DynamoDBClient,
    private readonly tableName: string,
  ) {}

  /** Creates the record; false if a request with this id already exists for the user. */
  async create(record: QueuedRequest): Promise<boolean> {
    try {
      await this.client.send(
        new PutItemCommand({
          TableName: this.tableName,
          Item: marshall(this.toItem(record), { removeUndefinedValues: true }),
          // A client-chosen requestId must not overwrite another request of the same user.
          ConditionExpression: 'attribute_not_exists(pk)',
        }),
      );
      return true;
    } catch (err) {
      if (err instanceof ConditionalCheckFailedException) return false;
      throw err;
    }
  }

  async get(userId: string, requestId: string): Promise<QueuedRequest | undefined> {
    const { Item } = await this.client.send(
      new GetItemCommand({
        TableName: this.tableName,
        Key: marshall({ pk: userKey(userId), sk: requestSortKey(requestId) }),
        ConsistentRead: true,
      }),
    );
    return Item ? this.fromItem(unmarshall(Item)) : undefined;
  }

  /**
   * Moves a record to `to` only if its status is one of `from` (and, for a lease, the lease has
   * run out). The condition is the exactly-once guard: of two deliveries of one message, only one
   * can take a record out of `queued`.
   */
  async transition(
    userId: string,
    requestId: string,
    from: readonly RequestStatus[],
    to: RequestStatus,
    nowMs: number,
    set: Partial<
      Pick<
        QueuedRequest,
        'reservation' | 'leaseUntilEpochMs' | 'startedAtEpochMs' | 'reply' | 'usage' | 'delivered'
      >
    > & {
      incrementAttempts?: boolean;
      /** Only if no unexpired lease is held (taking over a crashed attempt). */
      leaseFreeAtEpochMs?: number;
    } = {},
  ): Promise<TransitionResult> {
    const names: Record<string, string> = { '#status': 'status', '#ttl': TTL_ATTRIBUTE };
    const values: Record<string, unknown> = { ':to': to };
    const sets = ['#status = :to'];
    from.forEach((status, i) => {
      values[`:from${i}`] = status;
    });
    let condition = `#status IN (${from.map((_, i) => `:from${i}`).join(', ')})`;
    if (set.leaseFreeAtEpochMs !== undefined) {
      names['#lease'] = 'leaseUntilEpochMs';
      values[':leaseFree'] = set.leaseFreeAtEpochMs;
      condition += ' AND (attribute_not_exists(#lease) OR #lease <= :leaseFree)';
    }
    for (const key of [
      'reservation',
      'leaseUntilEpochMs',
      'startedAtEpochMs',
      'reply',
      'usage',
      'delivered',
    ] as const) {
      if (set[key] !== undefined) {
        names[`#${key}`] = key;
        values[`:${key}`] = set[key];
        sets.push(`#${key} = :${key}`);
      }
    }
    if (set.incrementAttempts) {
      names['#attempts'] = 'attempts';
      values[':one'] = 1;
      sets.push('#attempts = #attempts + :one');
    }
    // Ended records linger a day; live ones as long as SQS could still hold their message.
    const retentionSeconds = isTerminal(to) ? RECORD_RETENTION_SECONDS : 4 * 24 * 3600;
    values[':ttl'] = Math.floor(nowMs / 1000) + retentionSeconds;
    sets.push('#ttl = :ttl');
    try {
      const { Attributes } = await this.client.send(
        new UpdateItemCommand({
          TableName: this.tableName,
          Key: marshall({ pk: userKey(userId), sk: requestSortKey(requestId) }),
          UpdateExpression: `SET ${sets.join(', ')}`,
          ConditionExpression: `attribute_exists(pk) AND ${condition}`,
          ExpressionAttributeNames: names,
          ExpressionAttributeValues: marshall(values, { removeUndefinedValues: true }),
          ReturnValues: 'ALL_NEW',
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        }),
      );
      return { ok: true, record: this.fromItem(unmarshall(Attributes ?? {})) };
    } catch (err) {
      if (!(err instanceof ConditionalCheckFailedException)) throw err;
      // Real DynamoDB returns the item with the failure; emulators may not, so read it.
      const record = err.Item ? this.fromItem(unmarshall(err.Item)) : await this.get(userId, requestId);
      return { ok: false, record };
    }
  }

  /** Removes a record (undoing an enqueue whose SQS send failed). */
  async delete(userId: string, requestId: string): Promise<void> {
    await this.client.send(
      new DeleteItemCommand({
        TableName: this.tableName,
        Key: marshall({ pk: userKey(userId), sk: requestSortKey(requestId) }),
      }),
    );
  }

  /** Moves the count of queued requests of all users; returns the new count. */
  async addToTotal(delta: number): Promise<number> {
    const { Attributes } = await this.client.send(
      new UpdateItemCommand({
        TableName: this.tableName,
        Key: marshall(TOTAL_KEY),
        UpdateExpression: 'ADD #count :delta',
        ExpressionAttributeNames: { '#count': 'count' },
        ExpressionAttributeValues: marshall({ ':delta': delta }),
        ReturnValues: 'UPDATED_NEW',
      }),
    );
    return Math.max(0, Number(Attributes?.count?.N ?? 0));
  }

  async total(): Promise<number> {
    const { Item } = await this.client.send(
      new GetItemCommand({ TableName: this.tableName, Key: marshall(TOTAL_KEY), ConsistentRead: true }),
    );
    return Math.max(0, Number(Item?.count?.N ?? 0));
  }

  /** Keeps a finished reply that could not be delivered, for `resume`, for one hour. */
  async saveReply(userId: string, requestId: string, message: Record<string, unknown>, nowMs: number) {
    await this.client.send(
      new PutItemCommand({
        TableName: this.tableName,
        Item: marshall(
          {
            pk: userKey(userId),
            sk: replySortKey(requestId),
            requestId,
            message: JSON.stringify(message),
            storedAtEpochMs: nowMs,
            [TTL_ATTRIBUTE]: Math.floor(nowMs / 1000) + REPLY_RETENTION_SECONDS,
          },
          { removeUndefinedValues: true },
        ),
      }),
    );
  }

  /** The user's kept replies, oldest first, without expired ones (emulators do not expire items). */
  async listReplies(userId: string, nowMs: number): Promise<StoredReply[]> {
    const replies: StoredReply[] = [];
    let startKey: Record<string, AttributeValue> | undefined;
    do {
      const page = await this.client.send(
        new QueryCommand({
          TableName: this.tableName,
          KeyConditionExpression: 'pk = :pk AND begins_with(sk, :reply)',
          ExpressionAttributeValues: marshall({ ':pk': userKey(userId), ':reply': 'reply#' }),
          ConsistentRead: true,
          ExclusiveStartKey: startKey,
        }),
      );
      for (const raw of page.Items ?? []) {
        const item = unmarshall(raw);
        if (Number(item[TTL_ATTRIBUTE]) * 1000 <= nowMs) continue;
        replies.push({
          requestId: String(item.requestId),
          message: JSON.parse(String(item.message)),
          storedAtEpochMs: Number(item.storedAtEpochMs),
        });
      }
      startKey = page.LastEvaluatedKey;
    } while (startKey);
    return replies.sort((a, b) => a.storedAtEpochMs - b.storedAtEpochMs);
  }

  async deleteReply(userId: string, requestId: string): Promise<void> {
    await this.client.send(
      new DeleteItemCommand({
        TableName: this.tableName,
        Key: marshall({ pk: userKey(userId), sk: replySortKey(requestId) }),
      }),
    );
  }

  private toItem(record: QueuedRequest): Record<string, unknown> {
    return {
      pk: userKey(record.userId),
      sk: requestSortKey(record.requestId),
      ...record,
      [TTL_ATTRIBUTE]: Math.floor(record.expiresAtEpochMs / 1000) + RECORD_RETENTION_SECONDS,
    };
  }

  private fromItem(item: Record<string, unknown>): QueuedRequest {
    const { pk: _pk, sk: _sk, [TTL_ATTRIBUTE]: _ttl, ...record } = item;
    return record as unknown as QueuedRequest;
  }
}
