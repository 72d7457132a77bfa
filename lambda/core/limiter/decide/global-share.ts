import { GLOBAL_PARTS, type GlobalLimits, shardWindows } from '../global/limits';
import { shareOf } from '../global/shards';
import type { LimiterSnapshot } from '../item/state';
import { limitKind } from '../kinds/registry';

/** The global limits counted in dollars (the daily cost): what the cost alarm watches. */
const COST_PARTS = GLOBAL_PARTS.filter((p) => limitKind(p.kind).unit === 'usd');

/**
 * How full a shard's share of the global cost limit is (%), as the shard's item `snap` shows it at
 * `nowMs` (the cost alarm's early signal); undefined without a global cost limit.
 */
export function shardCostPercent(
  limits: GlobalLimits,
  shard: number,
  snap: LimiterSnapshot,
  nowMs: number,
): number | undefined {
  const percents = COST_PARTS.flatMap((part) => {
    const limit = limits[part.kind];
    const share = limit === undefined ? 0 : shareOf(part.stored(limit), limits.shards, shard);
    if (share <= 0) return [];
    return [(100 * part.used(snap, nowMs, shardWindows(snap, nowMs))) / share];
  });
  return percents.length ? Math.max(...percents) : undefined;
}
