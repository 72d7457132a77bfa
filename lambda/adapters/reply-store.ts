import {
  type AttributeValue,
  DeleteItemCommand,
  type DynamoDBClient,
  PutItemCommand,
  QueryCommand,
} from '@aws-sdk/client-dynamodb';
import { marshall, unmarshall } from '@aws-sdk/util-dynamodb';
import type { ServerMessage } from '../core/protocol';
import type { StoredReply } from '../core/queue/request';
import { TTL_ATTRIBUTE } from '../core/resources';
import type { ReplyStorePort } from '../services/ports';

/** Undelivered replies are kept this long for `resume` (SPEC §4). */
export const REPLY_RETENTION_SECONDS = 3600;

const userKey = (userId: string) => `user#${userId}`;
const replySortKey = (requestId: string) => `reply#${requestId}`;
const partSortKey = (requestId: string, n: number) => `reply#${requestId}#${String(n).padStart(4, '0')}`;

/** A message bigger than this keeps its text in parts (an item holds at most 400 KB). */
const ITEM_MESSAGE_BYTES = 300 * 1024;
/** Code points per part: at most 4 bytes each in UTF-8, so a part stays under 240 KB. */
const PART_CODE_POINTS = 60_000;

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

  /**
   * Keeps the reply. A reply too long for one item (DynamoDB's 400 KB) keeps its text in parts of
   * at most {@link PART_CODE_POINTS} code points (≤ 240 KB each), beside the message without it.
   */
  async saveReply(userId: string, requestId: string, message: ServerMessage, nowMs: number) {
    const ttl = Math.floor(nowMs / 1000) + REPLY_RETENTION_SECONDS;
    const text = message.type === 'message_complete' ? message.text : undefined;
    const split = text !== undefined && Buffer.byteLength(JSON.stringify(message)) > ITEM_MESSAGE_BYTES;
    const parts = split ? splitCodePoints(text, PART_CODE_POINTS) : [];
    const { text: _text, ...withoutText } = message as ServerMessage & { text?: string };
    // Parts first: a reader never sees a header whose parts are missing.
    for (const [n, part] of parts.entries()) {
      await this.put({
        pk: userKey(userId),
        sk: partSortKey(requestId, n),
        part: n,
        text: part,
        [TTL_ATTRIBUTE]: ttl,
      });
    }
    await this.put({
      pk: userKey(userId),
      sk: replySortKey(requestId),
      requestId,
      message: JSON.stringify(split ? withoutText : message),
      parts: parts.length,
      storedAtEpochMs: nowMs,
      [TTL_ATTRIBUTE]: ttl,
    });
  }

  /** The user's kept replies, oldest first, without expired ones (emulators do not expire items). */
  async listReplies(userId: string, nowMs: number): Promise<StoredReply[]> {
    const headers: Record<string, unknown>[] = [];
    const parts = new Map<string, string[]>();
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
        if (typeof item.part === 'number') {
          const requestId = String(item.sk).slice('reply#'.length).split('#')[0]!;
          const list = parts.get(requestId) ?? [];
          list[item.part] = String(item.text);
          parts.set(requestId, list);
        } else {
          headers.push(item);
        }
      }
      startKey = page.LastEvaluatedKey;
    } while (startKey);
    const replies: StoredReply[] = [];
    for (const item of headers) {
      const requestId = String(item.requestId);
      const message = JSON.parse(String(item.message)) as ServerMessage & { text?: string };
      const count = Number(item.parts ?? 0);
      if (count > 0) {
        const texts = parts.get(requestId) ?? [];
        if (texts.filter((t) => t !== undefined).length !== count) continue; // still being written
        message.text = texts.join('');
      }
      replies.push({ requestId, message, storedAtEpochMs: Number(item.storedAtEpochMs) });
    }
    return replies.sort((a, b) => a.storedAtEpochMs - b.storedAtEpochMs);
  }

  async deleteReply(userId: string, requestId: string): Promise<void> {
    const { Items } = await this.client.send(
      new QueryCommand({
        TableName: this.tableName,
        KeyConditionExpression: 'pk = :pk AND begins_with(sk, :parts)',
        ExpressionAttributeValues: marshall({
          ':pk': userKey(userId),
          ':parts': `${replySortKey(requestId)}#`,
        }),
        ProjectionExpression: 'sk',
        ConsistentRead: true,
      }),
    );
    // The header first: once it is gone the reply is not listed, whatever parts remain (TTL ends them).
    await this.client.send(
      new DeleteItemCommand({
        TableName: this.tableName,
        Key: marshall({ pk: userKey(userId), sk: replySortKey(requestId) }),
      }),
    );
    for (const item of Items ?? []) {
      await this.client.send(
        new DeleteItemCommand({
          TableName: this.tableName,
          Key: marshall({ pk: userKey(userId), sk: unmarshall(item).sk }),
        }),
      );
    }
  }

  private async put(item: Record<string, unknown>): Promise<void> {
    await this.client.send(
      new PutItemCommand({
        TableName: this.tableName,
        Item: marshall(item, { removeUndefinedValues: true }),
      }),
    );
  }
}

function splitCodePoints(text: string, size: number): string[] {
  const chars = [...text];
  const parts: string[] = [];
  for (let i = 0; i < chars.length; i += size) parts.push(chars.slice(i, i + size).join(''));
  return parts;
}
