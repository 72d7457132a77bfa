import type { FunctionDefinition, TableAccess, TableAction } from './access';

/**
 * What the limiter calls on the limits table (dynamo-limiter.ts): consistent reads and
 * conditional updates of one item per user; the waiting queue lives in the same item.
 */
const LIMITER_ACTIONS = ['dynamodb:GetItem', 'dynamodb:UpdateItem'] as const satisfies readonly TableAction[];

/**
 * The limiter with global limits on: the head of the global line is read through the `byLine`
 * index (lambda/adapters/limiter/global-line.ts); a waiter's own line item is written with
 * UpdateItem like every limiter item.
 */
const LIMITER_ACCESS = {
  table: 'limits',
  actions: LIMITER_ACTIONS,
  indexActions: ['dynamodb:Query'],
  indexes: ['byLine'],
} as const satisfies TableAccess;

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
      LIMITER_ACCESS,
      REPLY_CONNECTIONS,
      // Also a waiting request's content (request-store.ts): written before its enqueue, deleted
      // when it is cancelled or its enqueue is undone; the stop mark of a reply it stops; a closed
      // day's history item (PutItem, once per user and day, lambda/core/limiter/history.ts); a
      // conversation's earlier turns (Query, before the decision: adapters/conversation-store.ts).
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
    publishesEvents: true,
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
      LIMITER_ACCESS,
      REPLY_CONNECTIONS,
      // A finished reply nobody was connected for is kept for `resume`; a started request's
      // content is read (one consistent GetItem), an expired one's deleted; a closed day's history
      // item is written by the admission that closed it (PutItem).
      { table: 'requests', actions: ['dynamodb:PutItem', 'dynamodb:GetItem', 'dynamodb:DeleteItem'] },
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
    publishesEvents: true,
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
      LIMITER_ACCESS,
      REPLY_CONNECTIONS,
      // A finished reply nobody was connected for is kept for `resume`; a reply whose settle could
      // not land is kept (`produced#`) for the attempt that settles it, which reads and drops it;
      // a conversation's earlier turns are read (Query) and the request's own turn written (PutItem).
      // While the model runs, the request's stop mark (`stop#`, a user's cancel) is read by Query.
      { table: 'requests', actions: ['dynamodb:PutItem', 'dynamodb:Query', 'dynamodb:DeleteItem'] },
    ],
    queues: [
      // A queued request's wake-up is held in flight while its reply runs, and released after.
      { queue: 'requests', actions: ['sqs:ChangeMessageVisibility'] },
      // A queued request that fails for good goes to the DLQ with its reason.
      { queue: 'dlq', actions: ['sqs:SendMessage'] },
    ],
    postsToConnections: true,
    publishesEvents: true,
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
      LIMITER_ACCESS,
      REPLY_CONNECTIONS,
      // The notice is kept for `resume` when the user has no connection; a reply a runner kept
      // but could not settle is read, settled, sent and dropped.
      { table: 'requests', actions: ['dynamodb:PutItem', 'dynamodb:Query', 'dynamodb:DeleteItem'] },
    ],
    // The wake-up a settle freed (or a queued request's held one) is made visible at once.
    queues: [{ queue: 'requests', actions: ['sqs:ChangeMessageVisibility'] }],
    postsToConnections: true,
    publishesEvents: true,
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
      // clears the user's place in the index; queries the index bucket by bucket; prunes the head
      // of the global line of waiters who stopped looking (`byLine`).
      { ...LIMITER_ACCESS, indexes: ['bySweep', 'byLine'] },
      // An expired head's sender is told, following the user like any reply.
      REPLY_CONNECTIONS,
      // A lapsed direct request: the reply its runner kept is read, sent (or kept for `resume`)
      // and dropped; an expired head's content is deleted.
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
    publishesEvents: true,
    // Run every minute by an EventBridge rule (lib/constructs/sweep.ts); its `State Repaired`
    // events go to the default bus like every limiter's breaker events (publishesEvents).
    timeoutSeconds: 50,
    memoryMb: 256,
  },

  admin: {
    id: 'Admin',
    entry: 'lambda/handlers/admin.ts',
    handler: 'handler',
    tables: [
      // Status reads, resets, tier and override writes, taking purged requests off the list;
      // `top` queries today's users by settled usage (the byDaySettled index).
      {
        table: 'limits',
        actions: ['dynamodb:GetItem', 'dynamodb:UpdateItem'],
        indexActions: ['dynamodb:Query'],
        indexes: ['byDaySettled'],
      },
      // Purge tells each sender `request_cancelled`, following the user like any reply; `health`
      // reads an item nobody writes (GetItem) to see that the table answers.
      { ...REPLY_CONNECTIONS, actions: [...REPLY_CONNECTIONS.actions, 'dynamodb:GetItem'] },
      // Purge's notices go through the same reply channel, which may keep a final reply; `health`
      // probes it like the others; a purged request's content is deleted; `usage --history` reads
      // the user's closed days (one Query; lambda/core/limiter/history.ts).
      {
        table: 'requests',
        actions: ['dynamodb:PutItem', 'dynamodb:GetItem', 'dynamodb:DeleteItem', 'dynamodb:Query'],
      },
    ],
    // `health`: whether each queue answers and how deep it is (SQS's own counters).
    queues: [
      { queue: 'requests', actions: ['sqs:GetQueueAttributes'] },
      { queue: 'dlq', actions: ['sqs:GetQueueAttributes'] },
    ],
    postsToConnections: true,
    publishesEvents: true,
    timeoutSeconds: 30,
    memoryMb: 256,
  },
} as const satisfies Record<string, FunctionDefinition>;

export type FunctionKey = keyof typeof FUNCTIONS;

/**
 * The functions whose log lines make the request log (SPEC §9.4, `npm run admin -- export-traffic`):
 * the message handler's `sendMessage` line and the reply runner's `request settled` line. The stack
 * outputs each one's log group name as {@link logGroupOutputName} of its key.
 */
export const REQUEST_LOG_FUNCTIONS = ['message', 'reply'] as const satisfies readonly FunctionKey[];

/** The stack output that names a function's log group: `MessageLogGroupName`, `ReplyRunnerLogGroupName`. */
export const logGroupOutputName = (key: FunctionKey): string => `${FUNCTIONS[key].id}LogGroupName`;
