import { ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { beforeAll, describe, expect, it } from 'vitest';
import { RequestQueue } from '../../lambda/adapters/request-queue';
import { RequestStore } from '../../lambda/adapters/request-store';
import type { QueuedRequest } from '../../lambda/core/queue/request';
import { createTestResources, type TestResources } from '../support/emulators';

const NOW = Date.UTC(2026, 10, 24, 12, 0, 0);

function record(requestId: string, over: Partial<QueuedRequest> = {}): QueuedRequest {
  return {
    userId: 'alice',
    requestId,
    connectionId: 'conn-1',
    message: 'hello',
    estimatedInputTokens: 2,
    enqueuedAtEpochMs: NOW,
    expiresAtEpochMs: NOW + 960_000,
    status: 'queued',
    attempts: 0,
    ...over,
  };
}

describe('RequestStore', () => {
  let res: TestResources;
  let store: RequestStore;
  beforeAll(async () => {
    res = await createTestResources('requests');
    store = new RequestStore(res.dynamo, res.tables.requests);
  });

  it('creates a record once per request id', async () => {
    expect(await store.create(record('r1'))).toBe(true);
    expect(await store.create(record('r1', { message: 'other' }))).toBe(false);
    expect((await store.get('alice', 'r1'))?.message).toBe('hello');
  });

  it('lets only one of two concurrent transitions take a record out of queued', async () => {
    await store.create(record('r2'));
    const results = await Promise.all(
      Array.from({ length: 10 }, () =>
        store.transition('alice', 'r2', ['queued'], 'processing', NOW, { incrementAttempts: true }),
      ),
    );
    expect(results.filter((r) => r.ok)).toHaveLength(1);
    const failed = results.find((r) => !r.ok);
    expect(failed?.record?.status).toBe('processing');
    expect((await store.get('alice', 'r2'))?.attempts).toBe(1);
  });

  it('respects a held lease and allows a takeover once it ran out', async () => {
    await store.create(record('r3'));
    await store.transition('alice', 'r3', ['queued'], 'processing', NOW, { leaseUntilEpochMs: NOW + 1000 });
    const early = await store.transition('alice', 'r3', ['processing'], 'processing', NOW, {
      leaseFreeAtEpochMs: NOW + 500,
      leaseUntilEpochMs: NOW + 5000,
    });
    expect(early.ok).toBe(false);
    const late = await store.transition('alice', 'r3', ['processing'], 'processing', NOW, {
      leaseFreeAtEpochMs: NOW + 1500,
      leaseUntilEpochMs: NOW + 5000,
    });
    expect(late.ok).toBe(true);
    expect(late.ok && late.record.leaseUntilEpochMs).toBe(NOW + 5000);
  });

  it('reports a missing record without creating it', async () => {
    const result = await store.transition('alice', 'nope', ['queued'], 'cancelled', NOW);
    expect(result).toEqual({ ok: false, record: undefined });
    expect(await store.get('alice', 'nope')).toBeUndefined();
  });

  it('counts queued requests of all users', async () => {
    const before = await store.total();
    expect(await store.addToTotal(2)).toBe(before + 2);
    expect(await store.addToTotal(-1)).toBe(before + 1);
  });

  it('keeps undelivered replies for an hour, oldest first', async () => {
    await store.saveReply('bob', 'b2', { type: 'message_complete', requestId: 'b2' }, NOW + 2000);
    await store.saveReply('bob', 'b1', { type: 'message_complete', requestId: 'b1' }, NOW);
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
