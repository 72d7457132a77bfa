/**
 * An SQS FIFO queue on the harness's clock, as AWS documents it, for the wake-ups of the request
 * queue. fauxqs runs on wall time (its clock cannot be moved), so the harness drives the real
 * `RequestQueue` adapter against this model instead. Its rules, each checked in
 * `test/model/sim-sqs.test.ts` (the ones fauxqs supports also against fauxqs):
 *
 * 1. Deduplication: a send whose deduplication id was accepted in the last 5 minutes is answered
 *    OK and not enqueued, even if that first message was consumed since.
 * 2. Message groups: while any message of a group is in flight, no message of that group is
 *    handed out; within a group, messages go out in the order they were sent.
 * 3. Visibility: a received message is hidden for the queue's visibility timeout (120 s here, the
 *    stack's), or for what `ChangeMessageVisibility` set, counted from that call; 0 makes it
 *    visible at once. A receipt handle names one receive: only the latest receive's handle
 *    changes or deletes the message; an older one is ignored (AWS: "the request succeeds, but the
 *    message might not be deleted"); a message not in flight answers `MessageNotInflight`.
 * 4. Receive count: every receive counts; when a message that has been received `maxReceiveCount`
 *    times would be received again, it moves to the dead-letter queue instead (redrive).
 */
export interface SimMessage {
  readonly messageId: string;
  readonly groupId: string;
  readonly deduplicationId: string;
  readonly body: string;
  readonly sentAtMs: number;
  receiveCount: number;
  /** Hidden until then (epoch ms); 0: visible. */
  invisibleUntilMs: number;
  /** The handle of the latest receive. */
  handle?: string;
}

export const DEDUP_WINDOW_MS = 5 * 60_000;

export class SimFifoQueue {
  readonly messages: SimMessage[] = [];
  readonly deadLetters: SimMessage[] = [];
  /** Deduplication id → when it was first accepted. */
  private readonly dedup = new Map<string, number>();
  private seq = 0;

  constructor(
    private readonly now: () => number,
    readonly options: { readonly visibilityTimeoutMs: number; readonly maxReceiveCount: number } = {
      visibilityTimeoutMs: 120_000,
      maxReceiveCount: 500,
    },
  ) {}

  /** `accepted: false` when deduplicated (SQS answers OK either way). */
  send(groupId: string, deduplicationId: string, body: string): { messageId: string; accepted: boolean } {
    const now = this.now();
    const first = this.dedup.get(deduplicationId);
    if (first !== undefined && now - first < DEDUP_WINDOW_MS)
      return { messageId: `dup-${first}`, accepted: false };
    this.dedup.set(deduplicationId, now);
    const message: SimMessage = {
      messageId: `m-${++this.seq}`,
      groupId,
      deduplicationId,
      body,
      sentAtMs: now,
      receiveCount: 0,
      invisibleUntilMs: 0,
    };
    this.messages.push(message);
    return { messageId: message.messageId, accepted: true };
  }

  isInFlight(m: SimMessage): boolean {
    return m.invisibleUntilMs > this.now();
  }

  /** The next message FIFO would hand out, or undefined; redrives what ran out of receives. */
  receive(): { message: SimMessage; receiptHandle: string } | undefined {
    for (;;) {
      const busyGroups = new Set(this.messages.filter((m) => this.isInFlight(m)).map((m) => m.groupId));
      const seen = new Set<string>();
      let next: SimMessage | undefined;
      for (const m of this.messages) {
        if (seen.has(m.groupId)) continue;
        seen.add(m.groupId); // only a group's first message may go out
        if (!busyGroups.has(m.groupId)) {
          next = m;
          break;
        }
      }
      if (!next) return undefined;
      if (next.receiveCount >= this.options.maxReceiveCount) {
        this.messages.splice(this.messages.indexOf(next), 1);
        this.deadLetters.push(next);
        continue;
      }
      next.receiveCount++;
      next.invisibleUntilMs = this.now() + this.options.visibilityTimeoutMs;
      next.handle = `${next.messageId}#${next.receiveCount}`;
      return { message: next, receiptHandle: next.handle };
    }
  }

  changeVisibility(receiptHandle: string, timeoutMs: number): void {
    const m = this.byHandle(receiptHandle);
    if (!m) return; // an older receive's handle, or a deleted message: no effect
    if (!this.isInFlight(m)) throw sqsError('MessageNotInflight', 'The message is not in flight.');
    m.invisibleUntilMs = timeoutMs === 0 ? 0 : this.now() + timeoutMs;
  }

  delete(receiptHandle: string): void {
    const m = this.byHandle(receiptHandle);
    if (m) this.messages.splice(this.messages.indexOf(m), 1);
  }

  /** ApproximateNumberOfMessages + ApproximateNumberOfMessagesNotVisible, exact here. */
  depth(): { visible: number; inFlight: number } {
    const inFlight = this.messages.filter((m) => this.isInFlight(m)).length;
    return { visible: this.messages.length - inFlight, inFlight };
  }

  /** Messages of a group still in the queue (visible or in flight). */
  ofGroup(groupId: string): SimMessage[] {
    return this.messages.filter((m) => m.groupId === groupId);
  }

  private byHandle(receiptHandle: string): SimMessage | undefined {
    return this.messages.find((m) => m.handle === receiptHandle);
  }
}

export function sqsError(name: string, message: string): Error {
  return Object.assign(new Error(message), { name, $fault: 'client', $metadata: { httpStatusCode: 400 } });
}

/**
 * The `SQSClient` surface the `RequestQueue` adapter uses, answered by simulated queues: the real
 * adapter (its group ids, deduplication ids and visibility arithmetic) runs unchanged.
 */
export function simSqsClient(queues: Readonly<Record<string, SimFifoQueue>>): {
  send(command: { constructor: { name: string }; input: Record<string, unknown> }): Promise<unknown>;
} {
  const queueOf = (url: unknown) => {
    const q = queues[String(url)];
    if (!q) throw sqsError('QueueDoesNotExist', `no queue ${String(url)}`);
    return q;
  };
  return {
    async send(command) {
      const input = command.input;
      switch (command.constructor.name) {
        case 'SendMessageCommand': {
          const { messageId } = queueOf(input.QueueUrl).send(
            String(input.MessageGroupId),
            String(input.MessageDeduplicationId),
            String(input.MessageBody),
          );
          return { MessageId: messageId };
        }
        case 'ChangeMessageVisibilityCommand':
          queueOf(input.QueueUrl).changeVisibility(
            String(input.ReceiptHandle),
            Number(input.VisibilityTimeout) * 1000,
          );
          return {};
        case 'DeleteMessageCommand':
          queueOf(input.QueueUrl).delete(String(input.ReceiptHandle));
          return {};
        case 'GetQueueAttributesCommand': {
          const { visible, inFlight } = queueOf(input.QueueUrl).depth();
          return {
            Attributes: {
              ApproximateNumberOfMessages: String(visible),
              ApproximateNumberOfMessagesNotVisible: String(inFlight),
            },
          };
        }
        default:
          throw new Error(`the simulated SQS does not answer ${command.constructor.name}`);
      }
    },
  };
}
