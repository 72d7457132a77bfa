import type { QueueKey } from './queues';
import type { TableKey } from './tables';

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
  /**
   * Publishes operational events (SPEC §9.5: its limiter's breaker, budgets, repairs): gets
   * `events:PutEvents` on the account's default event bus only.
   */
  readonly publishesEvents?: boolean;
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
