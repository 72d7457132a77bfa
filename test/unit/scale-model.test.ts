import { describe, expect, it } from 'vitest';
import { hottestBucketShare, measuredInputs, rowValue } from '../../bench/scale-inputs';
import {
  type MeasuredInputs,
  type Prices,
  type StackInputs,
  scaleModel,
  type Workload,
} from '../../bench/scale-model';

// Issue 22's design: the settle alone writes the usage index (settleWu − settleUserItemWu = 3 here),
// the rest of the typical request's index writes are the sweep's mark (6 − 2 − 3 = 1); with global
// limits on a settle writes the user item once more, so the shards' part is 10 − 6 − 1 = 3.
const measured: MeasuredInputs = {
  backend: 'fixed',
  directWu: 6,
  directUserItemWu: 2,
  directCalls: 2,
  settleWu: 4,
  settleUserItemWu: 1,
  globalWu: 10,
  globalRu: 0.1,
  globalShardsMeasured: 77,
  enqueueWu: 4,
  enqueueRu: 1,
  refusalWu: 2,
  lineEntryWu: 3,
  lineEntryItemWu: 1,
  largestUserItemBytes: 4_000,
  scenarioUserItemBytes: 1_500,
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
  sharesPerShard: 13,
  maxGlobalShards: 100,
  stopPollMs: 500,
  line: {
    buckets: 4,
    hottestBucketShare: 0.3,
    nearHead: 10,
    nearLookMs: 5_000,
    farLookMs: 60_000,
    viewMs: 1_000,
  },
  sweepBuckets: 8,
  hottestSweepBucketShare: 0.15,
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
  lineWaitSeconds: 60,
  sweepWritesPerMark: 2,
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
    // user item: 900 × (decide, claim, settle, the settled charge forgotten) × 1 WU + 100 enqueues
    // × 4 + 100 refusals × 2; reads: 100 × (the enqueue's 1 + the processor's read of a 1,500 B item)
    expect(item('user item')).toMatchObject({ wuPerSecond: 4_200, ruPerSecond: 200 });
    // 900 × 3 shard WU over the shards 1,845 in flight need (142 at 13 each), capped at 100
    expect(item('global shard')).toMatchObject({ wuPerSecond: 2_700, hottestPartitionWu: 27 });
    expect(item('global shard').hottestPartitionRu).toBeCloseTo(0.9, 9);
    expect(model.globalShards).toBe(100);
    // the line: 10 joins a second waiting 60 s (600 waiting): 2 × 10 joins and leaves, the first 10
    // looking every 5 s (2/s), 590 every minute; each write 1 WU on the waiter's own item, 2 on byLine
    expect(model.lineWaiters).toBe(600);
    expect(item('global line entry').wuPerSecond).toBeCloseTo(20 + 2 + 590 / 60, 9);
    expect(item('global line entry').hottestPartitionWu).toBeCloseTo(0.2, 9);
    expect(item('byLine index').wuPerSecond).toBeCloseTo(2 * (20 + 2 + 590 / 60), 9);
    expect(item('byLine index').hottestPartitionWu).toBeCloseTo(0.3 * 2 * (20 + 2 + 590 / 60), 9);
    // reads per bucket: 10 joins, 2 + 590/60 looks, 100 route instances' views a second
    expect(item('byLine index').hottestPartitionRu).toBeCloseTo(10 + 2 + 590 / 60 + 100, 9);
    expect(item('byLine index').ruPerSecond).toBeCloseTo(4 * (10 + 2 + 590 / 60 + 100), 9);
    // 900 settles × 3 + one entry a user-day
    expect(item('usage index entry').wuPerSecond).toBeCloseTo(2_700 + 100_000 / 86_400, 9);
    expect(item('usage index entry').hottestPartitionWu).toBeCloseTo(0.005 * (2_700 + 100_000 / 86_400), 9);
    expect(item('sweep index entry')).toMatchObject({ wuPerSecond: 1_800, hottestPartitionWu: 270 });
    expect(item('request content')).toMatchObject({ wuPerSecond: 200, ruPerSecond: 100 });
    expect(item('kept reply').wuPerSecond).toBeCloseTo(180, 9);
    // 900 replies of 2 s, each looking for its stop every 500 ms: 1 RU a look, nothing written
    expect(item('stop mark')).toMatchObject({ wuPerSecond: 0, ruPerSecond: 3_600 });
    expect(item('usage history').wuPerSecond).toBeCloseTo(100_000 / 86_400, 9);
    expect(item('connection').wuPerSecond).toBe(500);
  });

  it('sets each quota against its demand', () => {
    expect(quota('DynamoDB partition: global shard').ratio).toBe(0.027);
    expect(quota('DynamoDB partition: sweep index entry').ratio).toBe(0.27);
    // user items, shards and the waiters' own line entries
    expect(quota('DynamoDB on-demand table: Limits (base table)').demand).toBeCloseTo(
      4_200 + 2_700 + 20 + 2 + 590 / 60,
      9,
    );
    expect(quota('DynamoDB on-demand table: bySweep index').demand).toBe(1_800);
    // the Requests table's reads: contents 100 + stop marks 3,600
    expect(quota('DynamoDB on-demand table: Requests (reads)').demand).toBe(3_700);
    // 1,845 requests in flight, each a share, against 100 shards × 13
    const shares = quota('global shards: requests in flight (shares)');
    expect(shares.demand).toBeCloseTo(1_845, 9);
    expect(shares.limit).toBe(1_300);
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
    expect(model.breaksFirst.slice(0, 6).map((q) => q.what)).toEqual([
      'Lambda reply runner (reserved)',
      'API Gateway stage throttle (sendMessage)',
      'API Gateway account: routes + @connections posts',
      'Lambda processor (event source maximum)',
      'Lambda account concurrency',
      'global shards: requests in flight (shares)',
    ]);
  });

  it('prices a million requests in both designs', () => {
    // the item kinds' WU/s above (12,375.5 + 2 × 100,000 / 86,400) × 1,000 s × $1 per million
    const wu = 12_375.5 + 200_000 / 86_400;
    expect(cost('write request units').usd).toBeCloseTo(wu / 1_000, 9);
    // RU/s: user items 200, shards 90, byLine 4 × (121 + 5/6), contents 100, stop marks 3,600
    const ru = 200 + 90 + 4 * (121 + 5 / 6) + 100 + 3_600;
    expect(cost('read request units').usd).toBeCloseTo(ru / 2_000, 9);
    expect(cost('requests').perMillion).toBeCloseTo(300_000, 6);
    expect(cost('requests (route').perMillion).toBe(2_300_000);
    expect(cost('GB-seconds: routes').perMillion).toBeCloseTo(87_500, 6);
    expect(cost('messages: sendMessage').perMillion).toBeCloseTo(3_200_000, 6);
    expect(cost('connection minutes').perMillion).toBe(1_000_000);
    expect(model.usdPerMillion.ours).toBeCloseTo(wu / 1_000 + ru / 2_000 + 0.15 + 4.785, 9);
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

  it('reads a row by the stable part of its name, whatever count the bench put in it', () => {
    const rows = [
      {
        metric: 'write units per decision, global limits on, 77 shards (decide + settle) [dynalite]',
        value: 5,
        unit: 'WU',
      },
      { metric: 'largest user item [dynalite]', value: 4_137, unit: 'bytes' },
      {
        metric: 'largest user item, every per-user kind on, 1 in flight [dynalite]',
        value: 1_665,
        unit: 'bytes',
      },
    ];
    expect(
      rowValue(rows, 'write units per decision, global limits on, # shards (decide + settle)', 'dynalite'),
    ).toBe(5);
    expect(rowValue(rows, 'largest user item', 'dynalite')).toBe(4_137);
    expect(rowValue(rows, 'largest user item, every per-user kind on, …', 'dynalite')).toBe(1_665);
    expect(() =>
      rowValue(
        [...rows, rows[0]!],
        'write units per decision, global limits on, # shards (decide + settle)',
        'dynalite',
      ),
    ).toThrow(
      'bench/results: 2 rows "write units per decision, global limits on, # shards (decide + settle) [dynalite]"; re-run its bench part',
    );
  });
});

describe('hottestBucketShare', () => {
  it('finds the fullest usage-index bucket of 100,000 users: 453 of them (docs/performance.md)', () => {
    expect(hottestBucketShare(100_000)).toBe(0.00453);
  });
});
