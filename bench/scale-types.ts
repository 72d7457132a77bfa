/** The scale model's inputs and outputs (bench/scale-model.ts). */

/** What the other bench parts measured (bench/results/*.json), as the model uses it. */
export interface MeasuredInputs {
  /** The backend the units come from (DynamoDB Local counts index writes; dynalite does not). */
  readonly backend: string;
  /** WU of a typical user's decide + settle, index writes included. */
  readonly directWu: number;
  /** The same on a backend that leaves index writes out (dynalite): the user item's own writes. */
  readonly directUserItemWu: number;
  /** Calls of that decide + settle (2): user item writes, to price one (e.g. the runner's claim). */
  readonly directCalls: number;
  /** WU of a typical settle, index writes included, and on dynalite: the difference is `byDaySettled`'s. */
  readonly settleWu: number;
  readonly settleUserItemWu: number;
  /**
   * WU of decide + settle with global limits on: minus the typical decide + settle and the
   * settle's one more user-item write (the settled charge forgotten), the shard writes.
   */
  readonly globalWu: number;
  /** RU of decide + settle with global limits on. */
  readonly globalRu: number;
  /** The shards that row ran on (the capacity bench's stack: ceil(1,000 in flight / 13)). */
  readonly globalShardsMeasured: number;
  /** WU and RU of one enqueue (the issue's user: every per-user kind on, 10 long prompts waiting). */
  readonly enqueueWu: number;
  readonly enqueueRu: number;
  /** WU of a refusal by an instance that had not seen the item (the same user): a failed write. */
  readonly refusalWu: number;
  /** WU of one write of a waiter's own line entry, index write included, and on dynalite (without). */
  readonly lineEntryWu: number;
  readonly lineEntryItemWu: number;
  /** Bytes of the largest item of each kind after the capacity scenarios. */
  readonly largestUserItemBytes: number;
  /** Bytes of the issue's user item (every per-user kind on, 10 long prompts waiting). */
  readonly scenarioUserItemBytes: number;
  readonly largestShardBytes: number;
  readonly largestLineBytes: number;
  readonly largestIndexEntryBytes: number;
  /** Route function duration: local gateway, time to the first chunk p50 (ms). */
  readonly routeMs: number;
  /** The runner's own work: local gateway, message_complete p50 − first chunk p50 (ms). */
  readonly runnerOverheadMs: number;
}

/** What the stack is configured with (lib/config.ts, lambda/core/resources, the reply channel). */
export interface StackInputs {
  readonly stageRateLimit: number;
  readonly processorConcurrency: number;
  readonly replyConcurrency: number;
  readonly accountConcurrency: number;
  /**
   * Global shards: the configured default, the shares one holds, the most a stack may have. The
   * stack's count is max(configured, ceil(requests in flight / sharesPerShard)) (lib/config.ts
   * withShardsForReplies: the runners' concurrency when no requestsInFlight is set), at most the cap.
   */
  readonly globalShards: number;
  readonly sharesPerShard: number;
  readonly maxGlobalShards: number;
  /** How often the reply runner looks for the user's stop while a model runs (one Query each). */
  readonly stopPollMs: number;
  /**
   * The global line (lambda/core/limiter/global/line.ts): index buckets, the share of users in
   * the fullest, the first `nearHead` waiters looking every `nearLookMs`, the rest every
   * `farLookMs`; every instance deciding direct requests reads each bucket's head once per `viewMs`.
   */
  readonly line: {
    readonly buckets: number;
    readonly hottestBucketShare: number;
    readonly nearHead: number;
    readonly nearLookMs: number;
    readonly farLookMs: number;
    readonly viewMs: number;
  };
  /** The sweep index `bySweep`: buckets and the share of users in the fullest. */
  readonly sweepBuckets: number;
  readonly hottestSweepBucketShare: number;
  /** Memory (MB) of the message, processor, reply runner, authorizer and connect functions. */
  readonly memoryMb: {
    readonly route: number;
    readonly processor: number;
    readonly runner: number;
    readonly connect: number;
  };
  /** The reply channel posts at most one chunk per this many ms. */
  readonly chunkIntervalMs: number;
  /** Index buckets and the share of users in the hottest one (usageBucket over the model's users). */
  readonly usageBuckets: number;
  readonly hottestBucketShare: number;
}

