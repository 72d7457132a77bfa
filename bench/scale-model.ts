/**
 * The scale model of docs/scale.md (issue 22 item 6, SPEC §9.2): from units measured by the other
 * bench parts (write and read units per decision, item sizes, route and runner durations) and a
 * stated workload, the load on every item kind, partition, queue, function and gateway quota at a
 * request rate, and what the limiting layer costs per million chat requests beside a Redis-based
 * limiter. Pure arithmetic: bench/scale.ts reads the inputs from bench/results/*.json, and
 * test/unit/scale-model.test.ts checks the outputs for fixed inputs.
 */

import { costLines } from './scale-costs';
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
const kb = (bytes: number, unit: number) => Math.max(1, Math.ceil(bytes / unit));
const check = (what: string, demand: number, limit: number, unit: string, setting: string): QuotaCheck => ({
  what,
  demand,
  limit,
  unit,
  ratio: demand / limit,
  setting,
});

/** Items of the limits and requests tables: units a second and on the hottest partition. */
function itemLoads(m: MeasuredInputs, s: StackInputs, w: Workload): ItemLoad[] {
  const r = w.requestsPerSecond;
  const queued = r * w.queuedShare;
  const refused = r * w.refusedShare;
  const admitted = r - refused;
  const userWrite = m.directUserItemWu / m.directCalls;
  const indexPerRequest = m.directWu - m.directUserItemWu;
  const shardPerRequest = m.globalWu - m.directWu;
  const wakeReadRu = kb(m.largestUserItemBytes, 4096);
  // Every admitted request: decide, claim, settle on the user's item; a queued one adds its
  // enqueue and the processor's read of the item; a refusal is one failed write at the item's size.
  const userWu = admitted * 3 * userWrite + queued * m.enqueueWu + refused * userWrite;
  const userRu = queued * (m.enqueueRu + wakeReadRu);
  const shardWu = admitted * w.globalShare * shardPerRequest;
  const shardRu = admitted * w.globalShare * m.globalRu;
  const lineWu = r * w.lineShare * w.lineWritesPerWaiter * m.lineJoinWu;
  const indexWu = admitted * indexPerRequest;
  const contentBytes = w.promptBytes + 200;
  const contentWu = queued * kb(contentBytes, 1024) * 2; // written once, deleted once
  const contentRu = queued * kb(contentBytes, 4096);
  const replyWu = admitted * w.keptReplyShare * kb(w.replyBytes + 200, 1024) * 2;
  const shards = Math.max(1, s.globalShards);
  // A connection: the per-IP bucket's write, the record's put and delete, each with its byUser
  // index write (1 WU each: small items).
  const connWu = ((w.users * w.connectedShare) / w.sessionSeconds) * 5;
  return [
    {
      kind: 'user item',
      table: 'Limits',
      wuPerSecond: userWu,
      ruPerSecond: userRu,
      hottestPartitionWu: userWu / w.users,
      hottestPartitionRu: userRu / w.users,
      note: `one per user; ${m.largestUserItemBytes.toLocaleString('en-US')} B at most (${kb(m.largestUserItemBytes, 1024)} WU a write); hottest = the average user`,
    },
    {
      kind: 'global shard',
      table: 'Limits',
      wuPerSecond: shardWu,
      ruPerSecond: shardRu,
      hottestPartitionWu: shardWu / shards,
      hottestPartitionRu: shardRu / shards,
      note: `${shards} shards; ${m.largestShardBytes.toLocaleString('en-US')} B at most`,
    },
    {
      kind: 'global line',
      table: 'Limits',
      wuPerSecond: lineWu,
      ruPerSecond: 0,
      hottestPartitionWu: lineWu,
      hottestPartitionRu: 0,
      note: `all its writes on one key; ${m.largestLineBytes.toLocaleString('en-US')} B at most`,
    },
    {
      kind: 'usage index entry',
      table: 'Limits (byDayUsage)',
      wuPerSecond: indexWu,
      ruPerSecond: 0,
      hottestPartitionWu: indexWu * s.hottestBucketShare,
      hottestPartitionRu: 0,
      note: `${s.usageBuckets} buckets, the hottest holding ${(s.hottestBucketShare * 100).toFixed(2)} % of users`,
    },
    {
      kind: 'request content',
      table: 'Requests',
      wuPerSecond: contentWu,
      ruPerSecond: contentRu,
      hottestPartitionWu: contentWu / w.users,
      hottestPartitionRu: contentRu / w.users,
      note: `a ${w.promptBytes.toLocaleString('en-US')}-byte prompt, written and deleted once, read once`,
    },
    {
      kind: 'kept reply',
      table: 'Requests',
      wuPerSecond: replyWu,
      ruPerSecond: 0,
      hottestPartitionWu: replyWu / w.users,
      hottestPartitionRu: 0,
      note: `${w.keptReplyShare * 100} % of replies, written and deleted once`,
    },
    {
      kind: 'connection',
      table: 'Connections, Limits (per-IP)',
      wuPerSecond: connWu,
      ruPerSecond: 0,
      hottestPartitionWu: connWu / w.users,
      hottestPartitionRu: 0,
      note: `a ${w.sessionSeconds / 60}-minute session per connected user: bucket, put, delete, 2 index writes`,
    },
  ];
}

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
      'DynamoDB on-demand table: Limits (base table)',
      limitsTableWu,
      TABLE_ON_DEMAND_UNITS,
      'WU/s',
      `the table's quota ≥ ${atLeast(limitsTableWu)}`,
    ),
    check(
      'DynamoDB on-demand table: byDayUsage index',
      kind('usage index entry').wuPerSecond,
      TABLE_ON_DEMAND_UNITS,
      'WU/s',
      `the index's quota ≥ ${atLeast(kind('usage index entry').wuPerSecond)}`,
    ),
  );
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
  if (kind === 'global shard') return `global.shards ≥ ${atLeast(wuPerSecond / PARTITION_WU)} (at most 100)`;
  if (kind === 'usage index entry') return 'USAGE_BUCKETS (USAGE_INDEX_MODEL)';
  if (kind === 'global line') return 'the line design (issue 22 item 2): no item every waiter writes';
  return 'none needed (one key per user or request)';
}

/** The model at one workload. */
export function scaleModel(m: MeasuredInputs, s: StackInputs, w: Workload, p: Prices): ScaleModel {
  const items = itemLoads(m, s, w);
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
    usdPerMillion: {
      ours: shared + total('chat-limiter', 'limiting'),
      redisNodes: shared + total('Redis', 'limiting'),
      redisServerless: shared + total('Redis', 'serverless'),
      stream: total('both', 'stream'),
    },
  };
}
