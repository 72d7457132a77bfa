import {
  DeleteItemCommand,
  type DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
} from '@aws-sdk/client-dynamodb';
import { marshall, unmarshall } from '@aws-sdk/util-dynamodb';
import type { Tier } from '../core/limiter/tiers';
import { TABLES, TTL_ATTRIBUTE } from '../core/resources';

export interface ConnectionRecord {
  readonly connectionId: string;
  readonly userId: string;
  readonly tier?: Tier;
  readonly sourceIp: string;
  readonly connectedAtEpochMs: number;
  readonly ttlEpochSeconds: number;
}

const BY_USER = TABLES.connections.globalIndexes[0].indexName;

/**
 * Live WebSocket connections (Connections table, GSI `byUser`). Records carry a TTL; emulators do
 * not expire items and DynamoDB deletes them lazily, so every read filters expired ones.
 */
export class ConnectionRegistry {
  private readonly client: DynamoDBClient;
  private readonly tableName: string;

  constructor(options: { client: DynamoDBClient; tableName: string }) {
    this.client = options.client;
    this.tableName = options.tableName;
  }

  async register(input: Omit<ConnectionRecord, 'ttlEpochSeconds'> & { ttlSeconds: number }): Promise<void> {
    const { ttlSeconds, ...record } = input;
    await this.client.send(
      new PutItemCommand({
        TableName: this.tableName,
        Item: marshall(
          { ...record, [TTL_ATTRIBUTE]: Math.floor(record.connectedAtEpochMs / 1000) + ttlSeconds },
          { removeUndefinedValues: true },
        ),
      }),
    );
  }

  async get(connectionId: string, nowMs: number): Promise<ConnectionRecord | undefined> {
    const { Item } = await this.client.send(
      new GetItemCommand({
        TableName: this.tableName,
        Key: marshall({ connectionId }),
        ConsistentRead: true,
      }),
    );
    const record = Item ? toRecord(unmarshall(Item)) : undefined;
    return record && isLive(record, nowMs) ? record : undefined;
  }

  async remove(connectionId: string): Promise<void> {
    await this.client.send(
      new DeleteItemCommand({ TableName: this.tableName, Key: marshall({ connectionId }) }),
    );
  }

  /** The user's live connections, oldest first. */
  async listByUser(userId: string, nowMs: number): Promise<ConnectionRecord[]> {
    const { Items } = await this.client.send(
      new QueryCommand({
        TableName: this.tableName,
        IndexName: BY_USER,
        KeyConditionExpression: 'userId = :u',
        ExpressionAttributeValues: marshall({ ':u': userId }),
      }),
    );
    return (Items ?? []).map((item) => toRecord(unmarshall(item))).filter((record) => isLive(record, nowMs));
  }
}

function toRecord(item: Record<string, unknown>): ConnectionRecord {
  return {
    connectionId: String(item.connectionId),
    userId: String(item.userId),
    tier: item.tier as Tier | undefined,
    sourceIp: String(item.sourceIp ?? ''),
    connectedAtEpochMs: Number(item.connectedAtEpochMs),
    ttlEpochSeconds: Number(item[TTL_ATTRIBUTE]),
  };
}

function isLive(record: ConnectionRecord, nowMs: number): boolean {
  return record.ttlEpochSeconds * 1000 > nowMs;
}
