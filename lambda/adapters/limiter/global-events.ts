import { ConditionalCheckFailedException, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { marshall } from '@aws-sdk/util-dynamodb';
import {
  type GlobalCrossing,
  globalCrossings,
  type TeamCrossing,
  teamCrossings,
} from '../../core/limiter/global/crossings';
import { GLOBAL_EVENTS_KEY, globalEventMark, KEY_ATTR } from '../../core/limiter/item/attributes';
import { teamEventsKey } from '../../core/limiter/teams';
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
    const limit = crossing.limit.slice('global.'.length);
    if (await markOnce(ctx, GLOBAL_EVENTS_KEY, limit, crossing)) marked.push(crossing);
  }
  return marked;
}

/** The teams whose budgets the sweep watches: every team with limits named or seen (teams#index). */
export async function teamsWithLimits(ctx: LimiterContext): Promise<string[]> {
  return ctx.teams ? ctx.teams.known() : [];
}

/**
 * A team's budgets' crossings, each once per window, as the global ones: its shards' totals, then
 * one conditional write per crossing on the team's own marks item (`team#<name>#events`), so one
 * team's marks never stand in for another's.
 */
export async function markTeamCrossings(
  ctx: LimiterContext,
  team: string,
  nowMs: number,
): Promise<TeamCrossing[]> {
  const counters = ctx.teams?.of(team);
  if (!counters) return [];
  const marked: TeamCrossing[] = [];
  for (const crossing of teamCrossings(team, await counters.totals(nowMs), nowMs)) {
    const limit = crossing.limit.slice('team.'.length);
    if (await markOnce(ctx, teamEventsKey(team), limit, crossing)) marked.push(crossing);
  }
  return marked;
}

async function markOnce(
  ctx: LimiterContext,
  key: string,
  limit: string,
  crossing: Pick<GlobalCrossing, 'thresholdPercent' | 'window'>,
): Promise<boolean> {
  try {
    await ctx.client.send(
      new UpdateItemCommand({
        TableName: ctx.tableName,
        Key: marshall({ [KEY_ATTR]: key }),
        UpdateExpression: 'SET #m = :w',
        // Lands only when the mark holds an earlier window (or none): two sweeps reading the same
        // totals both try, one write lands, the other fails its condition and publishes nothing.
        ConditionExpression: 'attribute_not_exists(#m) OR #m < :w',
        ExpressionAttributeNames: { '#m': globalEventMark(limit, crossing.thresholdPercent) },
        ExpressionAttributeValues: marshall({ ':w': crossing.window }),
      }),
    );
    return true;
  } catch (err) {
    if (err instanceof ConditionalCheckFailedException) return false;
    throw err;
  }
}
