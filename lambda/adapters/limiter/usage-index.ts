import { type DynamoDBClient, GetItemCommand, QueryCommand } from '@aws-sdk/client-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import {
  KEY_ATTR,
  USAGE_DAY_ATTR,
  USAGE_TEAM_ATTR,
  USER_KEY_PREFIX,
  userKey,
} from '../../core/limiter/item/attributes';
import { settledUsageOf } from '../../core/limiter/item/day-codec';
import { usageDayKeys } from '../../core/limiter/plan/usage-key';
import { microUsdToUsd } from '../../core/models';

export type TopBy = 'tokens' | 'cost' | 'messages';

/** One user's usage today, as `admin top` lists it: what the replies settled today used. */
export interface UserUsageToday {
  readonly userId: string;
  readonly tokens: number;
  readonly costUsd: number;
  readonly messages: number;
}

export const USAGE_INDEX = 'byDaySettled';

/** Queries `top` keeps in flight at once (under the SDK's 50 sockets; 256 buckets in 8 rounds). */
const QUERIES_AT_ONCE = 32;

/**
 * Today's heaviest users from the `byDaySettled` index (no scan): one Query per bucket of today
 * (USAGE_BUCKETS), QUERIES_AT_ONCE at a time, every entry of today's buckets (users with a reply
 * settled today, keys and three numbers each), sorted here: the index has no sort key, so a settle
 * costs it 1 write, not 2 (issue 22). docs/admin.md has the cost.
 */
export async function topUsersToday(
  client: DynamoDBClient,
  tableName: string,
  by: TopBy,
  limit: number,
  nowMs: number,
): Promise<UserUsageToday[]> {
  const read = async (key: string): Promise<Record<string, unknown>[]> => {
    const items: Record<string, unknown>[] = [];
    let start: Record<string, never> | undefined;
    do {
      const page = await client.send(
        new QueryCommand({
          TableName: tableName,
          IndexName: USAGE_INDEX,
          KeyConditionExpression: '#ud = :ud',
          ExpressionAttributeNames: { '#ud': USAGE_DAY_ATTR },
          ExpressionAttributeValues: { ':ud': { S: key } },
          ExclusiveStartKey: start,
        }),
      );
      items.push(...(page.Items ?? []).map((i) => unmarshall(i)));
      start = page.LastEvaluatedKey as Record<string, never> | undefined;
    } while (start);
    return items;
  };
  const items = (await inRounds(usageDayKeys(nowMs), QUERIES_AT_ONCE, read)).flat();
  const users = items
    .filter((i) => typeof i[KEY_ATTR] === 'string' && i[KEY_ATTR].startsWith(USER_KEY_PREFIX))
    .map((i) => {
      const settled = settledUsageOf(i);
      return {
        userId: (i[KEY_ATTR] as string).slice(USER_KEY_PREFIX.length),
        tokens: settled?.tokens ?? 0,
        costUsd: microUsdToUsd(settled?.costMicroUsd ?? 0),
        messages: settled?.messages ?? 0,
      };
    });
  const key = by === 'tokens' ? 'tokens' : by === 'cost' ? 'costUsd' : 'messages';
  return users
    .filter((u) => u[key] > 0)
    .sort((a, b) => b[key] - a[key] || (a.userId < b.userId ? -1 : 1))
    .slice(0, limit);
}

/** `run` over every key, at most `atOnce` in flight; results in the keys' order. */
async function inRounds<T>(
  keys: readonly string[],
  atOnce: number,
  run: (key: string) => Promise<T>,
): Promise<T[]> {
  const results: T[] = new Array(keys.length);
  let next = 0;
  const worker = async () => {
    while (next < keys.length) {
      const i = next++;
      results[i] = await run(keys[i] as string);
    }
  };
  await Promise.all(Array.from({ length: Math.min(atOnce, keys.length) }, worker));
  return results;
}

/**
 * Of these users, the ones whose last settled reply was `team`'s (`ut`, written by the settle): one
 * GetItem per user asking only for that attribute, QUERIES_AT_ONCE at a time (the admin function
 * may GetItem, not BatchGetItem: least privilege). The index does not project it — a changed
 * projection would make CloudFormation replace the index — so `top --team` costs this on top of
 * `top`'s Queries: a read of each of the day's users' items (billed by their size), admin-only.
 */
export async function usersOfTeam(
  client: DynamoDBClient,
  tableName: string,
  userIds: readonly string[],
  team: string,
): Promise<Set<string>> {
  const teams = await inRounds(userIds, QUERIES_AT_ONCE, async (userId) => {
    const { Item } = await client.send(
      new GetItemCommand({
        TableName: tableName,
        Key: { [KEY_ATTR]: { S: userKey(userId) } },
        ProjectionExpression: '#ut',
        ExpressionAttributeNames: { '#ut': USAGE_TEAM_ATTR },
      }),
    );
    return Item?.[USAGE_TEAM_ATTR]?.S;
  });
  return new Set(userIds.filter((_, i) => teams[i] === team));
}
