import {
  type AttributeValue,
  DeleteItemCommand,
  type DynamoDBClient,
  PutItemCommand,
  QueryCommand,
} from '@aws-sdk/client-dynamodb';
import { marshall, unmarshall } from '@aws-sdk/util-dynamodb';
import type { StoredReply } from '../core/queue/request';
import { TTL_ATTRIBUTE } from '../core/resources';
import type { ReplyStorePort } from '../services/ports';

/** Undelivered replies are kept this long for `resume` (SPEC §4). */
export const REPLY_RETENTION_SECONDS = 3600;

const userKey = (userId: string) => `user#${userId}`;
const replySortKey = (requestId: string) => `reply#${requestId}`;

/**
 * Finished replies that found none of the user's connections, kept for an hour for `resume`, in
 * the requests table (pk/sk). Written only when nobody was connected: the chat path never
 * touches this table otherwise.
 */
export class ReplyStore implements ReplyStorePort {
  constructor(
    private readonly client: DynamoDBClient,
    private readonly tableName: string,
  ) {}

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
}
