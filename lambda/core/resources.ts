/**
 * The one definition of the project's AWS resources: tables, queues, WebSocket routes, functions and
 * the environment variable names that connect them. `lib/` (the CDK stack) and `local/` (the local
 * stack) both build from these values, so the two cannot drift apart. Plain data only: no AWS SDK
 * and no CDK imports, so Lambda code can read it too.
 */

/** Environment variable names read by Lambda code. Set by `lib/` in AWS and by `local/` here. */
export const ENV = {
  limitsTable: 'LIMITS_TABLE_NAME',
  connectionsTable: 'CONNECTIONS_TABLE_NAME',
  requestsTable: 'REQUESTS_TABLE_NAME',
  requestQueueUrl: 'REQUEST_QUEUE_URL',
  /** The processor moves requests that failed for good here itself (see QUEUES.requests). */
  deadLetterQueueUrl: 'DEAD_LETTER_QUEUE_URL',
  /** `https://{api}.execute-api.{region}.amazonaws.com/{stage}` or `http://localhost:PORT/local`. */
  wsManagementEndpoint: 'WS_MANAGEMENT_ENDPOINT',
  /** Local only: point the SDK clients at emulators. Never set in AWS. */
  dynamodbEndpoint: 'DYNAMODB_ENDPOINT',
  sqsEndpoint: 'SQS_ENDPOINT',
  /** JSON of the tier limits ({@link TierLimitsConfig} in lambda/core/limiter). Not secret. */
  limitsConfig: 'LIMITS_CONFIG',
  /** `open` | `closed`: what the limiter does when DynamoDB fails or times out. */
  failPolicy: 'LIMITER_FAIL_POLICY',
  limiterTimeoutMs: 'LIMITER_TIMEOUT_MS',
  /** How long the store must stay silent (with faults) before the limiter's breaker opens. */
  breakerSilenceMs: 'LIMITER_BREAKER_SILENCE_MS',
  connectLimitPerMinute: 'CONNECT_LIMIT_PER_MINUTE',
  maxMessageChars: 'MAX_MESSAGE_CHARS',
  maxQueuedPerUser: 'MAX_QUEUED_PER_USER',
  maxQueueWaitSeconds: 'MAX_QUEUE_WAIT_SECONDS',
  model: 'MODEL',
  bedrockModelId: 'BEDROCK_MODEL_ID',
  /** The configured model's maximum output tokens: caps every output allowance. */
  modelMaxOutputTokens: 'MODEL_MAX_OUTPUT_TOKENS',
  echoDelayMs: 'ECHO_DELAY_MS',
  /** Local only: how many times the echo model repeats the message (long and large replies). */
  echoRepeat: 'ECHO_REPEAT',
  /** The reply runner's function name, for the functions that hand replies to it. */
  replyFunctionName: 'REPLY_FUNCTION_NAME',
  /** Local only: the Lambda Invoke API of the local gateway. Never set in AWS. */
  lambdaEndpoint: 'LAMBDA_ENDPOINT',
  /** Local only: the HS256 secret itself. In AWS the secret lives in Secrets Manager. */
  jwtSecret: 'JWT_SECRET',
  /** AWS: ARN of the Secrets Manager secret holding the HS256 secret. */
  jwtSecretArn: 'JWT_SECRET_ARN',
  /** OIDC mode: the issuer URL; its JWKS is fetched from `${issuer}/.well-known/jwks.json` or JWT_JWKS_URL. */
  jwtIssuer: 'JWT_ISSUER',
  jwtJwksUrl: 'JWT_JWKS_URL',
  jwtAudience: 'JWT_AUDIENCE',
} as const;

export type EnvName = (typeof ENV)[keyof typeof ENV];

/** Attribute types as DynamoDB spells them. */
export type KeyType = 'S' | 'N';

export interface KeyDefinition {
  readonly name: string;
  readonly type: KeyType;
}

