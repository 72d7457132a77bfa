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
import type { ProducedReply } from '../core/reply-job';
import { TTL_ATTRIBUTE } from '../core/resources';
import type { ReplyStorePort } from '../services/ports';
import { STOP_MARK_LIFE_SECONDS, type StopMarkPort } from '../services/shared/stop-marks';
import { RequestContentStore } from './request-store';

/** Undelivered replies are kept this long for `resume` (SPEC §4). */
export const REPLY_RETENTION_SECONDS = 3600;

const userKey = (userId: string) => `user#${userId}`;
const stopKey = (userId: string, requestId: string) => ({ pk: userKey(userId), sk: `stop#${requestId}` });
/** Kept replies (`reply#`, listed by `resume`) and produced-but-unsettled ones (`produced#`). */
type Kind = 'reply' | 'produced';
const headerKey = (kind: Kind, requestId: string) => `${kind}#${requestId}`;
const partKey = (kind: Kind, requestId: string, n: number) =>
  `${kind}#${requestId}#${String(n).padStart(4, '0')}`;

/** A message bigger than this keeps its text in parts (an item holds at most 400 KB). */
const ITEM_MESSAGE_BYTES = 300 * 1024;
/** Code points per part: at most 4 bytes each in UTF-8, so a part stays under 240 KB. */
const PART_CODE_POINTS = 60_000;

/**
 * Finished replies that found none of the user's connections, kept for an hour for `resume`, in
 * the requests table (pk/sk). Written only when nobody was connected: the chat path never
 * touches this table otherwise.
 */
export class ReplyStore extends RequestContentStore implements ReplyStorePort, StopMarkPort {
  constructor(
    private readonly client: DynamoDBClient,
    private readonly tableName: string,
  ) {
    // The same table holds waiting requests' content (request-store.ts).
    super(client, tableName);
  }

  /**
   * Keeps the reply. A reply too long for one item (DynamoDB's 400 KB) keeps its text in parts of
   * at most {@link PART_CODE_POINTS} code points (≤ 240 KB each), beside the message without it.
   */
  async saveReply(userId: string, requestId: string, message: ServerMessage, nowMs: number) {
    await this.saveMessage('reply', userId, requestId, message, nowMs, {});
  }

  /**
   * Keeps what a runner produced but could not settle (the store was out at its commit), with its
   * usage and claim, for the attempt that settles it instead of running the model again. Not
   * listed by `resume`: the message goes out only once that settle landed. Kept an hour, longer
   * than any lease.
   */
  async keepProduced(userId: string, requestId: string, produced: ProducedReply, nowMs: number) {
    await this.saveMessage('produced', userId, requestId, produced.message, nowMs, {
      claim: produced.claim,
      usage: JSON.stringify(produced.usage),
    });
  }

  /**
   * The stop mark of a request being answered (`stop#<requestId>`, keys and a TTL: under 1 KB, one
   * write unit). A plain put: a duplicate cancel, or a retry after a lost answer, writes the same
   * item. Every state has an end: the TTL, past every lease of the request, removes it; a mark
   * left by a cancel that raced the reply's end is read by nobody.
   */
  async requestStop(userId: string, requestId: string, nowMs: number): Promise<void> {
    await this.client.send(
      new PutItemCommand({
        TableName: this.tableName,
        Item: marshall({
          ...stopKey(userId, requestId),
          [TTL_ATTRIBUTE]: Math.ceil(nowMs / 1000) + STOP_MARK_LIFE_SECONDS,
        }),
      }),
    );
  }

  /**
   * One strongly consistent read of the mark (one read unit): the runner's look while streaming.
   * A Query on the full key rather than a GetItem, because Query is what the runner is granted on
   * this table already (lambda/core/resources/functions.ts); it costs the same for one small item.
   */
  async isStopRequested(userId: string, requestId: string): Promise<boolean> {
    const key = stopKey(userId, requestId);
    const { Count } = await this.client.send(
      new QueryCommand({
        TableName: this.tableName,
        KeyConditionExpression: 'pk = :pk AND sk = :sk',
        ExpressionAttributeValues: marshall({ ':pk': key.pk, ':sk': key.sk }),
        ProjectionExpression: 'pk',
        ConsistentRead: true,
      }),
    );
    return (Count ?? 0) > 0;
  }

