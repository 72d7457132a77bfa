import {
  DeleteMessageBatchCommand,
  type Message,
  ReceiveMessageCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import type { SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import type { Clock } from '../lambda/core/clock';
import {
  DEFAULT_FUNCTION_TIMEOUT_MS,
  invokeFunction,
  type LambdaHandler,
  type LocalFunction,
} from './gateway/lambda-runner';

export interface SqsPollerOptions {
  readonly sqs: SQSClient;
  readonly queueUrl: string;
  readonly queueArn: string;
  readonly handler: LambdaHandler;
  /** The function's name, as its context shows it. @default 'function' */
  readonly functionName?: string;
  /** Records per invocation, as the event source mapping's BatchSize. @default 10 */
  readonly batchSize?: number;
  /** Long-poll wait of each receive. @default 1 */
  readonly waitTimeSeconds?: number;
  /** Invocations running at once (Lambda's maximum concurrency of the mapping). @default 10 */
  readonly maxConcurrentBatches?: number;
  /**
   * The function's Timeout: an invocation still running after it is abandoned and its batch
   * counts as failed. @default 3_000 (Lambda's default)
   */
  readonly functionTimeoutMs?: number;
  readonly onError?: (err: unknown) => void;
  /**
   * The stack's clock: the queue's timestamps (`SentTimestamp`, `ApproximateFirstReceiveTimestamp`,
   * on the machine's clock) are shifted by its offset, as the handlers read every other instant on
   * it. @default Date.now
   */
  readonly clock?: Clock;
}

export interface SqsPoller {
  /** Resolves when no invocation is running. */
  idle(): Promise<void>;
  /** Is an invocation running now? */
  busy(): boolean;
  stop(): Promise<void>;
}

/**
 * Feeds a queue to a Lambda handler the way Lambda's event source mapping does for FIFO queues:
 * batches of records shaped like Lambda's, at most one batch in flight per message group (SQS
 * itself hands out nothing more of a group while one of its messages is in flight), and
 * `reportBatchItemFailures`: every record not listed as failed is deleted; if the handler throws
 * or runs past its Timeout, none is, and visibility timeout and the redrive policy take their
 * course. Receives never set a visibility timeout of their own: the queue's applies, as with
 * Lambda's pollers.
 */
export function startSqsPoller(options: SqsPollerOptions): SqsPoller {
  const batchSize = options.batchSize ?? 10;
  const maxConcurrent = options.maxConcurrentBatches ?? 10;
  const running = new Set<Promise<void>>();
  const controller = new AbortController();
  let stopping = false;
  let wake: (() => void) | undefined;
  const region = options.queueArn.split(':')[3] ?? 'us-east-1';
  const fn: LocalFunction = {
    name: options.functionName ?? 'function',
    handler: options.handler,
    timeoutMs: options.functionTimeoutMs ?? DEFAULT_FUNCTION_TIMEOUT_MS,
  };

  async function loop(): Promise<void> {
    while (!stopping) {
      if (running.size >= maxConcurrent) {
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
        continue;
      }
      let messages: Message[] = [];
      try {
        const response = await options.sqs.send(
          new ReceiveMessageCommand({
            QueueUrl: options.queueUrl,
            MaxNumberOfMessages: batchSize,
            WaitTimeSeconds: options.waitTimeSeconds ?? 1,
            MessageSystemAttributeNames: ['All'],
            MessageAttributeNames: ['All'],
          }),
          { abortSignal: controller.signal },
        );
        messages = response.Messages ?? [];
      } catch (err) {
        if (stopping) return;
        options.onError?.(err);
        await new Promise((resolve) => setTimeout(resolve, 500));
        continue;
      }
      if (messages.length === 0) continue;
      const task = invoke(messages).finally(() => {
        running.delete(task);
        wake?.();
      });
      running.add(task);
    }
  }

  async function invoke(messages: Message[]): Promise<void> {
    const offsetMs = options.clock ? options.clock() - Date.now() : 0;
    const event: SQSEvent = {
      Records: messages.map((m) => toRecord(m, options.queueArn, region, offsetMs)),
    };
    let failed: Set<string>;
    try {
      const result = (await invokeFunction(fn, event)) as SQSBatchResponse | undefined;
      failed = new Set((result?.batchItemFailures ?? []).map((f) => f.itemIdentifier));
    } catch (err) {
      options.onError?.(err);
      // A throw or a timeout: nothing deleted, the whole batch comes back after its visibility timeout.
      return;
    }
    const done = messages.filter((m) => !failed.has(m.MessageId!));
    if (done.length === 0) return;
    try {
      await options.sqs.send(
        new DeleteMessageBatchCommand({
          QueueUrl: options.queueUrl,
          Entries: done.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle! })),
        }),
      );
    } catch (err) {
      options.onError?.(err);
    }
  }

  const loopDone = loop();
  return {
    idle: async () => {
      while (running.size > 0) await Promise.allSettled([...running]);
    },
    busy: () => running.size > 0,
    stop: async () => {
      stopping = true;
      controller.abort();
      wake?.();
      await loopDone.catch(() => undefined);
      await Promise.allSettled([...running]);
    },
  };
}

/**
 * A record as Lambda's SQS event source builds it, the queue's system attributes included
 * (`ApproximateReceiveCount` counts this receive). Timestamps move by `offsetMs` onto the stack's
 * clock.
 */
export function toRecord(message: Message, queueArn: string, region: string, offsetMs = 0): SQSRecord {
  const a = message.Attributes ?? {};
  const onStackClock = (realMs: string | undefined) => String(Number(realMs ?? Date.now()) + offsetMs);
  return {
    messageId: message.MessageId!,
    receiptHandle: message.ReceiptHandle!,
    body: message.Body ?? '',
    attributes: {
      ApproximateReceiveCount: a.ApproximateReceiveCount ?? '1',
      SentTimestamp: onStackClock(a.SentTimestamp),
      SenderId: a.SenderId ?? 'local',
      ApproximateFirstReceiveTimestamp: onStackClock(a.ApproximateFirstReceiveTimestamp),
      SequenceNumber: a.SequenceNumber,
      MessageGroupId: a.MessageGroupId,
      MessageDeduplicationId: a.MessageDeduplicationId,
    },
    messageAttributes: Object.fromEntries(
      Object.entries(message.MessageAttributes ?? {}).map(([k, v]) => [
        k,
        {
          stringValue: v.StringValue,
          binaryValue: v.BinaryValue ? Buffer.from(v.BinaryValue).toString('base64') : undefined,
          stringListValues: [],
          binaryListValues: [],
          dataType: v.DataType ?? 'String',
        },
      ]),
    ),
    md5OfBody: message.MD5OfBody ?? '',
    eventSource: 'aws:sqs',
    eventSourceARN: queueArn,
    awsRegion: region,
  };
}
