import { createHash } from 'node:crypto';
import {
  ChangeMessageVisibilityCommand,
  GetQueueAttributesCommand,
  MessageNotInflight,
  ReceiptHandleIsInvalid,
  SendMessageCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import type { QueueMessageBody } from '../core/queue/request';
import { WakeUpNotHeldError } from '../services/errors';
import type { RequestQueuePort } from '../services/ports';
import { AdapterError } from './errors';

/** SQS caps a visibility timeout at 12 hours. */
const MAX_VISIBILITY_SECONDS = 12 * 3600;

/**
 * The FIFO request queue: one message group per user, so the processor serves a user's queue one
 * message at a time. The deduplication id is a hash of the user, the request and what made the
 * wake-up (`cause`: the request's enqueue instant, or the repair or refresh that sent it): the SDK's
 * retry of one send is dropped within SQS's five-minute deduplication window, but a request id
 * reused once its request ended (SPEC §3) is a new wake-up, never silently dropped (issue 20,
 * finding 1).
 */
export class RequestQueue implements RequestQueuePort {
  constructor(
    private readonly client: SQSClient,
    private readonly queueUrl: string,
    private readonly deadLetterQueueUrl?: string,
  ) {}

  async send(body: QueueMessageBody): Promise<void> {
    await this.client.send(
      new SendMessageCommand({
        QueueUrl: this.queueUrl,
        MessageBody: JSON.stringify(body),
        MessageGroupId: messageGroupId(body.userId),
        MessageDeduplicationId: deduplicationId(body),
      }),
    );
  }

  /**
   * Messages waiting (visible) or deferred and being served (in flight), from SQS's own counters:
   * no scan. SQS documents them as approximate; `totalInQueue` is informative, positions are not
   * derived from it.
   */
  async depth(): Promise<number> {
    const { Attributes } = await this.client.send(
      new GetQueueAttributesCommand({
        QueueUrl: this.queueUrl,
        AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
      }),
    );
    return (
      Number(Attributes?.ApproximateNumberOfMessages ?? 0) +
      Number(Attributes?.ApproximateNumberOfMessagesNotVisible ?? 0)
    );
  }

  /**
   * Hides a received message until its request may be admitted (rounded up to whole seconds).
   * A handle that no longer holds its message throws WakeUpNotHeldError.
   */
  async defer(receiptHandle: string, delayMs: number): Promise<void> {
    const seconds = Math.min(MAX_VISIBILITY_SECONDS, Math.max(0, Math.ceil(delayMs / 1000)));
    try {
      await this.client.send(
        new ChangeMessageVisibilityCommand({
          QueueUrl: this.queueUrl,
          ReceiptHandle: receiptHandle,
          VisibilityTimeout: seconds,
        }),
      );
    } catch (err) {
      if (err instanceof MessageNotInflight || err instanceof ReceiptHandleIsInvalid) {
        throw new WakeUpNotHeldError('the wake-up is no longer held by this receipt handle', { cause: err });
      }
      throw err;
    }
  }

  /**
   * Parks a message that failed for good in the dead-letter queue, with the reason, so the receive
   * budget of the main queue (sized for deferrals) is not spent on retrying it. Callers pass the
   * user id as the group and an id of their own for deduplication: both go through the rules SQS
   * has for them (at most 128 characters of `[\x21-\x7e]`), as the main queue's do, so a long or
   * non-ASCII `sub` from an OIDC issuer cannot fail the send — before `request_failed` is sent, in
   * `failForGood` (issue 20, finding 18).
   */
  async moveToDeadLetterQueue(
    rawBody: string,
    groupId: string,
    dedupId: string,
    reason: string,
  ): Promise<void> {
    if (!this.deadLetterQueueUrl) throw new AdapterError('no dead-letter queue configured');
    await this.client.send(
      new SendMessageCommand({
        QueueUrl: this.deadLetterQueueUrl,
        MessageBody: rawBody,
        MessageGroupId: messageGroupId(groupId),
        // SQS holds deduplication ids to the same rules as group ids: kept if valid, else hashed.
        MessageDeduplicationId: messageGroupId(dedupId),
        MessageAttributes: { reason: { DataType: 'String', StringValue: reason.slice(0, 256) } },
      }),
    );
  }
}

/**
 * SQS allows 128 characters of `[A-Za-z0-9!-~]` in group ids; identities from an OIDC issuer may
 * be longer or use other characters, so those are hashed (stable, so ordering per user holds).
 */
export function messageGroupId(userId: string): string {
  return /^[\x21-\x7e]{1,128}$/.test(userId) ? userId : `h-${sha256(userId)}`;
}

/** One id per wake-up made: the same send retried keeps it, a new enqueue or repair does not. */
export function deduplicationId(body: QueueMessageBody): string {
  return sha256(`${body.userId}\n${body.requestId}\n${body.cause ?? ''}`);
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}