export interface IndexDefinition {
  readonly indexName: string;
  readonly partitionKey: KeyDefinition;
  readonly sortKey?: KeyDefinition;
  /**
   * Project only the keys and these attributes (small index entries, cheap index writes); an
   * empty list projects the keys only. @default all
   */
  readonly include?: readonly string[];
}

export interface TableDefinition {
  /** Logical id in the stack and base name of the local table. */
  readonly id: string;
  readonly env: EnvName;
  readonly partitionKey: KeyDefinition;
  readonly sortKey?: KeyDefinition;
  /** Attribute holding the expiry in epoch seconds. Emulators do not expire: readers filter. */
  readonly ttlAttribute?: string;
  readonly globalIndexes?: readonly IndexDefinition[];
}

/** Name of the TTL attribute in every table: DynamoDB TTL is epoch seconds. */
export const TTL_ATTRIBUTE = 'ttlEpochSeconds';

export const TABLES = {
  /**
   * One item per rate-limited subject (`user#<id>`, `ip#<addr>`): every limit counter, the user's
   * tier and override, and the user's waiting queue, so one conditional write decides everything.
   */
  limits: {
    id: 'Limits',
    env: ENV.limitsTable,
    partitionKey: { name: 'pk', type: 'S' },
    ttlAttribute: TTL_ATTRIBUTE,
    globalIndexes: [
      {
        // `admin top`: today's users by tokens, without a scan. Sparse (only user items carry
        // `ud`, the usage day and one of 16 buckets, set by every admission), keys and the day's
        // counters only; docs/admin.md has what it costs.
        indexName: 'byDayUsage',
        partitionKey: { name: 'ud', type: 'S' },
        sortKey: { name: 'tu', type: 'N' },
        include: ['td', 'cd', 'cu', 'dw', 'dc'],
      },
      {
        // The self-healing sweep: users whose item holds state needing an end (a waiting list,
        // an active request, in-flight slots), by bucket (`sw`, one of 8) and the instant to look
        // after (`sa`); no scan. Sparse and keys only: lambda/core/queue/sweep.ts.
        indexName: 'bySweep',
        partitionKey: { name: 'sw', type: 'S' },
        sortKey: { name: 'sa', type: 'N' },
        include: [],
      },
    ],
  },
  /** Live WebSocket connections, found by user through `byUser`. */
  connections: {
    id: 'Connections',
    env: ENV.connectionsTable,
    partitionKey: { name: 'connectionId', type: 'S' },
    ttlAttribute: TTL_ATTRIBUTE,
    globalIndexes: [
      {
        indexName: 'byUser',
        partitionKey: { name: 'userId', type: 'S' },
        sortKey: { name: 'connectedAtEpochMs', type: 'N' },
      },
    ],
  },
  /** Queued request records, queue counters and undelivered replies (pk/sk single-table layout). */
  requests: {
    id: 'Requests',
    env: ENV.requestsTable,
    partitionKey: { name: 'pk', type: 'S' },
    sortKey: { name: 'sk', type: 'S' },
    ttlAttribute: TTL_ATTRIBUTE,
  },
} as const satisfies Record<string, TableDefinition>;

export type TableKey = keyof typeof TABLES;

export interface QueueDefinition {
  readonly id: string;
  /** Base name; FIFO queue names end in `.fifo`. */
  readonly name: string;
  readonly fifo: boolean;
  readonly contentBasedDeduplication: boolean;
  readonly visibilityTimeoutSeconds: number;
  readonly retentionSeconds: number;
  /** Receives before a message moves to the dead-letter queue. */
  readonly maxReceiveCount?: number;
  /** Key in {@link QUEUES} of this queue's dead-letter queue. */
  readonly deadLetterQueue?: string;
  readonly env?: EnvName;
}

