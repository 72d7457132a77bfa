import { type DynamoDBClient, PutItemCommand, QueryCommand } from '@aws-sdk/client-dynamodb';
import { marshall, unmarshall } from '@aws-sdk/util-dynamodb';
import {
  HISTORY_DAYS,
  type HistoryWrite,
  historyPartitionKey,
  historyRecord,
  historySortKey,
  historyTtlEpochSeconds,
  type StoredDay,
  storedHistoryOf,
} from '../../core/limiter/history';
import { dayNumber } from '../../core/limiter/windows';
import { TTL_ATTRIBUTE } from '../../core/resources';

/**
 * Closed days' usage in the Requests table (pk `usage#<userId>`, sk `<YYYY-MM-DD>`): one small item
 * per user and active day, written once after the admission that closed the day (and once more by
 * the next roll, as its `p`: see core/limiter/history.ts), read by `usage --history` in one Query.
 * Every item ends by its TTL, HISTORY_DAYS and a margin after its day.
 */
export class UsageHistoryStore {
  constructor(
    private readonly client: DynamoDBClient,
    private readonly tableName: string,
    private readonly timeoutMs: number,
  ) {}

  /** One unconditional PutItem (~100 bytes, 1 WU): a day's numbers never change once it closed. */
  async record(userId: string, write: HistoryWrite): Promise<void> {
    await this.client.send(
      new PutItemCommand({
        TableName: this.tableName,
        Item: marshall({
          pk: historyPartitionKey(userId),
          sk: historySortKey(write.closed.day),
          ...historyRecord(write),
          [TTL_ATTRIBUTE]: historyTtlEpochSeconds(write.closed.day),
        }),
      }),
      { abortSignal: AbortSignal.timeout(this.timeoutMs) },
    );
  }

  /** The days stored for the last HISTORY_DAYS days: one Query (35 items of ~100 bytes, one page). */
  async read(userId: string, nowMs: number): Promise<Record<number, StoredDay>> {
    const from = historySortKey(dayNumber(nowMs) - HISTORY_DAYS);
    const items: Record<string, unknown>[] = [];
    let start: Record<string, never> | undefined;
    do {
      const page = await this.client.send(
        new QueryCommand({
          TableName: this.tableName,
          KeyConditionExpression: 'pk = :pk AND sk >= :from',
          ExpressionAttributeValues: marshall({ ':pk': historyPartitionKey(userId), ':from': from }),
          ExclusiveStartKey: start,
        }),
        { abortSignal: AbortSignal.timeout(this.timeoutMs) },
      );
      items.push(...(page.Items ?? []).map((i) => unmarshall(i)));
      start = page.LastEvaluatedKey as Record<string, never> | undefined;
    } while (start);
    return storedHistoryOf(items);
  }
}
