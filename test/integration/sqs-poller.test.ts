import {
  CreateQueueCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
} from '@aws-sdk/client-sqs';
import type { Context, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { describe, expect, it } from 'vitest';
import { FunctionTimeoutError } from '../../local/gateway';
import { startSqsPoller } from '../../local/sqs-poller';
import { createTestResources } from '../support/emulators';

async function fifoQueue(name: string, visibilityTimeout = 1) {
  const res = await createTestResources('poller');
  const { QueueUrl } = await res.sqs.send(
    new CreateQueueCommand({
      QueueName: `${name}-${Math.random().toString(36).slice(2, 8)}.fifo`,
      Attributes: { FifoQueue: 'true', VisibilityTimeout: String(visibilityTimeout) },
    }),
  );
  const { Attributes } = await res.sqs.send(
    new GetQueueAttributesCommand({ QueueUrl, AttributeNames: ['QueueArn'] }),
  );
  return { sqs: res.sqs, url: QueueUrl!, arn: Attributes!.QueueArn! };
}

async function send(q: Awaited<ReturnType<typeof fifoQueue>>, group: string, body: string) {
  await q.sqs.send(
    new SendMessageCommand({
      QueueUrl: q.url,
      MessageBody: body,
      MessageGroupId: group,
      MessageDeduplicationId: body,
    }),
  );
}

/** Waits (bounded) until `condition` holds, re-checking as the poller works. */
async function until(condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** How a slow function spends its time (the tests themselves wait for events, never for time). */
const work = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('startSqsPoller (Lambda event source mapping for FIFO queues)', () => {
  it('keeps each group in order and never runs two batches of one group at once', async () => {
    const q = await fifoQueue('order');
    for (let i = 0; i < 5; i++) {
      await send(q, 'a', `a${i}`);
      await send(q, 'b', `b${i}`);
    }
    const seen: string[] = [];
    const inFlight = new Set<string>();
    let overlap = false;
    const poller = startSqsPoller({
      sqs: q.sqs,
      queueUrl: q.url,
      queueArn: q.arn,
      handler: (async (event: SQSEvent) => {
        for (const r of event.Records) {
          const group = r.attributes.MessageGroupId!;
          if (inFlight.has(group)) overlap = true;
          inFlight.add(group);
          expect(r).toMatchObject({
            eventSource: 'aws:sqs',
            eventSourceARN: q.arn,
            attributes: { MessageGroupId: group },
          });
        }
        await new Promise((resolve) => setTimeout(resolve, 10));
        for (const r of event.Records) {
          seen.push(r.body);
          inFlight.delete(r.attributes.MessageGroupId!);
        }
        return { batchItemFailures: [] };
      }) as never,
    });
    await until(() => seen.length === 10);
    await poller.stop();
    expect(seen.filter((b) => b.startsWith('a'))).toEqual(['a0', 'a1', 'a2', 'a3', 'a4']);
    expect(seen.filter((b) => b.startsWith('b'))).toEqual(['b0', 'b1', 'b2', 'b3', 'b4']);
    expect(overlap).toBe(false);
  });

  it('deletes what succeeded and redelivers a reported failure after its visibility timeout', async () => {
    const q = await fifoQueue('partial');
    await send(q, 'g', 'first');
    await send(q, 'g', 'second');
    const attempts: string[] = [];
    const poller = startSqsPoller({
      sqs: q.sqs,
      queueUrl: q.url,
      queueArn: q.arn,
      handler: (async (event: SQSEvent): Promise<SQSBatchResponse> => {
        const failures = [];
        for (const r of event.Records) {
          attempts.push(`${r.body}#${r.attributes.ApproximateReceiveCount}`);
          if (r.body === 'first' && r.attributes.ApproximateReceiveCount === '1')
            failures.push({ itemIdentifier: r.messageId });
        }
        return { batchItemFailures: failures };
      }) as never,
    });
    await until(() => attempts.includes('second#1'));
    await poller.stop();
    expect(attempts).toEqual(['first#1', 'first#2', 'second#1']);
  });

  it('deletes nothing when the handler throws, so the batch comes back', async () => {
    const q = await fifoQueue('throws');
    await send(q, 'g', 'only');
    let calls = 0;
    const errors: unknown[] = [];
    const poller = startSqsPoller({
      sqs: q.sqs,
      queueUrl: q.url,
      queueArn: q.arn,
      onError: (err) => errors.push(err),
      handler: (async () => {
        calls++;
        if (calls === 1) throw new Error('crash');
        return { batchItemFailures: [] };
      }) as never,
    });
    await until(() => calls === 2);
    await poller.idle();
    await poller.stop();
    expect(errors).toHaveLength(1);
  });

  it("fails a batch that runs past the function's Timeout: nothing deleted, back after the queue's visibility timeout", async () => {
    const q = await fifoQueue('timeout');
    await send(q, 'g', 'slow');
    const receives: { count: string; atMs: number; remainingMs: number }[] = [];
    const errors: unknown[] = [];
    const poller = startSqsPoller({
      sqs: q.sqs,
      queueUrl: q.url,
      queueArn: q.arn,
      functionName: 'Processor',
      functionTimeoutMs: 200,
      onError: (err) => errors.push(err),
      handler: (async (event: SQSEvent, context: Context): Promise<SQSBatchResponse> => {
        receives.push({
          count: event.Records[0]!.attributes.ApproximateReceiveCount,
          atMs: Date.now(),
          remainingMs: context.getRemainingTimeInMillis(),
        });
        // The first run reports success, but only after its Timeout: Lambda ignores that answer.
        if (receives.length === 1) await work(500);
        return { batchItemFailures: [] };
      }) as never,
    });
    await until(() => receives.length === 2);
    await poller.idle();
    await poller.stop();
    expect(errors).toHaveLength(1);
    expect(errors[0]).toBeInstanceOf(FunctionTimeoutError);
    expect((errors[0] as Error).message).toMatch(/Task timed out after 0\.20 seconds$/);
    expect(receives.map((r) => r.count)).toEqual(['1', '2']);
    // The context counts down from the function's Timeout.
    expect(receives[0]!.remainingMs).toBeGreaterThan(0);
    expect(receives[0]!.remainingMs).toBeLessThanOrEqual(200);
    // The queue's visibility timeout (1 s) decides when it comes back: the poller sets none of its own.
    expect(receives[1]!.atMs - receives[0]!.atMs).toBeGreaterThanOrEqual(900);
  });

  it('leaves redrive to the queue: fauxqs moves a message to the DLQ after maxReceiveCount failures', async () => {
    const dlq = await fifoQueue('dead');
    const { QueueUrl } = await dlq.sqs.send(
      new CreateQueueCommand({
        QueueName: `redrive-${Math.random().toString(36).slice(2, 8)}.fifo`,
        Attributes: {
          FifoQueue: 'true',
          VisibilityTimeout: '1',
          RedrivePolicy: JSON.stringify({ deadLetterTargetArn: dlq.arn, maxReceiveCount: 2 }),
        },
      }),
    );
    const { Attributes } = await dlq.sqs.send(
      new GetQueueAttributesCommand({ QueueUrl, AttributeNames: ['QueueArn'] }),
    );
    const q = { sqs: dlq.sqs, url: QueueUrl!, arn: Attributes!.QueueArn! };
    await send(q, 'g', 'poison');
    let calls = 0;
    const poller = startSqsPoller({
      sqs: q.sqs,
      queueUrl: q.url,
      queueArn: q.arn,
      onError: () => {},
      handler: (async () => {
        calls++;
        throw new Error('always fails');
      }) as never,
    });
    await until(() => calls === 2);
    let dead: string | undefined;
    const deadline = Date.now() + 10_000;
    while (!dead && Date.now() < deadline) {
      const { Messages } = await dlq.sqs.send(
        new ReceiveMessageCommand({ QueueUrl: dlq.url, WaitTimeSeconds: 1, MaxNumberOfMessages: 1 }),
      );
      dead = Messages?.[0]?.Body;
    }
    await poller.stop();
    expect(dead).toBe('poison');
    expect(calls).toBe(2);
  });

  it('stop() ends the long poll and delivers nothing afterwards', async () => {
    const q = await fifoQueue('stop');
    const bodies: string[] = [];
    const poller = startSqsPoller({
      sqs: q.sqs,
      queueUrl: q.url,
      queueArn: q.arn,
      waitTimeSeconds: 5,
      handler: (async (event: SQSEvent) => {
        for (const r of event.Records) bodies.push(r.body);
        return { batchItemFailures: [] };
      }) as never,
    });
    await poller.stop();
    await send(q, 'g', 'after-stop');
    const { Messages } = await q.sqs.send(
      new ReceiveMessageCommand({ QueueUrl: q.url, WaitTimeSeconds: 1, MaxNumberOfMessages: 1 }),
    );
    expect(Messages?.[0]?.Body).toBe('after-stop');
    expect(bodies).toEqual([]);
  });
});