export const QUEUES = {
  /**
   * Requests waiting for the limiter; group = user, so a user's requests never overtake each other.
   * Deferrals re-receive a message, so the receive budget is sized for a 900 s wait at one retry
   * per 3 s refill, with headroom. Requests that fail for good do not burn this budget: the
   * processor moves them to the DLQ itself and tells the user; redrive is the backstop for crashes.
   */
  requests: {
    id: 'RequestQueue',
    name: 'chat-limiter-requests.fifo',
    fifo: true,
    contentBasedDeduplication: false,
    visibilityTimeoutSeconds: 120,
    retentionSeconds: 4 * 24 * 3600,
    maxReceiveCount: 500,
    deadLetterQueue: 'dlq',
    env: ENV.requestQueueUrl,
  },
  dlq: {
    id: 'RequestDeadLetterQueue',
    name: 'chat-limiter-requests-dlq.fifo',
    fifo: true,
    contentBasedDeduplication: false,
    visibilityTimeoutSeconds: 120,
    retentionSeconds: 14 * 24 * 3600,
    env: ENV.deadLetterQueueUrl,
  },
} as const satisfies Record<string, QueueDefinition>;

export type QueueKey = keyof typeof QUEUES;

/** WebSocket route selection, as in API Gateway: `$request.body.action`. */
export const ROUTE_SELECTION_EXPRESSION = '$request.body.action';

/** The DynamoDB actions a function can be granted on a table's items. */
export type TableAction =
  | 'dynamodb:GetItem'
  | 'dynamodb:PutItem'
  | 'dynamodb:UpdateItem'
  | 'dynamodb:DeleteItem'
  | 'dynamodb:Query';

/** The SQS actions a function can be granted on a queue. */
export type QueueAction =
  | 'sqs:SendMessage'
  | 'sqs:ReceiveMessage'
  | 'sqs:DeleteMessage'
  | 'sqs:ChangeMessageVisibility'
  | 'sqs:GetQueueAttributes';

/**
 * What a function may do to one table: `actions` on the table, `indexActions` on its global
 * secondary indexes. The stack grants exactly these, so the list is the function's whole access.
 */
export interface TableAccess {
  readonly table: TableKey;
  readonly actions: readonly TableAction[];
  readonly indexActions?: readonly 'dynamodb:Query'[];
  /** The indexes `indexActions` apply to. @default every index of the table */
  readonly indexes?: readonly string[];
}

export interface QueueAccess {
  readonly queue: QueueKey;
  readonly actions: readonly QueueAction[];
}

/**
 * Lambda functions: entry file (relative to the repository root) and exported handler name, the
 * tables and queues each one uses with the actions it calls on them (the constructs grant exactly
 * these, nothing broader), and the routes it serves.
 */
export interface FunctionDefinition {
  readonly id: string;
  readonly entry: string;
  readonly handler: string;
  readonly tables: readonly TableAccess[];
  readonly queues?: readonly QueueAccess[];
  /** Needs `execute-api:ManageConnections` on the stage. */
  readonly postsToConnections?: boolean;
  /** Functions it invokes asynchronously (`lambda:InvokeFunction`, their name in its environment). */
  readonly invokes?: readonly 'reply'[];
  /** How Lambda handles its asynchronous (`Event`) invocations. @default Lambda's: 2 retries, 6 h, no destination */
  readonly asyncInvoke?: AsyncInvokeDefinition;
  readonly timeoutSeconds: number;
  readonly memoryMb: number;
}

/**
 * A function's asynchronous invocation settings (an `AWS::Lambda::EventInvokeConfig` in AWS; the
 * local gateway's Invoke API honours the same): Lambda retries a failed or timed-out invocation
 * `retryAttempts` times (after 1 min, then 2 min), never starts an event older than
 * `maxEventAgeSeconds`, and sends the record of an event it gives up on to `onFailure`
 * (https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-error-handling.html).
 */
export interface AsyncInvokeDefinition {
  /** 60–21600: an event not started within this age is dropped (to `onFailure`). */
  readonly maxEventAgeSeconds: number;
  /** 0–2: retries of an invocation that failed or timed out. */
  readonly retryAttempts: number;
  /** The function invoked with Lambda's invocation record of a failed or dropped event. */
  readonly onFailure?: 'replyFailure';
}

