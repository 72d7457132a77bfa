import { ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { beforeAll, describe, expect, it } from 'vitest';
import { ReplyStore } from '../../lambda/adapters/reply-store';
import { RequestQueue } from '../../lambda/adapters/request-queue';
import { messageComplete } from '../../lambda/core/protocol';
import { createTestResources, type TestResources } from '../support/emulators';

const NOW = Date.UTC(2026, 10, 24, 12, 0, 0);
const USAGE = { inputTokens: 1, outputTokens: 1, totalTokens: 2 };

describe('ReplyStore', () => {
  let res: TestResources;
  let store: ReplyStore;
  beforeAll(async () => {
    res = await createTestResources('replies');
    store = new ReplyStore(res.dynamo, res.tables.requests);
  });

  it('keeps undelivered replies for an hour, oldest first', async () => {
    await store.saveReply('bob', 'b2', messageComplete('b2', 'two', USAGE, NOW), NOW + 2000);
    await store.saveReply('bob', 'b1', messageComplete('b1', 'one', USAGE, NOW), NOW);
    expect((await store.listReplies('bob', NOW + 20)).map((r) => r.requestId)).toEqual(['b1', 'b2']);
    expect(await store.listReplies('bob', NOW + 3_601_000)).toHaveLength(1);
    await store.deleteReply('bob', 'b1');
    expect((await store.listReplies('bob', NOW + 20)).map((r) => r.requestId)).toEqual(['b2']);
  });
});

describe('RequestQueue', () => {
  it('sends one message per request to the user group, deduplicated by request id', async () => {
    const res = await createTestResources('requestq');
    const queue = new RequestQueue(res.sqs, res.queues.requests.url, res.queues.dlq.url);
    await queue.send({ v: 1, userId: 'carol', requestId: 'c1' });
    await queue.send({ v: 1, userId: 'carol', requestId: 'c1' });
    const { Messages } = await res.sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: res.queues.requests.url,
        MaxNumberOfMessages: 10,
        MessageSystemAttributeNames: ['MessageGroupId'],
      }),
    );
    expect(Messages).toHaveLength(1);
    expect(Messages?.[0]?.Attributes?.MessageGroupId).toBe('carol');
    expect(JSON.parse(Messages?.[0]?.Body ?? '')).toEqual({ v: 1, userId: 'carol', requestId: 'c1' });
  });

  it('counts waiting and in-flight messages from the queue attributes, without a scan', async () => {
    const res = await createTestResources('requestq');
    const queue = new RequestQueue(res.sqs, res.queues.requests.url, res.queues.dlq.url);
    await queue.send({ v: 1, userId: 'erin', requestId: 'e1' });
    await queue.send({ v: 1, userId: 'frank', requestId: 'f1' });
    expect(await queue.depth()).toBe(2);
    await res.sqs.send(
      new ReceiveMessageCommand({ QueueUrl: res.queues.requests.url, MaxNumberOfMessages: 1 }),
    );
    expect(await queue.depth()).toBe(2);
  });

  it('moves a message to the dead-letter queue with its reason', async () => {
    const res = await createTestResources('requestq');
    const queue = new RequestQueue(res.sqs, res.queues.requests.url, res.queues.dlq.url);
    await queue.moveToDeadLetterQueue('{"bad":true}', 'dave', 'd1', 'unparseable body');
    const { Messages } = await res.sqs.send(
      new ReceiveMessageCommand({ QueueUrl: res.queues.dlq.url, MessageAttributeNames: ['All'] }),
    );
    expect(Messages?.[0]?.MessageAttributes?.reason?.StringValue).toBe('unparseable body');
  });
});
