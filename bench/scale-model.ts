/**
 * The scale model of docs/scale.md (issue 22 item 6, SPEC §9.2): from units measured by the other
 * bench parts (write and read units per decision, item sizes, route and runner durations) and a
 * stated workload, the load on every item kind, partition, queue, function and gateway quota at a
 * request rate, and what the limiting layer costs per million chat requests beside a Redis-based
 * limiter. Pure arithmetic: bench/scale.ts reads the inputs from bench/results/*.json, and
 * test/unit/scale-model.test.ts checks the outputs for fixed inputs.
 */

import { costLines } from './scale-costs';
import { inFlight, itemLoads, lineLoad, stackShards } from './scale-items';
import type {
  CostLine,
  CostPart,
  ItemLoad,
  MeasuredInputs,
  Prices,
  QuotaCheck,
  ScaleModel,
  StackInputs,
  Workload,
} from './scale-types';

export type * from './scale-types';

const PARTITION_WU = 1_000;
const PARTITION_RU = 3_000;
const TABLE_ON_DEMAND_UNITS = 40_000;
const SQS_FIFO_TPS = 70_000;
const GATEWAY_RPS = 10_000;
const NEW_CONNECTIONS_PER_SECOND = 500;

/** A setting's value, rounded up and written as docs/scale.md shows numbers. */
const atLeast = (v: number) => Math.ceil(v).toLocaleString('en-US');
const check = (what: string, demand: number, limit: number, unit: string, setting: string): QuotaCheck => ({
  what,
  demand,
  limit,
  unit,
  ratio: demand / limit,
  setting,
});

/** Concurrency (Little's law: rate × duration) of each function kind. */
function concurrency(m: MeasuredInputs, w: Workload) {
  const r = w.requestsPerSecond;
  const admitted = r * (1 - w.refusedShare);
  const routes = (r * m.routeMs) / 1000;
  const processor = (r * w.queuedShare * w.processorBatchesPerQueued * m.routeMs) / 1000;
  const runner = admitted * (w.replySeconds + m.runnerOverheadMs / 1000);
  const connects = ((w.users * w.connectedShare) / w.sessionSeconds) * ((2 * m.routeMs) / 1000);
  return { routes, processor, runner, connects };
}

