/**
 * The scale model's DynamoDB part (bench/scale-model.ts): write and read units a second of every
 * item kind and index, in all and on the hottest partition, from the measured units and the design
 * as merged for issue 22 — a user item of counters, a global line of one item per waiter behind the
 * sparse `byLine` index, shards of at most 13 shares, `byDaySettled` written by settles only, the
 * usage history one item per user and active day.
 */
import type { ItemLoad, MeasuredInputs, StackInputs, Workload } from './scale-types';

/** With global limits on, a settle writes the user's item once more: its settled charge (`gs_<id>`)
 * leaves once the share is back (lambda/adapters/limiter/settle.ts, global-orphans.ts). */
export const SETTLED_CHARGE_WRITES = 1;
/** Seconds in a day: the usage history and the index's day entry are once per user and active day. */
const DAY_SECONDS = 86_400;

export const kb = (bytes: number, unit: number) => Math.max(1, Math.ceil(bytes / unit));

/** Requests in flight at once (Little's law): admitted × (the reply + the runner's own work). */
export function inFlight(m: MeasuredInputs, w: Workload): number {
  return w.requestsPerSecond * (1 - w.refusedShare) * (w.replySeconds + m.runnerOverheadMs / 1000);
}

/**
 * The shards a stack serving this load has: max(configured, ceil(in flight / shares per shard)) —
 * what synth derives from `replyConcurrency` sized to the runners (lib/config.ts) — at most the cap.
 */
export function stackShards(m: MeasuredInputs, s: StackInputs, w: Workload): number {
  const needed = Math.ceil((inFlight(m, w) * w.globalShare) / s.sharesPerShard);
  return Math.min(s.maxGlobalShards, Math.max(s.globalShards, needed));
}

/**
 * The global line at this load: waiters (joins a second × the wait), writes of their own entries a
 * second (a join and a leave each, the first `nearHead` looking every `nearLookMs`, the rest every
 * `farLookMs`) and looks a second (each look reads the head of every bucket).
 */
export function lineLoad(s: StackInputs, w: Workload) {
  const joins = w.requestsPerSecond * w.lineShare;
  const waiters = joins * w.lineWaitSeconds;
  const near = Math.min(waiters, s.line.nearHead);
  const looks = (near * 1000) / s.line.nearLookMs + ((waiters - near) * 1000) / s.line.farLookMs;
  return { joins, waiters, looks, writes: 2 * joins + looks };
}

