/**
 * What the scale model reads (bench/scale-model.ts): the measured rows of bench/results/*.json,
 * the stack's configuration, the stated workload and the prices. Kept apart from the arithmetic so
 * `npm run bench -- scale` and test/unit/scale-doc.test.ts build the same model from the same files.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_GLOBAL_SHARDS } from '../lambda/core/limiter/global/limits';
import { USAGE_BUCKETS, usageBucket } from '../lambda/core/limiter/plan/usage-key';
import { FUNCTIONS } from '../lambda/core/resources/functions';
import { COALESCE_MS } from '../lambda/services/reply-channel';
import { parseStackConfig } from '../lib/config';
import type { BenchRow } from './report';
import type { MeasuredInputs, Prices, StackInputs, Workload } from './scale-model';

/** The bench parts the model reads, by the name of their file in bench/results. */
export const SCALE_SOURCES = ['capacity', 'gateway'] as const;
export type ScaleSources = Record<
  (typeof SCALE_SOURCES)[number],
  { readonly ranAt: string; readonly rows: readonly BenchRow[] }
>;

/** bench/results/<part>.json of each source, as committed (or as a run left them). */
export function readScaleSources(dir = join(process.cwd(), 'bench', 'results')): ScaleSources {
  const read = (part: string) => JSON.parse(readFileSync(join(dir, `${part}.json`), 'utf8'));
  return { capacity: read('capacity'), gateway: read('gateway') };
}

/** A row's value by its metric; throws when a part no longer writes it (the model would lie). */
function value(rows: readonly BenchRow[], metric: string): number {
  const row = rows.find((r) => r.metric === metric);
  if (row === undefined) throw new Error(`bench/results: no row "${metric}"; re-run its bench part`);
  return row.value;
}

/**
 * The measured inputs: capacity units from DynamoDB Local when the capacity part ran it (it counts
 * index writes, as AWS bills), else dynalite; the user item's own writes from dynalite.
 */
export function measuredInputs(sources: ScaleSources): MeasuredInputs {
  const cap = sources.capacity.rows;
  const backend = cap.some((r) => r.metric.endsWith('[DynamoDB Local]')) ? 'DynamoDB Local' : 'dynalite';
  const at = (metric: string, on = backend) => value(cap, `${metric} [${on}]`);
  const gw = sources.gateway.rows;
  const firstChunk = value(gw, 'latency to first chunk p50');
  return {
    backend,
    directWu: at('write units per decision, a typical user (decide + settle)'),
    directUserItemWu: at('write units per decision, a typical user (decide + settle)', 'dynalite'),
    directCalls: 2,
    globalWu: at('write units per decision, global limits on, 4 shards (decide + settle)'),
    globalRu: at('read units per decision, global limits on, 4 shards (decide + settle)'),
    enqueueWu: at('write units per decision, the user with 10 long prompts waiting, each of its 10 enqueues'),
    enqueueRu: at('read units per decision, the user with 10 long prompts waiting, each of its 10 enqueues'),
    lineJoinWu: at('write units per decision, global limits on, joining a line of up to 100'),
    largestUserItemBytes: at('largest user item'),
    largestShardBytes: at('largest global shard'),
    largestLineBytes: at('largest global waiting line'),
    largestIndexEntryBytes: at('largest usage-index entry'),
    routeMs: firstChunk,
    runnerOverheadMs: value(gw, 'latency to message_complete p50') - firstChunk,
  };
}

/** The share of `users` (ids `user-0`…) in the fullest usage-index bucket. */
export function hottestBucketShare(users: number): number {
  const counts = new Array<number>(USAGE_BUCKETS).fill(0);
  for (let i = 0; i < users; i++) counts[usageBucket(`user-${i}`)]! += 1;
  return Math.max(...counts) / users;
}

/** The stack as `cdk deploy` builds it with no configuration, global limits on their default shards. */
export function stackInputs(users: number): StackInputs {
  const config = parseStackConfig({});
  return {
    stageRateLimit: config.throttle.rateLimit,
    processorConcurrency: config.processorConcurrency,
    replyConcurrency: config.replyConcurrency ?? config.accountConcurrency,
    accountConcurrency: config.accountConcurrency,
    globalShards: DEFAULT_GLOBAL_SHARDS,
    memoryMb: {
      route: FUNCTIONS.message.memoryMb,
      processor: FUNCTIONS.processor.memoryMb,
      runner: FUNCTIONS.reply.memoryMb,
      connect: FUNCTIONS.connect.memoryMb,
    },
    chunkIntervalMs: COALESCE_MS,
    usageBuckets: USAGE_BUCKETS,
    hottestBucketShare: hottestBucketShare(users),
  };
}

/** The workload docs/scale.md states: 100,000 users at 5,000 chat requests a second (× `scale`). */
export function typicalWorkload(scale: number): Workload {
  return {
    users: 100_000 * scale,
    requestsPerSecond: 5_000 * scale,
    queuedShare: 0.1,
    refusedShare: 0.05,
    globalShare: 1,
    lineShare: 0.01,
    lineWritesPerWaiter: 2,
    replySeconds: 10,
    replyBytes: 2_000,
    promptBytes: 1_000,
    keptReplyShare: 0.01,
    postsPerAdmitted: 2,
    extraPostsPerQueued: 3,
    sqsPerQueued: {
      SendMessage: 1,
      ReceiveMessage: 2,
      ChangeMessageVisibility: 3,
      DeleteMessage: 1,
      GetQueueAttributes: 1,
    },
    processorBatchesPerQueued: 2,
    connectedShare: 1,
    sessionSeconds: 1_800,
    redisCommandsPerRequest: 11,
    redisCommandsPerNode: 100_000,
  };
}

/** USD, us-east-1, looked up on 2026-12-03 (docs/scale.md "Prices" cites each). */
export const PRICES: Prices = {
  dynamoWriteUnit: 0.625 / 1e6,
  dynamoReadUnit: 0.125 / 1e6,
  sqsFifoRequest: 0.5 / 1e6,
  lambdaRequest: 0.2 / 1e6,
  lambdaGbSecond: 0.0000133334,
  wsMessage: 1 / 1e6,
  wsConnectionMinute: 0.25 / 1e6,
  redisServerlessEcpu: 0.0034 / 1e6,
  redisServerlessGbHour: 0.125,
  redisServerlessMinGb: 1,
  redisNodeHour: 0.219,
};
