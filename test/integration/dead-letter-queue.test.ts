import { ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { describe, expect, it } from 'vitest';
import { messageGroupId, RequestQueue } from '../../lambda/adapters/request-queue';
import { createTestResources } from '../support/emulators';

/**
 * Issue 20, finding 18: the DLQ send used the raw user id as its group (the main queue hashes it),
 * so an OIDC `sub` SQS does not accept as a group id failed the send — in `failForGood`, before
 * the user was told `request_failed`. fauxqs accepts any id (SQS refuses a group or deduplication
 * id over 128 characters or outside `[\x21-\x7e]`), so the test reads back the ids that were sent
 * and holds them to SQS's rule.
 */
describe('RequestQueue.moveToDeadLetterQueue', () => {
  // 200 characters, none of them ASCII: over SQS's 128 and outside its character set.
  const longSub = 'ü'.repeat(100) + '用户'.repeat(50);

  it('parks a failed request of a user with a 200-character non-ASCII id, grouped as the main queue groups it', async () => {
    expect([...longSub]).toHaveLength(200);
    const res = await createTestResources('dlq');
    const queue = new RequestQueue(res.sqs, res.queues.requests.url, res.queues.dlq.url);
    const body = JSON.stringify({ v: 1, userId: longSub, requestId: 'r1' });
    // The dedup id a caller builds may be as long as the user id it carries.
    await queue.moveToDeadLetterQueue(body, longSub, `failed-${longSub}-r1`, 'too many interrupted attempts');
    const { Messages } = await res.sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: res.queues.dlq.url,
        MessageAttributeNames: ['All'],
        MessageSystemAttributeNames: ['All'],
      }),
    );
    expect(Messages).toHaveLength(1);
    const [message] = Messages!;
    expect(message!.Body).toBe(body);
    expect(message!.Attributes?.MessageGroupId).toBe(messageGroupId(longSub));
    expect(message!.Attributes?.MessageGroupId).toMatch(/^[\x21-\x7e]{1,128}$/);
    expect(message!.Attributes?.MessageDeduplicationId).toMatch(/^[\x21-\x7e]{1,128}$/);
    expect(message!.MessageAttributes?.reason?.StringValue).toBe('too many interrupted attempts');
  });

  it('keeps ids SQS accepts as they are, so they read the same in the console', async () => {
    const res = await createTestResources('dlq');
    const queue = new RequestQueue(res.sqs, res.queues.requests.url, res.queues.dlq.url);
    await queue.moveToDeadLetterQueue('{}', 'dave', 'failed-d1', 'reason');
    const { Messages } = await res.sqs.send(
      new ReceiveMessageCommand({ QueueUrl: res.queues.dlq.url, MessageSystemAttributeNames: ['All'] }),
    );
    expect(Messages?.[0]?.Attributes).toMatchObject({
      MessageGroupId: 'dave',
      MessageDeduplicationId: 'failed-d1',
    });
  });
});
