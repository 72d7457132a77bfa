import { randomUUID } from 'node:crypto';
import {
  CreateQueueCommand,
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { advanceStackClock, resetStackClock } from '../../lambda/core/clock';
import { localSqsClient } from '../../local/aws-clients';
import { type Emulators, startEmulators } from '../../local/emulators';
import { startSqsPoller } from '../../local/sqs-poller';

/**
 * SQS FIFO's timed behaviours as AWS documents them, on the local stack's SQS: the embedded fauxqs
 * as `npm start` runs it (started in this process, so the stack's clock is this test's).
 */
describe('the local stack’s SQS FIFO queues', () => {
  let emulators: Emulators;
  let sqs: SQSClient;
  beforeAll(async () => {
    emulators = await startEmulators({ dynamodbEndpoint: 'http://unused.invalid' });
    sqs = localSqsClient(emulators.sqsEndpoint);
  });
  afterAll(async () => {
    await emulators?.stop();
  });
  afterEach(() => resetStackClock());

  async function fifoQueue(attributes: Record<string, string> = {}) {
    const { QueueUrl } = await sqs.send(
      new CreateQueueCommand({
        QueueName: `timed-${randomUUID().slice(0, 8)}.fifo`,
        Attributes: { FifoQueue: 'true', VisibilityTimeout: '30', ...attributes },
      }),
    );
    const { Attributes } = await sqs.send(
      new GetQueueAttributesCommand({ QueueUrl, AttributeNames: ['QueueArn'] }),
    );
    return { url: QueueUrl!, arn: Attributes!.QueueArn! };
  }

  const send = (url: string, dedupId: string, body: string) =>
    sqs.send(
      new SendMessageCommand({
        QueueUrl: url,
        MessageBody: body,
        MessageGroupId: 'g',
        MessageDeduplicationId: dedupId,
      }),
    );

  /** Everything receivable now (no long poll). */
  async function receiveAll(url: string): Promise<string[]> {
    const { Messages } = await sqs.send(
      new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 10, WaitTimeSeconds: 0 }),
    );
    for (const m of Messages ?? [])
      await sqs.send(new DeleteMessageCommand({ QueueUrl: url, ReceiptHandle: m.ReceiptHandle! }));
    return (Messages ?? []).map((m) => m.Body!);
  }

  it('accepts but never delivers a message whose deduplication id was sent in the last 5 minutes, even once the first was consumed', async () => {
    const q = await fifoQueue();
    const first = await send(q.url, 'req-1', 'first');
    expect(await receiveAll(q.url)).toEqual(['first']);
    const again = await send(q.url, 'req-1', 'second');
    // Accepted: the answer names the first message, as AWS's does.
    expect(again.MessageId).toBe(first.MessageId);
    expect(await receiveAll(q.url)).toEqual([]);
  });

  it('ends the deduplication interval 5 minutes after the first send, on the stack’s clock', async () => {
    const q = await fifoQueue();
    await send(q.url, 'req-2', 'first');
    expect(await receiveAll(q.url)).toEqual(['first']);
    advanceStackClock(5 * 60_000 - 2_000);
    await send(q.url, 'req-2', 'within the interval');
    expect(await receiveAll(q.url)).toEqual([]);
    advanceStackClock(3_000);
    await send(q.url, 'req-2', 'after the interval');
    expect(await receiveAll(q.url)).toEqual(['after the interval']);
    // A new interval starts with that send.
    await send(q.url, 'req-2', 'within the new interval');
    expect(await receiveAll(q.url)).toEqual([]);
  });

  /** Runs a poller whose handler fails every record, and returns the receive counts it was given. */
  async function failEveryRecord(
    q: { url: string; arn: string },
    until: (counts: number[]) => Promise<boolean>,
  ) {
    const counts: number[] = [];
    const poller = startSqsPoller({
      sqs,
      queueUrl: q.url,
      queueArn: q.arn,
      waitTimeSeconds: 0,
      handler: (async (event: SQSEvent): Promise<SQSBatchResponse> => {
        for (const r of event.Records) counts.push(Number(r.attributes.ApproximateReceiveCount));
        return { batchItemFailures: event.Records.map((r) => ({ itemIdentifier: r.messageId })) };
      }) as never,
    });
    try {
      const deadline = Date.now() + 10_000;
      while (!(await until(counts))) {
        if (Date.now() > deadline)
          throw new Error(`not done in time; receive counts seen: ${counts.join(',')}`);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    } finally {
      await poller.stop();
    }
    return counts;
  }

  it('counts every receive in ApproximateReceiveCount, which the poller passes to the function as Lambda does', async () => {
    // Visibility timeout 0: a failed record is visible again at once (no waiting on the clock).
    const q = await fifoQueue({ VisibilityTimeout: '0' });
    await send(q.url, 'counted', 'counted');
    const counts = await failEveryRecord(q, async (seen) => seen.length >= 4);
    expect(counts.slice(0, 4)).toEqual([1, 2, 3, 4]);
  });

  it('moves a message to the dead-letter queue once its receives exceed maxReceiveCount, never handing it out again', async () => {
    const dlq = await fifoQueue();
    const q = await fifoQueue({
      VisibilityTimeout: '0',
      RedrivePolicy: JSON.stringify({ deadLetterTargetArn: dlq.arn, maxReceiveCount: 3 }),
    });
    await send(q.url, 'doomed', 'doomed');
    const inDlq: string[] = [];
    const counts = await failEveryRecord(q, async () => {
      inDlq.push(...(await receiveAll(dlq.url)));
      return inDlq.length > 0;
    });
    expect(inDlq).toEqual(['doomed']);
    expect(counts).toEqual([1, 2, 3]);
    expect(await receiveAll(q.url)).toEqual([]);
  });

  it('puts the queue’s timestamps on the stack’s clock in the records it passes to the function', async () => {
    const q = await fifoQueue();
    const dayAheadMs = 86_400_000;
    const sentAtMs = Date.now();
    await send(q.url, 'stamped', 'stamped');
    const records: SQSEvent['Records'] = [];
    const poller = startSqsPoller({
      sqs,
      queueUrl: q.url,
      queueArn: q.arn,
      waitTimeSeconds: 0,
      clock: () => Date.now() + dayAheadMs,
      handler: (async (event: SQSEvent) => {
        records.push(...event.Records);
        return { batchItemFailures: [] };
      }) as never,
    });
    const deadline = Date.now() + 10_000;
    while (records.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    await poller.stop();
    const { SentTimestamp, ApproximateFirstReceiveTimestamp } = records[0]!.attributes;
    expect(Number(SentTimestamp)).toBeGreaterThanOrEqual(sentAtMs + dayAheadMs - 5);
    expect(Number(SentTimestamp)).toBeLessThanOrEqual(Date.now() + dayAheadMs);
    expect(Number(ApproximateFirstReceiveTimestamp)).toBeGreaterThanOrEqual(Number(SentTimestamp));
  });
});