/** API Gateway waits at most this long for a WebSocket route integration (a fixed quota). */
export const ROUTE_INTEGRATION_TIMEOUT_SECONDS = 29;

/**
 * What the limiter calls on the limits table (dynamo-limiter.ts): consistent reads and
 * conditional updates of one item per user; the waiting queue lives in the same item.
 */
const LIMITER_ACTIONS = ['dynamodb:GetItem', 'dynamodb:UpdateItem'] as const satisfies readonly TableAction[];

/** Replies kept for `resume` (reply-store.ts): kept, listed by user and dropped once delivered. */
const REPLY_STORE_ACTIONS = [
  'dynamodb:PutItem',
  'dynamodb:Query',
  'dynamodb:DeleteItem',
] as const satisfies readonly TableAction[];

/**
 * Replies find the user's other connections (`byUser` index) and drop a connection that is gone
 * (notifier.ts: a GoneException removes the record).
 */
const REPLY_CONNECTIONS = {
  table: 'connections',
  actions: ['dynamodb:DeleteItem'],
  indexActions: ['dynamodb:Query'],
} as const satisfies TableAccess;

export const FUNCTIONS = {
  authorizer: {
    id: 'Authorizer',
    entry: 'lambda/handlers/authorizer.ts',
    handler: 'handler',
    tables: [],
    timeoutSeconds: 5,
    memoryMb: 256,
  },
  connect: {
    id: 'Connect',
    entry: 'lambda/handlers/connect.ts',
    handler: 'handler',
    tables: [
      // The per-IP connection bucket: one conditional UpdateItem, a GetItem when a failed
      // condition comes back without the item (emulators).
      { table: 'limits', actions: ['dynamodb:UpdateItem', 'dynamodb:GetItem'] },
      { table: 'connections', actions: ['dynamodb:PutItem'] },
    ],
    timeoutSeconds: 10,
    memoryMb: 256,
  },
  disconnect: {
    id: 'Disconnect',
    entry: 'lambda/handlers/disconnect.ts',
    handler: 'handler',
    tables: [{ table: 'connections', actions: ['dynamodb:DeleteItem'] }],
    timeoutSeconds: 10,
    memoryMb: 256,
  },
  /** Serves every chat route (`sendMessage`, `status`, `cancel`, `resume`, `ping`, `$default`). */
  message: {
    id: 'Message',
    entry: 'lambda/handlers/message.ts',
    handler: 'handler',
    tables: [
      { table: 'limits', actions: LIMITER_ACTIONS },
      REPLY_CONNECTIONS,
      { table: 'requests', actions: REPLY_STORE_ACTIONS },
    ],
    // Wake-ups for the processor, and the queue's own counters for `totalInQueue`.
    // A hand-off that fails settles the request at once, and that settle may free a slot a parked
    // wake-up waits for: it makes the wake-up visible (ChangeMessageVisibility).
    queues: [
      {
        queue: 'requests',
        actions: ['sqs:SendMessage', 'sqs:GetQueueAttributes', 'sqs:ChangeMessageVisibility'],
      },
    ],
    postsToConnections: true,
    // It decides and hands an admitted request to the reply runner: it never waits for a model,
    // so it stays well inside API Gateway's 29 s.
    invokes: ['reply'],
    timeoutSeconds: 20,
    memoryMb: 512,
  },
  processor: {
    id: 'QueueProcessor',
    entry: 'lambda/handlers/processor.ts',
    handler: 'handler',
    tables: [
      { table: 'limits', actions: LIMITER_ACTIONS },
      REPLY_CONNECTIONS,
      // A finished reply nobody was connected for is kept for `resume`.
      { table: 'requests', actions: ['dynamodb:PutItem'] },
    ],
    queues: [
      // Receive, delete and read attributes: what the SQS event source mapping needs (and the
      // counters for `totalInQueue`); changing visibility: deferring a request until the limiter
      // admits it.
      {
        queue: 'requests',
        actions: [
          'sqs:ReceiveMessage',
          'sqs:DeleteMessage',
          'sqs:GetQueueAttributes',
          'sqs:ChangeMessageVisibility',
        ],
      },
      // Requests that failed for good are moved to the DLQ by the processor itself.
      { queue: 'dlq', actions: ['sqs:SendMessage'] },
    ],
    postsToConnections: true,
    // It admits the head of a user's queue and hands it to the reply runner; its longest wait is
    // an in-process sleep of at most 10 s before a short decision.
    invokes: ['reply'],
    timeoutSeconds: 30,
    memoryMb: 512,
  },
  /**
   * The reply runner: streams an admitted request's reply, settles its tokens and releases what it
   * holds. Invoked asynchronously by the message function (direct requests) and the processor
   * (queued ones), never behind a route, so a reply may take as long as the model needs. Its
   * Timeout covers the longest reply a configured model can produce (docs/architecture.md).
   */
  reply: {
    id: 'ReplyRunner',
    entry: 'lambda/handlers/reply.ts',
    handler: 'handler',
    tables: [
      // Settling the reservation (and, for a queued request, ending it as the user's active one).
      { table: 'limits', actions: LIMITER_ACTIONS },
      REPLY_CONNECTIONS,
      // A finished reply nobody was connected for is kept for `resume`; a reply whose settle could
      // not land is kept (`produced#`) for the attempt that settles it, which reads and drops it.
      { table: 'requests', actions: ['dynamodb:PutItem', 'dynamodb:Query', 'dynamodb:DeleteItem'] },
    ],
    queues: [
      // A queued request's wake-up is held in flight while its reply runs, and released after.
      { queue: 'requests', actions: ['sqs:ChangeMessageVisibility'] },
      // A queued request that fails for good goes to the DLQ with its reason.
      { queue: 'dlq', actions: ['sqs:SendMessage'] },
    ],
    postsToConnections: true,
    asyncInvoke: {
      // The request holds its in-flight slot for the runner's Timeout + 60 s (960 s) from its
      // admission; after that the slot may be another request's, so an event must never start
      // late. 300 s: an event that starts at that age still has 660 s of lease (the runner stops
      // the model 15 s before the lease ends), and an event Lambda cannot start in 5 minutes
      // (throttled at the runner's reserved concurrency, or lost) is reported to `replyFailure`,
      // which settles the request and tells the user, 11 minutes before the lease would lapse.
      maxEventAgeSeconds: 300,
      // One retry (after about a minute): a runner that crashed early (an init error, a lost
      // instance) runs once more on the same reservation, charged once; a runner that failed
      // late is past the maximum age by its retry and goes to `replyFailure` instead.
      retryAttempts: 1,
      onFailure: 'replyFailure',
    },
    timeoutSeconds: 900,
    memoryMb: 512,
  },
  /**
   * Lambda's on-failure destination of the reply runner: receives the invocation record of a reply
   * job Lambda dropped (too old, or every attempt failed), settles the request charging nothing and
   * tells the user `request_failed` (lambda/services/reply-failure.ts).
   */
  replyFailure: {
    id: 'ReplyFailure',
    entry: 'lambda/handlers/reply-failure.ts',
    handler: 'handler',
    tables: [
      // A direct request's settle (refund, in-flight slot), a queued request's lease ended now.
      { table: 'limits', actions: LIMITER_ACTIONS },
      REPLY_CONNECTIONS,
      // The notice is kept for `resume` when the user has no connection; a reply a runner kept
      // but could not settle is read, settled, sent and dropped.
      { table: 'requests', actions: ['dynamodb:PutItem', 'dynamodb:Query', 'dynamodb:DeleteItem'] },
    ],
    // The wake-up a settle freed (or a queued request's held one) is made visible at once.
    queues: [{ queue: 'requests', actions: ['sqs:ChangeMessageVisibility'] }],
    postsToConnections: true,
    timeoutSeconds: 30,
    memoryMb: 256,
  },

  /**
   * The self-healing sweep (SPEC §9.1), every minute: finds users whose state needs attention
   * through the `bySweep` index (no scan) and repairs what a lost message or a crash left.
   */
  sweep: {
    id: 'Sweep',
    entry: 'lambda/handlers/sweep.ts',
    handler: 'handler',
    tables: [
      // Reads each due user's item, expires a head nobody expired, drops lapsed slots, moves or
      // clears the user's place in the index; queries the index bucket by bucket.
      { table: 'limits', actions: LIMITER_ACTIONS, indexActions: ['dynamodb:Query'], indexes: ['bySweep'] },
      // An expired head's sender is told, following the user like any reply.
      REPLY_CONNECTIONS,
      // A lapsed direct request: the reply its runner kept is read, sent (or kept for `resume`)
      // and dropped.
      { table: 'requests', actions: ['dynamodb:PutItem', 'dynamodb:Query', 'dynamodb:DeleteItem'] },
    ],
    // A fresh wake-up for a queue nobody wakes; the queue's counters for positions' totals; a
    // wake-up parked on the slot a lapsed direct request freed is released.
    queues: [
      {
        queue: 'requests',
        actions: ['sqs:SendMessage', 'sqs:GetQueueAttributes', 'sqs:ChangeMessageVisibility'],
      },
    ],
    postsToConnections: true,
    // Run every minute by an EventBridge rule (lib/constructs/sweep.ts), which also grants it
    // `events:PutEvents` on the default bus for its `State Repaired` events.
    timeoutSeconds: 50,
    memoryMb: 256,
  },

  admin: {
    id: 'Admin',
    entry: 'lambda/handlers/admin.ts',
    handler: 'handler',
    tables: [
      // Status reads, resets, tier and override writes, taking purged requests off the list;
      // `top` queries today's users by usage (the byDayUsage index).
      {
        table: 'limits',
        actions: ['dynamodb:GetItem', 'dynamodb:UpdateItem'],
        indexActions: ['dynamodb:Query'],
        indexes: ['byDayUsage'],
      },
      // Purge tells each sender `request_cancelled`, following the user like any reply; `health`
      // reads an item nobody writes (GetItem) to see that the table answers.
      { ...REPLY_CONNECTIONS, actions: [...REPLY_CONNECTIONS.actions, 'dynamodb:GetItem'] },
      // Purge's notices go through the same reply channel, which may keep a final reply; `health`
      // probes it like the others.
      { table: 'requests', actions: ['dynamodb:PutItem', 'dynamodb:GetItem'] },
    ],
    // `health`: whether each queue answers and how deep it is (SQS's own counters).
    queues: [
      { queue: 'requests', actions: ['sqs:GetQueueAttributes'] },
      { queue: 'dlq', actions: ['sqs:GetQueueAttributes'] },
    ],
    postsToConnections: true,
    timeoutSeconds: 30,
    memoryMb: 256,
  },
} as const satisfies Record<string, FunctionDefinition>;

export type FunctionKey = keyof typeof FUNCTIONS;

/** WebSocket routes and the function behind each. `$connect` alone carries the authorizer. */
export const ROUTES = {
  $connect: 'connect',
  $disconnect: 'disconnect',
  sendMessage: 'message',
  status: 'message',
  cancel: 'message',
  resume: 'message',
  ping: 'message',
  $default: 'message',
} as const satisfies Record<string, FunctionKey>;

export type RouteKey = keyof typeof ROUTES;

/** The stage name of the WebSocket API, in AWS and locally (`ws://localhost:PORT/local`). */
export const LOCAL_STAGE = 'local';

/** Name of a table or queue for a given prefix (locally; CDK lets CloudFormation name them). */
export function resourceName(prefix: string, base: string): string {
  return prefix ? `${prefix}-${base}` : base;
}
