import { describe, expect, it } from 'vitest';
import { hottestBucketShare, measuredInputs } from '../../bench/scale-inputs';
import {
  type MeasuredInputs,
  type Prices,
  type StackInputs,
  scaleModel,
  type Workload,
} from '../../bench/scale-model';

const measured: MeasuredInputs = {
  backend: 'fixed',
  directWu: 6,
  directUserItemWu: 2,
  directCalls: 2,
  globalWu: 8,
  globalRu: 0.1,
  enqueueWu: 4,
  enqueueRu: 1,
  lineJoinWu: 10,
  largestUserItemBytes: 4_000,
  largestShardBytes: 500,
  largestLineBytes: 900,
  largestIndexEntryBytes: 62,
  routeMs: 100,
  runnerOverheadMs: 50,
};

const stack: StackInputs = {
  stageRateLimit: 100,
  processorConcurrency: 10,
  replyConcurrency: 100,
  accountConcurrency: 1_000,
  globalShards: 4,
  memoryMb: { route: 512, processor: 512, runner: 512, connect: 256 },
  chunkIntervalMs: 100,
  usageBuckets: 256,
  hottestBucketShare: 0.005,
};

const workload: Workload = {
  users: 100_000,
  requestsPerSecond: 1_000,
  queuedShare: 0.1,
  refusedShare: 0.1,
  globalShare: 1,
  lineShare: 0.01,
  lineWritesPerWaiter: 2,
  replySeconds: 2,
  replyBytes: 800,
  promptBytes: 800,
  keptReplyShare: 0.1,
  postsPerAdmitted: 2,
  extraPostsPerQueued: 3,
  sqsPerQueued: { SendMessage: 1, ReceiveMessage: 2 },
  processorBatchesPerQueued: 2,
  connectedShare: 0.6,
  sessionSeconds: 600,
  redisCommandsPerRequest: 10,
  redisCommandsPerNode: 100_000,
};

const prices: Prices = {
  dynamoWriteUnit: 1e-6,
  dynamoReadUnit: 0.5e-6,
  sqsFifoRequest: 0.5e-6,
  lambdaRequest: 0.2e-6,
  lambdaGbSecond: 0.00001,
  wsMessage: 1e-6,
  wsConnectionMinute: 0.25e-6,
  redisServerlessEcpu: 0.003e-6,
  redisServerlessGbHour: 0.1,
  redisServerlessMinGb: 1,
  redisNodeHour: 0.2,
};

const model = scaleModel(measured, stack, workload, prices);
const item = (kind: string) => model.items.find((i) => i.kind === kind)!;
const quota = (what: string) => model.quotas.find((q) => q.what === what)!;
const cost = (item: string) => model.costs.find((c) => c.item.startsWith(item))!;

describe('scaleModel', () => {
  it('adds up the units of every item kind: 900 admitted, 100 queued, 100 refused a second', () => {
    // user item: 900 × (decide, claim, settle) × 1 WU + 100 enqueues × 4 + 100 refusals × 1
    expect(item('user item')).toMatchObject({ wuPerSecond: 3_200, ruPerSecond: 200 });
    expect(item('global shard')).toMatchObject({ wuPerSecond: 1_800, hottestPartitionWu: 450 });
    expect(item('global shard').hottestPartitionRu).toBeCloseTo(22.5, 9);
    expect(item('global line')).toMatchObject({ wuPerSecond: 200, hottestPartitionWu: 200 });
    expect(item('usage index entry')).toMatchObject({ wuPerSecond: 3_600, hottestPartitionWu: 18 });
    expect(item('request content')).toMatchObject({ wuPerSecond: 200, ruPerSecond: 100 });
    expect(item('kept reply').wuPerSecond).toBeCloseTo(180, 9);
    expect(item('connection').wuPerSecond).toBe(500);
  });

  it('sets each quota against its demand', () => {
    expect(quota('DynamoDB partition: global shard').ratio).toBe(0.45);
    expect(quota('DynamoDB on-demand table: Limits (base table)').demand).toBe(5_200);
    expect(quota('SQS FIFO ReceiveMessage').demand).toBe(200);
    expect(quota('API Gateway stage throttle (sendMessage)').ratio).toBe(10);
    // 1,000 in + 900 × (2 messages + 20 chunks) + 100 × 3 queued notices + 100 refusals
    expect(quota('API Gateway account: routes + @connections posts').demand).toBe(21_200);
    expect(quota('API Gateway new connections').demand).toBe(100);
    expect(quota('Lambda reply runner (reserved)').demand).toBeCloseTo(1_845, 9);
    expect(quota('Lambda processor (event source maximum)')).toMatchObject({ demand: 200, limit: 100 });
    expect(quota('Lambda account concurrency').demand).toBeCloseTo(1_985, 9);
  });

  it('orders what breaks first by how far past its limit each quota is', () => {
    expect(model.breaksFirst.slice(0, 5).map((q) => q.what)).toEqual([
      'Lambda reply runner (reserved)',
      'API Gateway stage throttle (sendMessage)',
      'API Gateway account: routes + @connections posts',
      'Lambda processor (event source maximum)',
      'Lambda account concurrency',
    ]);
  });

  it('prices a million requests in both designs', () => {
    expect(cost('write request units').usd).toBeCloseTo(9.68, 9);
    expect(cost('read request units').usd).toBeCloseTo(0.195, 9);
    expect(cost('requests').perMillion).toBeCloseTo(300_000, 6);
    expect(cost('requests (route').perMillion).toBe(2_300_000);
    expect(cost('GB-seconds: routes').perMillion).toBeCloseTo(87_500, 6);
    expect(cost('messages: sendMessage').perMillion).toBeCloseTo(3_200_000, 6);
    expect(cost('connection minutes').perMillion).toBe(1_000_000);
    expect(model.usdPerMillion.ours).toBeCloseTo(14.81, 9);
    expect(model.usdPerMillion.redisNodes).toBeCloseTo(4.785 + 0.4 / 3.6, 9);
    expect(model.usdPerMillion.redisServerless).toBeCloseTo(4.785 + 0.03 + 0.1 / 3.6, 9);
    expect(model.usdPerMillion.stream).toBeCloseTo(27, 9);
  });
});

describe('measuredInputs', () => {
  it('refuses bench results that lack a row the model reads', () => {
    const rows = [{ metric: 'latency to first chunk p50', value: 80, unit: 'ms' }];
    expect(() => measuredInputs({ capacity: { ranAt: '', rows: [] }, gateway: { ranAt: '', rows } })).toThrow(
      'bench/results: no row "write units per decision, a typical user (decide + settle) [dynalite]"; re-run its bench part',
    );
  });
});

describe('hottestBucketShare', () => {
  it('finds the fullest usage-index bucket of 100,000 users: 453 of them (docs/performance.md)', () => {
    expect(hottestBucketShare(100_000)).toBe(0.00453);
  });
});