  /** What a runner kept of a request it could not settle, if anything (one Query). */
  async producedReply(userId: string, requestId: string, nowMs: number): Promise<ProducedReply | undefined> {
    const { Items } = await this.client.send(
      new QueryCommand({
        TableName: this.tableName,
        KeyConditionExpression: 'pk = :pk AND begins_with(sk, :sk)',
        ExpressionAttributeValues: marshall({
          ':pk': userKey(userId),
          ':sk': headerKey('produced', requestId),
        }),
        ConsistentRead: true,
      }),
    );
    const items = (Items ?? []).map((raw) => unmarshall(raw));
    const header = items.find((item) => item.sk === headerKey('produced', requestId));
    if (!header || Number(header[TTL_ATTRIBUTE]) * 1000 <= nowMs) return undefined;
    const message = withParts(header, items);
    if (!message) return undefined;
    return { claim: String(header.claim), usage: JSON.parse(String(header.usage)), message };
  }

  async dropProduced(userId: string, requestId: string): Promise<void> {
    await this.deleteMessage('produced', userId, requestId);
  }

  private async saveMessage(
    kind: Kind,
    userId: string,
    requestId: string,
    message: ServerMessage,
    nowMs: number,
    extra: Record<string, unknown>,
  ): Promise<void> {
    const ttl = Math.floor(nowMs / 1000) + REPLY_RETENTION_SECONDS;
    const text = message.type === 'message_complete' ? message.text : undefined;
    const split = text !== undefined && Buffer.byteLength(JSON.stringify(message)) > ITEM_MESSAGE_BYTES;
    const parts = split ? splitCodePoints(text, PART_CODE_POINTS) : [];
    const { text: _text, ...withoutText } = message as ServerMessage & { text?: string };
    // Parts first: a reader never sees a header whose parts are missing.
    for (const [n, part] of parts.entries()) {
      await this.put({
        pk: userKey(userId),
        sk: partKey(kind, requestId, n),
        part: n,
        text: part,
        [TTL_ATTRIBUTE]: ttl,
      });
    }
    await this.put({
      ...extra,
      pk: userKey(userId),
      sk: headerKey(kind, requestId),
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
    await this.deleteMessage('reply', userId, requestId);
  }

  private async deleteMessage(kind: Kind, userId: string, requestId: string): Promise<void> {
    const { Items } = await this.client.send(
      new QueryCommand({
        TableName: this.tableName,
        KeyConditionExpression: 'pk = :pk AND begins_with(sk, :parts)',
        ExpressionAttributeValues: marshall({
          ':pk': userKey(userId),
          ':parts': `${headerKey(kind, requestId)}#`,
        }),
        ProjectionExpression: 'sk',
        ConsistentRead: true,
      }),
    );
    // The header first: once it is gone the reply is not listed, whatever parts remain (TTL ends them).
    await this.client.send(
      new DeleteItemCommand({
        TableName: this.tableName,
        Key: marshall({ pk: userKey(userId), sk: headerKey(kind, requestId) }),
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

/** A header's message with its text put back from its parts; undefined while parts are missing. */
function withParts(
  header: Record<string, unknown>,
  items: readonly Record<string, unknown>[],
): ServerMessage | undefined {
  const message = JSON.parse(String(header.message)) as ServerMessage & { text?: string };
  const count = Number(header.parts ?? 0);
  if (count === 0) return message;
  const texts: string[] = [];
  for (const item of items) if (typeof item.part === 'number') texts[item.part] = String(item.text);
  if (texts.filter((t) => t !== undefined).length !== count) return undefined;
  message.text = texts.join('');
  return message;
}

function splitCodePoints(text: string, size: number): string[] {
  const chars = [...text];
  const parts: string[] = [];
  for (let i = 0; i < chars.length; i += size) parts.push(chars.slice(i, i + size).join(''));
  return parts;
}