function quotaChecks(
  items: readonly ItemLoad[],
  m: MeasuredInputs,
  s: StackInputs,
  w: Workload,
): QuotaCheck[] {
  const r = w.requestsPerSecond;
  const c = concurrency(m, w);
  const admitted = r * (1 - w.refusedShare);
  const queued = r * w.queuedShare;
  const chunks = Math.ceil((w.replySeconds * 1000) / s.chunkIntervalMs);
  const posts =
    admitted * (w.postsPerAdmitted + chunks) + queued * w.extraPostsPerQueued + r * w.refusedShare;
  const newConnections = (w.users * w.connectedShare) / w.sessionSeconds;
  const processorRate = (s.processorConcurrency * 1000) / m.routeMs;
  const kind = (name: string) => items.find((i) => i.kind === name)!;
  const limitsTableWu = items.filter((i) => i.table === 'Limits').reduce((a, i) => a + i.wuPerSecond, 0);
  const shares = inFlight(m, w) * w.globalShare;
  const shareLimit = s.maxGlobalShards * s.sharesPerShard;
  const out: QuotaCheck[] = items
    .filter((i) => i.hottestPartitionWu > 0)
    .map((i) =>
      check(`DynamoDB partition: ${i.kind}`, i.hottestPartitionWu, PARTITION_WU, 'WU/s', partitionSetting(i)),
    );
  out.push(
    check(
      'DynamoDB partition reads: global shard',
      kind('global shard').hottestPartitionRu,
      PARTITION_RU,
      'RU/s',
      'global.shards',
    ),
    check(
      'DynamoDB partition reads: byLine index',
      kind('byLine index').hottestPartitionRu,
      PARTITION_RU,
      'RU/s',
      'a longer view (WAITERS_TTL_MS); not LINE_BUCKETS: every view reads each bucket',
    ),
    check(
      'global shards: requests in flight (shares)',
      shares,
      shareLimit,
      'shares',
      `${s.maxGlobalShards.toLocaleString('en-US')} shards × ${s.sharesPerShard} shares at most: fewer in flight (shorter replies), or a higher MAX_GLOBAL_SHARDS`,
    ),
    check(
      'DynamoDB on-demand table: Limits (base table)',
      limitsTableWu,
      TABLE_ON_DEMAND_UNITS,
      'WU/s',
      `the table's quota ≥ ${atLeast(limitsTableWu)}`,
    ),
  );
  // The Requests table's reads: request contents and, above all, the runners' looks for a stop.
  const requestsTableRu = items.filter((i) => i.table === 'Requests').reduce((a, i) => a + i.ruPerSecond, 0);
  out.push(
    check(
      'DynamoDB on-demand table: Requests (reads)',
      requestsTableRu,
      TABLE_ON_DEMAND_UNITS,
      'RU/s',
      `the table's read quota ≥ ${atLeast(requestsTableRu)}, or a longer stop interval (stopPollMs)`,
    ),
  );
  for (const index of items.filter((i) => i.table.startsWith('Limits ('))) {
    const name = index.table.slice('Limits ('.length, -1);
    out.push(
      check(
        `DynamoDB on-demand table: ${name} index`,
        index.wuPerSecond,
        TABLE_ON_DEMAND_UNITS,
        'WU/s',
        `the index's quota ≥ ${atLeast(index.wuPerSecond)}`,
      ),
    );
  }
  for (const [action, perQueued] of Object.entries(w.sqsPerQueued)) {
    out.push(
      check(
        `SQS FIFO ${action}`,
        queued * perQueued,
        SQS_FIFO_TPS,
        'calls/s',
        'batching, or a quota increase',
      ),
    );
  }
  out.push(
    check(
      'API Gateway stage throttle (sendMessage)',
      r,
      s.stageRateLimit,
      'req/s',
      `throttle.rateLimit ≥ ${atLeast(r)}`,
    ),
    check(
      'API Gateway account: routes + @connections posts',
      r + posts,
      GATEWAY_RPS,
      'req/s',
      `a quota ≥ ${atLeast(r + posts)}, or fewer posts a reply (COALESCE_MS ${s.chunkIntervalMs})`,
    ),
    check(
      'API Gateway new connections',
      newConnections,
      NEW_CONNECTIONS_PER_SECOND,
      'conn/s',
      `a quota ≥ ${atLeast(newConnections)}`,
    ),
    check(
      'Lambda reply runner (reserved)',
      c.runner,
      s.replyConcurrency,
      'concurrent',
      `replyConcurrency ≥ ${atLeast(c.runner)} (and the account's quota)`,
    ),
    check(
      'Lambda processor (event source maximum)',
      queued * w.processorBatchesPerQueued,
      processorRate,
      'records/s',
      `processorConcurrency ≥ ${atLeast(c.processor)}`,
    ),
    check(
      'Lambda account concurrency',
      c.routes + c.processor + c.runner + c.connects,
      s.accountConcurrency,
      'concurrent',
      `accountConcurrency and the quota ≥ ${atLeast(c.routes + c.processor + c.runner + c.connects)}`,
    ),
  );
  return out;
}

/** What spreads an item kind's writes, and what it would take here. */
function partitionSetting({ kind, wuPerSecond }: ItemLoad): string {
  if (kind === 'global shard')
    return `global.shards ≥ ${atLeast(wuPerSecond / PARTITION_WU)} (at most 1,000)`;
  if (kind === 'usage index entry') return 'USAGE_BUCKETS (USAGE_INDEX_MODEL)';
  if (kind === 'byLine index') return 'LINE_BUCKETS, or fewer looks (FAR_LOOK_MS, NEAR_HEAD)';
  if (kind === 'sweep index entry') return 'SWEEP_BUCKETS';
  return 'none needed (one key per user, waiter or request)';
}

/** The model at one workload. */
export function scaleModel(m: MeasuredInputs, s: StackInputs, w: Workload, p: Prices): ScaleModel {
  const items = itemLoads(m, s, w, concurrency(m, w).routes);
  const quotas = quotaChecks(items, m, s, w);
  const costs = costLines(items, m, s, w, p);
  const total = (design: CostLine['design'], part: CostPart) =>
    costs.filter((c) => c.design === design && c.part === part).reduce((a, c) => a + c.usd, 0);
  const shared = total('both', 'limiting');
  return {
    workload: w,
    items,
    quotas,
    breaksFirst: [...quotas].sort((a, b) => b.ratio - a.ratio),
    costs,
    globalShards: stackShards(m, s, w),
    lineWaiters: lineLoad(s, w).waiters,
    usdPerMillion: {
      ours: shared + total('chat-limiter', 'limiting'),
      redisNodes: shared + total('Redis', 'limiting'),
      redisServerless: shared + total('Redis', 'serverless'),
      stream: total('both', 'stream'),
    },
  };
}
