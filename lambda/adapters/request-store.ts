import {
  DeleteItemCommand,
  type DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
} from '@aws-sdk/client-dynamodb';
import { marshall, unmarshall } from '@aws-sdk/util-dynamodb';
import type { ConversationRef } from '../core/conversation';
import { contentTtlEpochSeconds, type QueuedRequest, type RequestContent } from '../core/queue/request';
import { TTL_ATTRIBUTE } from '../core/resources';
import type { RequestContentPort } from '../services/ports';

/**
 * Waiting requests' content in the Requests table (pk/sk, beside kept replies): one item per
 * enqueue, `user#<id>` / `request#<requestId>#<contentKey>`, holding the prompt and the
 * conversation. The user's limiter item keeps only the request's place (`q_<id>`, with the
 * `contentKey`), so every decision on it is billed for a small item (issue 22).
 *
 * Layout of an item: `pk`, `sk`, `message` (the prompt), `conversationId`?, `conversation`? (the
 * earlier turns its admission counted), and the TTL.
 */
export class RequestContentStore implements RequestContentPort {
  constructor(
    private readonly dynamo: DynamoDBClient,
    private readonly table: string,
  ) {}

  /**
   * Written once, before the enqueue's conditional write on the user's item. Every state has an
   * end: if that write then fails or is refused (full, duplicate, busy), nothing points at this
   * item and its TTL — past the request's queue deadline, every attempt's lease and a margin —
   * removes it; a request that ran or left the line ends the same way (or is deleted at once).
   * Its key is new for each enqueue, so it never overwrites another request's content.
   */
  async putContent(userId: string, request: QueuedRequest, content: RequestContent): Promise<void> {
    await this.dynamo.send(
      new PutItemCommand({
        TableName: this.table,
        Item: marshall(
          {
            ...keyOf(userId, request),
            message: content.message,
            conversationId: content.conversationId,
            conversation: content.conversation,
            [TTL_ATTRIBUTE]: contentTtlEpochSeconds(request),
          },
          { removeUndefinedValues: true },
        ),
      }),
    );
  }

  /** One strongly consistent read: written before the enqueue, so a started request finds it. */
  async getContent(userId: string, request: QueuedRequest): Promise<RequestContent | undefined> {
    const { Item } = await this.dynamo.send(
      new GetItemCommand({
        TableName: this.table,
        Key: marshall(keyOf(userId, request)),
        ConsistentRead: true,
      }),
    );
    if (!Item) return undefined;
    const item = unmarshall(Item);
    if (typeof item.message !== 'string') return undefined;
    return {
      message: item.message,
      ...(typeof item.conversationId === 'string' ? { conversationId: item.conversationId } : {}),
      ...(conversationRefOf(item.conversation) ?? {}),
    };
  }

  /** A request that left the line unanswered (cancel, purge, expiry): its content goes at once. */
  async deleteContent(userId: string, request: QueuedRequest): Promise<void> {
    await this.dynamo.send(
      new DeleteItemCommand({ TableName: this.table, Key: marshall(keyOf(userId, request)) }),
    );
  }
}

function keyOf(userId: string, request: QueuedRequest): { pk: string; sk: string } {
  return { pk: `user#${userId}`, sk: `request#${request.requestId}#${request.contentKey}` };
}

/** A stored conversation reference, read back whole or not at all. */
function conversationRefOf(value: unknown): { conversation: ConversationRef } | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const ref = value as Partial<ConversationRef>;
  if (typeof ref.id !== 'string' || typeof ref.atEpochMs !== 'number') return undefined;
  const bounds = typeof ref.since === 'string' && typeof ref.until === 'string';
  return {
    conversation: {
      id: ref.id,
      atEpochMs: ref.atEpochMs,
      ...(bounds ? { since: ref.since, until: ref.until } : {}),
    },
  };
}