/** Items and indexes of the limits and requests tables: units a second and on the hottest partition. */
export function itemLoads(
  m: MeasuredInputs,
  s: StackInputs,
  w: Workload,
  routeInstances: number,
): ItemLoad[] {
  const r = w.requestsPerSecond;
  const queued = r * w.queuedShare;
  const refused = r * w.refusedShare;
  const admitted = r - refused;
  const userWrite = m.directUserItemWu / m.directCalls;
  const usageIndexPerSettle = m.settleWu - m.settleUserItemWu;
  // The decide's index writes: the typical request's, less its settle's (the sweep's mark).
  const sweepMarkPerRequest = m.directWu - m.directUserItemWu - usageIndexPerSettle;
  const shardPerRequest = m.globalWu - m.directWu - SETTLED_CHARGE_WRITES * userWrite;
  const itemReadRu = kb(m.scenarioUserItemBytes, 4096);
  const dayStarts = w.users / DAY_SECONDS; // an upper bound: every user active every day
  // Every admitted request: decide, claim, settle on the user's item (and, under global limits,
  // the settled charge forgotten); a queued one adds its enqueue and the processor's read of the
  // item; a refusal is one failed write at the item's size (by an instance that had not seen it).
  const userWu =
    admitted * (3 + w.globalShare * SETTLED_CHARGE_WRITES) * userWrite +
    queued * m.enqueueWu +
    refused * m.refusalWu;
  const userRu = queued * (m.enqueueRu + itemReadRu);
  const shards = stackShards(m, s, w);
  const shardWu = admitted * w.globalShare * shardPerRequest;
  const shardRu = admitted * w.globalShare * m.globalRu;
  const line = lineLoad(s, w);
  const lineItemWu = line.writes * m.lineEntryItemWu;
  const lineIndexWu = line.writes * (m.lineEntryWu - m.lineEntryItemWu);
  // Each join and look, and each route instance's view (once per `viewMs` while anyone waits: a
  // direct request under global limits checks the line), is one Query per bucket: 10 entries of
  // ~550 B, eventually consistent, 1 RU.
  const lineQueriesPerBucket =
    line.waiters > 0 ? line.joins + line.looks + routeInstances * (1000 / s.line.viewMs) : 0;
  const usageIndexWu = admitted * usageIndexPerSettle + dayStarts;
  const sweepWu = admitted * sweepMarkPerRequest * w.sweepWritesPerMark;
  const contentBytes = w.promptBytes + 200;
  const contentWu = queued * kb(contentBytes, 1024) * 2; // written once, deleted once
  const contentRu = queued * kb(contentBytes, 4096);
  const replyWu = admitted * w.keptReplyShare * kb(w.replyBytes + 200, 1024) * 2;
  // While a model runs, the runner looks for the user's stop: one strongly consistent Query of the
  // request's stop mark (1 RU, found or not) every stopPollMs; a mark is written only by a cancel.
  const stopRu = admitted * w.replySeconds * (1000 / s.stopPollMs);
  // A connection: the per-IP bucket's write, the record's put and delete, each with its byUser
  // index write (1 WU each: small items).
  const connWu = ((w.users * w.connectedShare) / w.sessionSeconds) * 5;
  const perUser = (kind: string, table: string, wu: number, ru: number, note: string): ItemLoad => ({
    kind,
    table,
    wuPerSecond: wu,
    ruPerSecond: ru,
    hottestPartitionWu: wu / w.users,
    hottestPartitionRu: ru / w.users,
    note,
  });
  const pct = (share: number) => `${(share * 100).toFixed(2)} %`;
  return [
    perUser(
      'user item',
      'Limits',
      userWu,
      userRu,
      `one per user; the issue's user ${m.scenarioUserItemBytes.toLocaleString('en-US')} B, the largest ${m.largestUserItemBytes.toLocaleString('en-US')} B (${kb(m.largestUserItemBytes, 1024)} WU a write); hottest = the average user`,
    ),
    {
      kind: 'global shard',
      table: 'Limits',
      wuPerSecond: shardWu,
      ruPerSecond: shardRu,
      hottestPartitionWu: shardWu / shards,
      hottestPartitionRu: shardRu / shards,
      note: `${shards.toLocaleString('en-US')} shards (${s.sharesPerShard} shares each, at most ${s.maxGlobalShards.toLocaleString('en-US')}); ${m.largestShardBytes.toLocaleString('en-US')} B at most`,
    },
    {
      kind: 'global line entry',
      table: 'Limits',
      wuPerSecond: lineItemWu,
      ruPerSecond: 0,
      hottestPartitionWu: line.waiters > 0 ? (1000 / s.line.nearLookMs) * m.lineEntryItemWu : 0,
      hottestPartitionRu: 0,
      note: `one per waiter, written by it alone: ${Math.round(line.waiters).toLocaleString('en-US')} waiting, ${line.writes.toFixed(0)} writes/s (joins, looks, leaves); ${m.largestLineBytes.toLocaleString('en-US')} B at most; hottest = a waiter near the head`,
    },
    {
      kind: 'byLine index',
      table: 'Limits (byLine)',
      wuPerSecond: lineIndexWu,
      ruPerSecond: lineQueriesPerBucket * s.line.buckets,
      hottestPartitionWu: lineIndexWu * s.line.hottestBucketShare,
      hottestPartitionRu: lineQueriesPerBucket,
      note: `${s.line.buckets} buckets, the hottest holding ${pct(s.line.hottestBucketShare)} of users; reads: every look and every route instance's view (${routeInstances.toFixed(0)} instances, once per ${s.line.viewMs.toLocaleString('en-US')} ms) query each bucket, 1 RU a Query`,
    },
    {
      kind: 'usage index entry',
      table: 'Limits (byDaySettled)',
      wuPerSecond: usageIndexWu,
      ruPerSecond: 0,
      hottestPartitionWu: usageIndexWu * s.hottestBucketShare,
      hottestPartitionRu: 0,
      note: `written by settles only (${usageIndexPerSettle.toFixed(2)} a settle, 1 more a user-day); ${s.usageBuckets} buckets, the hottest holding ${pct(s.hottestBucketShare)} of users`,
    },
    {
      kind: 'sweep index entry',
      table: 'Limits (bySweep)',
      wuPerSecond: sweepWu,
      ruPerSecond: 0,
      hottestPartitionWu: sweepWu * s.hottestSweepBucketShare,
      hottestPartitionRu: 0,
      note: `the decide's mark (${sweepMarkPerRequest.toFixed(2)} a request: once per episode, measured with 3 requests a user) and the sweep taking it out (assumed); ${s.sweepBuckets} buckets, the hottest holding ${pct(s.hottestSweepBucketShare)} of users`,
    },
    perUser(
      'request content',
      'Requests',
      contentWu,
      contentRu,
      `a ${w.promptBytes.toLocaleString('en-US')}-byte prompt, written and deleted once, read once`,
    ),
    perUser(
      'kept reply',
      'Requests',
      replyWu,
      0,
      `${w.keptReplyShare * 100} % of replies, written and deleted once`,
    ),
    perUser(
      'stop mark',
      'Requests',
      0,
      stopRu,
      `the runner's look for a user's stop every ${s.stopPollMs} ms of a ${w.replySeconds} s reply (1 RU a Query); written only by a cancel`,
    ),
    perUser(
      'usage history',
      'Requests',
      dayStarts,
      0,
      'one PutItem (~100 B) per user and active day, every user counted active every day',
    ),
    perUser(
      'connection',
      'Connections, Limits (per-IP)',
      connWu,
      0,
      `a ${w.sessionSeconds / 60}-minute session per connected user: bucket, put, delete, 2 index writes`,
    ),
  ];
}
