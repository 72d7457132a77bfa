import { type DynamoDBClient, PutItemCommand, QueryCommand } from '@aws-sdk/client-dynamodb';
import { marshall, unmarshall } from '@aws-sdk/util-dynamodb';
import { type ConversationTurn, conversationKey, type StoredTurn } from '../core/conversation';
import { TTL_ATTRIBUTE } from '../core/resources';
import type { ConversationPort } from '../services/ports';

/**
 * Conversation turns in the Requests table (SPEC §9.3), outside the user's limiter item: one item
 * per turn (the user's message and its reply, at most ~100 KB with the longest message and reply,
 * far below DynamoDB's 400 KB), `conv#<userId>#<conversationId>` / `turn#<decision time>#<requestId>`,
 * so the newest turns are one Query read backwards, and writing a turn is one small PutItem (an
 * item per conversation would grow and be rewritten whole at every turn).
 *
 * Layout of an item: `pk`, `sk`, `user`, `assistant`, and the TTL.
 */
export class ConversationStore implements ConversationPort {
  constructor(
    private readonly dynamo: DynamoDBClient,
    private readonly table: string,
  ) {}

  async recentTurns(
    userId: string,
    conversationId: string,
    limit: number,
    nowMs: number,
  ): Promise<StoredTurn[]> {
    if (limit <= 0) return [];
    const { Items = [] } = await this.dynamo.send(
      new QueryCommand({
        TableName: this.table,
        KeyConditionExpression: 'pk = :pk AND begins_with(sk, :turn)',
        ExpressionAttributeValues: marshall({
          ':pk': conversationKey(userId, conversationId),
          ':turn': 'turn#',
        }),
        ScanIndexForward: false,
        Limit: limit,
      }),
    );
    // DynamoDB's TTL removes an item some time after it expires: an expired turn is not read.
    const nowSeconds = Math.floor(nowMs / 1000);
    return Items.map((item) => unmarshall(item))
      .filter((item) => typeof item[TTL_ATTRIBUTE] !== 'number' || item[TTL_ATTRIBUTE] > nowSeconds)
      .flatMap(turnOf);
  }

  async turnsBetween(
    userId: string,
    conversationId: string,
    since: string,
    until: string,
  ): Promise<StoredTurn[]> {
    const { Items = [] } = await this.dynamo.send(
      new QueryCommand({
        TableName: this.table,
        KeyConditionExpression: 'pk = :pk AND sk BETWEEN :since AND :until',
        ExpressionAttributeValues: marshall({
          ':pk': conversationKey(userId, conversationId),
          ':since': since,
          ':until': until,
        }),
      }),
    );
    return Items.map((item) => unmarshall(item)).flatMap(turnOf);
  }

  async putTurn(
    userId: string,
    conversationId: string,
    sk: string,
    turn: ConversationTurn,
    ttlEpochSeconds: number,
  ): Promise<void> {
    await this.dynamo.send(
      new PutItemCommand({
        TableName: this.table,
        Item: marshall({
          pk: conversationKey(userId, conversationId),
          sk,
          user: turn.user,
          assistant: turn.assistant,
          [TTL_ATTRIBUTE]: ttlEpochSeconds,
        }),
      }),
    );
  }
}

function turnOf(item: Record<string, unknown>): StoredTurn[] {
  const { sk, user, assistant } = item;
  if (typeof sk !== 'string' || typeof user !== 'string' || typeof assistant !== 'string') return [];
  return [{ sk, user, assistant }];
}
