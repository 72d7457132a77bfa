/**
 * What the scale model reads (bench/scale-model.ts): the measured rows of bench/results/*.json,
 * the stack's configuration, the stated workload and the prices. Kept apart from the arithmetic so
 * `npm run bench -- scale` and test/unit/scale-doc.test.ts build the same model from the same files.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { WAITERS_TTL_MS } from '../lambda/adapters/limiter/global-line';
import { DEFAULT_GLOBAL_SHARDS, MAX_GLOBAL_SHARDS } from '../lambda/core/limiter/global/limits';
import { LINE_BUCKETS, lineBucket } from '../lambda/core/limiter/global/line';
import { FAR_LOOK_MS, NEAR_HEAD } from '../lambda/core/limiter/global/priority';
import { SHARE_RECORDS_PER_SHARD } from '../lambda/core/limiter/global/share-record';
import { USAGE_BUCKETS, usageBucket } from '../lambda/core/limiter/plan/usage-key';
import { SWEEP_BUCKETS, sweepBucket } from '../lambda/core/queue/sweep';
import { FUNCTIONS } from '../lambda/core/resources/functions';
import { COALESCE_MS } from '../lambda/services/reply-channel';
import { DEFAULT_RUNNER_SETTINGS } from '../lambda/services/runner/deps';
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

const literal = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * The value of the one row whose metric is `name` on `backend` (`<name> [<backend>]`), `name` a
 * pattern whose `#` stands for any number and `…` for any text, so a count the bench part puts in
 * a name (77 shards, 100 waiters) may change. Throws when no row or several match: the model would
 * lie.
 */
export function rowValue(rows: readonly BenchRow[], name: string, backend?: string): number {
  const body = literal(name).replace(/#/g, '[0-9,]+').replace(/…/g, '.*');
  const pattern = new RegExp(`^${body}${backend === undefined ? '' : ` \\[${literal(backend)}\\]`}$`);
  const found = rows.filter((r) => pattern.test(r.metric));
  const what = `${name}${backend === undefined ? '' : ` [${backend}]`}`;
  if (found.length !== 1) {
    throw new Error(
      `bench/results: ${found.length === 0 ? 'no row' : `${found.length} rows`} "${what}"; re-run its bench part`,
    );
  }
  return found[0]!.value;
}

/** The number in a row's metric before `word` ("77 shards"), from the row matched as rowValue does. */
function countIn(rows: readonly BenchRow[], name: string, word: string): number {
  const metric = rows.find((r) =>
    new RegExp(`^${literal(name).replace(/#/g, '[0-9,]+')}`).test(r.metric),
  )?.metric;
  const count = metric?.match(new RegExp(`([0-9,]+) ${word}`))?.[1];
  if (count === undefined) throw new Error(`bench/results: no row "${name}"; re-run its bench part`);
  return Number(count.replace(/,/g, ''));
}

/** The issue 22 user: every per-user kind on, 1 in flight and 10 long prompts waiting. */
const ISSUE_USER = 'every per-user kind on, … long prompts waiting';
const GLOBAL = 'global limits on, # shards (decide + settle)';

/**
 * The measured inputs: capacity units from DynamoDB Local when the capacity part ran it (it counts
 * index writes, as AWS bills), else dynalite; the user item's and line entry's own writes from
 * dynalite. Where the issue's scenario (SPEC §9.2) has a row, it is the input: the enqueue, the
 * refusal and the item read are that user's.
 */
export function measuredInputs(sources: ScaleSources): MeasuredInputs {
  const cap = sources.capacity.rows;
  const backend = cap.some((r) => r.metric.endsWith('[DynamoDB Local]')) ? 'DynamoDB Local' : 'dynalite';
  const at = (name: string, on = backend) => rowValue(cap, name, on);
  const gw = sources.gateway.rows;
  const firstChunk = rowValue(gw, 'latency to first chunk p50');
  return {
    backend,
    directWu: at('write units per decision, a typical user (decide + settle)'),
    directUserItemWu: at('write units per decision, a typical user (decide + settle)', 'dynalite'),
    directCalls: 2,
    settleWu: at('write units per decision, settle'),
    settleUserItemWu: at('write units per decision, settle', 'dynalite'),
    globalWu: at(`write units per decision, ${GLOBAL}`),
    globalRu: at(`read units per decision, ${GLOBAL}`),
    globalShardsMeasured: countIn(cap, `write units per decision, ${GLOBAL}`, 'shards'),
    enqueueWu: at(`write units per decision, ${ISSUE_USER}, each of its # enqueues`),
    enqueueRu: at(`read units per decision, ${ISSUE_USER}, each of its # enqueues`),
    refusalWu: at(`write units per decision, ${ISSUE_USER}, a refusal by another instance`),
    lineEntryWu: at('write units per decision, global limits on, joining the line…, one line entry'),
    lineEntryItemWu: at(
      'write units per decision, global limits on, joining the line…, one line entry',
      'dynalite',
    ),
    largestUserItemBytes: at('largest user item'),
    scenarioUserItemBytes: at(`largest user item, ${ISSUE_USER}`),
    largestShardBytes: at('largest global shard'),
    largestLineBytes: at('largest global line entry'),
    largestIndexEntryBytes: at('largest usage-index entry'),
    routeMs: firstChunk,
    runnerOverheadMs: rowValue(gw, 'latency to message_complete p50') - firstChunk,
  };
}

/** The share of `users` (ids `user-0`…) in the fullest of a hash's buckets. */
export function hottestShare(users: number, buckets: number, bucketOf: (userId: string) => number): number {
  const counts = new Array<number>(buckets).fill(0);
  for (let i = 0; i < users; i++) counts[bucketOf(`user-${i}`)]! += 1;
  return Math.max(...counts) / users;
}

/** The share of `users` in the fullest usage-index bucket. */
export const hottestBucketShare = (users: number) => hottestShare(users, USAGE_BUCKETS, usageBucket);

/**
 * The stack as `cdk deploy` builds it with no configuration; the model derives the shards a stack
 * serving its load gets (scale-items.ts).
 */
export function stackInputs(users: number): StackInputs {
  const config = parseStackConfig({});
  return {
    stageRateLimit: config.throttle.rateLimit,
    processorConcurrency: config.processorConcurrency,
    replyConcurrency: config.replyConcurrency ?? config.accountConcurrency,
    accountConcurrency: config.accountConcurrency,
    globalShards: DEFAULT_GLOBAL_SHARDS,
    sharesPerShard: SHARE_RECORDS_PER_SHARD,
    stopPollMs: DEFAULT_RUNNER_SETTINGS.stopPollMs,
    maxGlobalShards: MAX_GLOBAL_SHARDS,
    line: {
      buckets: LINE_BUCKETS,
      hottestBucketShare: hottestShare(users, LINE_BUCKETS, lineBucket),
      nearHead: NEAR_HEAD,
      // The first NEAR_HEAD look again every 5 s (docs/limiter.md, "Priority when a global limit binds").
      nearLookMs: 5_000,
      farLookMs: FAR_LOOK_MS,
      viewMs: WAITERS_TTL_MS,
    },
    sweepBuckets: SWEEP_BUCKETS,
    hottestSweepBucketShare: hottestShare(users, SWEEP_BUCKETS, (id) => Number(sweepBucket(id))),
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
    lineWaitSeconds: 60,
    sweepWritesPerMark: 2,
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