/** The workload the model assumes (docs/scale.md states each). */
export interface Workload {
  readonly users: number;
  readonly requestsPerSecond: number;
  /** Shares of chat requests: queued (then replayed), refused; the rest are admitted at once. */
  readonly queuedShare: number;
  readonly refusedShare: number;
  /** Share of admitted requests under global limits, and of requests that wait in the global line. */
  readonly globalShare: number;
  readonly lineShare: number;
  /** How long a request waits in the global line on average (s): waiters = joins a second × this. */
  readonly lineWaitSeconds: number;
  /** `bySweep` writes per mark the decide makes: the mark, and the sweep taking the user out. */
  readonly sweepWritesPerMark: number;
  /** The reply: seconds of streaming (the runner's wall time) and bytes. */
  readonly replySeconds: number;
  readonly replyBytes: number;
  readonly promptBytes: number;
  /** Share of replies kept for `resume` (nobody connected when it ended). */
  readonly keptReplyShare: number;
  /** Server messages besides chunks: admitted (accepted, complete), queued (+ queued, positions, started). */
  readonly postsPerAdmitted: number;
  readonly extraPostsPerQueued: number;
  /** SQS calls per queued request, by action (docs/queue.md: the wake-up's life). */
  readonly sqsPerQueued: Readonly<Record<string, number>>;
  /** Processor batches per queued request (one deferral, then the admit). */
  readonly processorBatchesPerQueued: number;
  /** Users connected at the peak, and how long a connection lasts on average (s). */
  readonly connectedShare: number;
  readonly sessionSeconds: number;
  /** Redis commands per chat request of a typical Redis limiter (one per limit, + reconcile). */
  readonly redisCommandsPerRequest: number;
  /** Commands a second one cache.r7g.large primary is assumed to serve for such scripts. */
  readonly redisCommandsPerNode: number;
}

/** USD prices, us-east-1 (docs/scale.md names the date and the source of each). */
export interface Prices {
  readonly dynamoWriteUnit: number;
  readonly dynamoReadUnit: number;
  readonly sqsFifoRequest: number;
  readonly lambdaRequest: number;
  readonly lambdaGbSecond: number;
  readonly wsMessage: number;
  readonly wsConnectionMinute: number;
  readonly redisServerlessEcpu: number;
  readonly redisServerlessGbHour: number;
  readonly redisServerlessMinGb: number;
  readonly redisNodeHour: number;
}

/** One item kind's load: units a second in all, and on its hottest partition. */
export interface ItemLoad {
  readonly kind: string;
  readonly table: string;
  readonly wuPerSecond: number;
  readonly ruPerSecond: number;
  readonly hottestPartitionWu: number;
  readonly hottestPartitionRu: number;
  readonly note: string;
}

/** A quota and what the model asks of it; `ratio` > 1 breaks. */
export interface QuotaCheck {
  readonly what: string;
  readonly demand: number;
  readonly limit: number;
  readonly unit: string;
  readonly ratio: number;
  readonly setting: string;
}

/** A line of the bill: quantity per million chat requests × price. */
export type CostPart = 'limiting' | 'stream' | 'serverless';

export interface CostLine {
  /** `both`: the same in either design (gateway, functions, the reply stream). */
  readonly design: 'chat-limiter' | 'Redis' | 'both';
  readonly service: string;
  readonly item: string;
  readonly perMillion: number;
  readonly unit: string;
  readonly usd: number;
  /**
   * Which total it is in: the limiting layer; the reply's streaming (the same for any design, out
   * of the totals); or Redis Serverless, the alternative to the node pair.
   */
  readonly part: CostPart;
}

export interface ScaleModel {
  readonly workload: Workload;
  readonly items: readonly ItemLoad[];
  readonly quotas: readonly QuotaCheck[];
  /** Quotas sorted by ratio, highest first: what breaks first. */
  readonly breaksFirst: readonly QuotaCheck[];
  readonly costs: readonly CostLine[];
  /** The shards a stack serving the load has, and the users waiting in the global line. */
  readonly globalShards: number;
  readonly lineWaiters: number;
  readonly usdPerMillion: {
    readonly ours: number;
    readonly redisNodes: number;
    readonly redisServerless: number;
    readonly stream: number;
  };
}
