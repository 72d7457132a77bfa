import { usdToMicroUsd } from '../../models';
import { type GlobalLimits, shardWindows } from '../global/limits';
import { shareOf } from '../global/shards';
import type { LimiterSnapshot } from '../item/state';

/**
 * How full a shard's share of the global daily cost limit is (%), as the shard's item `snap` shows
 * it at `nowMs` (the cost alarm's early signal); undefined without a global daily cost limit.
 */
export function shardCostPercent(
  limits: GlobalLimits,
  shard: number,
  snap: LimiterSnapshot,
  nowMs: number,
): number | undefined {
  const costLimit = limits.dailyCostUsd;
  const share = costLimit === undefined ? 0 : shareOf(usdToMicroUsd(costLimit), limits.shards, shard);
  if (share <= 0) return undefined;
  const usedNow = snap.cd === shardWindows(snap, nowMs).day ? (snap.cu ?? 0) : 0;
  return (100 * usedNow) / share;
}
