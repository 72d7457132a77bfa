import { ConditionalCheckFailedException, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { marshall } from '@aws-sdk/util-dynamodb';
import { type GlobalCrossing, globalCrossings } from '../../core/limiter/global/crossings';
import { GLOBAL_EVENTS_KEY, globalEventMark, KEY_ATTR } from '../../core/limiter/item/attributes';
import type { LimiterContext } from './context';

/**
 * The global budgets' crossings, each once per window (SPEC §9.5): the shards' totals (one read per
 * shard, as `status` reads them), then for each crossing one conditional UpdateItem on the marks'
 * item that lands only when its mark holds an earlier window. A crossing is returned only when its
 * write landed, so across runs and instances each is returned once per window.
 */
export async function markGlobalCrossings(ctx: LimiterContext, nowMs: number): Promise<GlobalCrossing[]> {
  if (!ctx.global) return [];
  const marked: GlobalCrossing[] = [];
  for (const crossing of globalCrossings(await ctx.global.totals(nowMs), nowMs)) {
    if (await markOnce(ctx, crossing)) marked.push(crossing);
  }
  return marked;
}

async function markOnce(ctx: LimiterContext, crossing: GlobalCrossing): Promise<boolean> {
  const mark = globalEventMark(crossing.limit.slice('global.'.length), crossing.thresholdPercent);
  try {
    await ctx.client.send(
      new UpdateItemCommand({
        TableName: ctx.tableName,
        Key: marshall({ [KEY_ATTR]: GLOBAL_EVENTS_KEY }),
        UpdateExpression: 'SET #m = :w',
        ConditionExpression: 'attribute_not_exists(#m) OR #m < :w',
        ExpressionAttributeNames: { '#m': mark },
        ExpressionAttributeValues: marshall({ ':w': crossing.window }),
      }),
    );
    return true;
  } catch (err) {
    if (err instanceof ConditionalCheckFailedException) return false;
    throw err;
  }
}
