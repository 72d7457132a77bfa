import { randomUUID } from 'node:crypto';
import {
  CreateQueueCommand,
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  type Message,
  ReceiveMessageCommand,
  SendMessageCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import { beforeEach, describe, expect, it } from 'vitest';
import { DynamoLimiter } from '../../lambda/adapters/dynamo-limiter';
import { EchoModel } from '../../lambda/adapters/models';
import { ReplyStore } from '../../lambda/adapters/reply-store';
import { RequestQueue } from '../../lambda/adapters/request-queue';
import { parseTierLimits } from '../../lambda/core/limiter/policy';
import { queueDeadlineEpochMs, wakeUpCause } from '../../lambda/core/queue/request';
import { ChatService } from '../../lambda/services/chat-service';
import type { OutgoingMessage, ReplyHandoffPort } from '../../lambda/services/ports';
import {
  DEFAULT_REPLAY_SETTINGS,
  type QueueRecord,
  ReplayService,
} from '../../lambda/services/replay-service';
import { DEFAULT_RUNNER_SETTINGS, ReplyRunner } from '../../lambda/services/reply-runner';
import { createTestResources, type TestResources } from '../support/emulators';
import { enqueueWhole } from '../support/queued';

const T0 = Date.UTC(2026, 10, 24, 12, 0, 0);
const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };
const noMetrics = { count: () => undefined, milliseconds: () => undefined };

class RecordingSender {
  readonly sent: { connectionId: string; message: OutgoingMessage }[] = [];
  async send(connectionId: string, message: OutgoingMessage): Promise<'sent'> {
    this.sent.push({ connectionId, message });
    return 'sent';
  }
  of(type: string): OutgoingMessage[] {
    return this.sent.map((s) => s.message).filter((m) => m.type === type);
  }
}

/** Every message of the queue that is visible now (received with no hold, so they stay). */
async function peek(sqs: SQSClient, queueUrl: string): Promise<Message[]> {
  const { Messages } = await sqs.send(
    new ReceiveMessageCommand({
      QueueUrl: queueUrl,
      MaxNumberOfMessages: 10,
      VisibilityTimeout: 0,
      MessageSystemAttributeNames: ['All'],
    }),
  );
  return Messages ?? [];
}

function recordOf(m: Message): QueueRecord {
  return {
    messageId: m.MessageId!,
    receiptHandle: m.ReceiptHandle!,
    body: m.Body!,
    groupId: m.Attributes!.MessageGroupId!,
    deduplicationId: m.Attributes!.MessageDeduplicationId!,
    receiveCount: Number(m.Attributes!.ApproximateReceiveCount),
  };
}

describe('wake-ups of a user queue', () => {
  let res: TestResources;
  let clock: number;
  let sender: RecordingSender;
  let limiter: DynamoLimiter;
  let store: ReplyStore;

  beforeEach(async () => {
    res = await createTestResources('wakeups');
    clock = T0;
    sender = new RecordingSender();
    // One request in flight: while the first one's reply runs, the next ones wait in the queue.
    limiter = new DynamoLimiter({
      client: res.dynamo,
      tableName: res.tables.limits,
      tiers: parseTierLimits({ tiers: { free: { requestsInFlight: 1 } } }),
    });
    store = new ReplyStore(res.dynamo, res.tables.requests);
  });

  const chat = (sqs: SQSClient = res.sqs, handoff: ReplyHandoffPort = { handOff: async () => undefined }) =>
    new ChatService({
      limiter,
      store,
      queue: new RequestQueue(sqs, res.queues.requests.url),
      sender,
      directory: { listByUser: async () => [] },
      handoff,
      metrics: noMetrics,
      log: quiet,
      settings: { maxQueuedPerUser: 10, maxQueueWaitSeconds: 900 },
      now: () => clock,
    });

  it('wakes the queue again for a request id reused after its request ended (within the 5-minute dedup window)', async () => {
    const user = { userId: `u-${randomUUID()}`, tier: 'free' as const };
    const service = chat();
    expect((await service.sendMessage(user, 'c1', { message: 'first', requestId: 'x0' })).kind).toBe(
      'handed-off',
    );
    // Queued at position 1: it sends the user's wake-up.
    expect(await service.sendMessage(user, 'c1', { message: 'again', requestId: 'same' })).toMatchObject({
      kind: 'queued',
      position: 1,
    });
    const [first] = await peek(res.sqs, res.queues.requests.url);
    expect(first).toBeDefined();
    // The request ends (cancelled), its wake-up is consumed: the id may be used again (SPEC §3).
    expect((await service.cancel(user, 'c1', 'same')).kind).toBe('cancelled');
    await res.sqs.send(
      new DeleteMessageCommand({ QueueUrl: res.queues.requests.url, ReceiptHandle: first!.ReceiptHandle! }),
    );
    clock += 1000;
    expect(await service.sendMessage(user, 'c1', { message: 'reused', requestId: 'same' })).toMatchObject({
      kind: 'queued',
      position: 1,
    });
    // SQS keeps deduplication ids for 5 minutes: with hash(user, request) the second wake-up was
    // dropped and the request waited forever.
    const after = await peek(res.sqs, res.queues.requests.url);
    expect(after.map((m) => JSON.parse(m.Body!).requestId)).toEqual(['same']);
    expect(after[0]!.Attributes!.MessageDeduplicationId).not.toBe(first!.Attributes!.MessageDeduplicationId);
  });

  it("wakes the new head when the first request's send fails after a second was queued behind it", async () => {
    const user = { userId: `u-${randomUUID()}`, tier: 'free' as const };
    // The first send of A's wake-up fails, but only once B has been queued at position 2.
    let bQueued!: () => void;
    const bIsQueued = new Promise<void>((resolve) => {
      bQueued = resolve;
    });
    const faulty = Object.create(res.sqs) as SQSClient;
    let failed = false;
    faulty.send = (async (command: unknown, ...rest: unknown[]) => {
      if (
        command instanceof SendMessageCommand &&
        !failed &&
        JSON.parse(command.input.MessageBody!).requestId === 'A'
      ) {
        failed = true;
        await bIsQueued;
        throw Object.assign(new Error('connection reset'), { name: 'TimeoutError' });
      }
      return (res.sqs.send as (...a: unknown[]) => Promise<unknown>)(command, ...rest);
    }) as SQSClient['send'];
    const service = chat(faulty);
    expect((await service.sendMessage(user, 'c1', { message: 'first', requestId: 'x0' })).kind).toBe(
      'handed-off',
    );
    const a = service.sendMessage(user, 'c1', { message: 'a', requestId: 'A' });
    // B is queued while A's send is in the air: it is second, so it sends no wake-up of its own.
    await new Promise((resolve) => setTimeout(resolve, 50));
    const b = await service.sendMessage(user, 'c2', { message: 'b', requestId: 'B' });
    expect(b).toMatchObject({ kind: 'queued', position: 2 });
    bQueued();
    expect(await a).toMatchObject({ kind: 'refused', code: 'INTERNAL_ERROR' });
    const { snap } = await limiter.view(user.userId, undefined, clock);
    expect(snap.waiting).toEqual(['B']);
    // B is first now, and something wakes the queue for it.
    const wakeUps = await peek(res.sqs, res.queues.requests.url);
    expect(wakeUps.map((m) => JSON.parse(m.Body!).userId)).toEqual([user.userId]);
  });

  it('serves a backlog longer than the receive budget: a worn wake-up is replaced before it reaches the DLQ', async () => {
    // A queue like the stack's, with a tiny receive budget: 4 receives, then the DLQ.
    const name = `wakeups-${randomUUID().slice(0, 8)}`;
    const dlq = await res.sqs.send(
      new CreateQueueCommand({ QueueName: `${name}-dlq.fifo`, Attributes: { FifoQueue: 'true' } }),
    );
    const { Attributes } = await res.sqs.send(
      new GetQueueAttributesCommand({ QueueUrl: dlq.QueueUrl!, AttributeNames: ['QueueArn'] }),
    );
    const main = await res.sqs.send(
      new CreateQueueCommand({
        QueueName: `${name}.fifo`,
        Attributes: {
          FifoQueue: 'true',
          VisibilityTimeout: '60',
          RedrivePolicy: JSON.stringify({ deadLetterTargetArn: Attributes!.QueueArn, maxReceiveCount: 4 }),
        },
      }),
    );
    const queue = new RequestQueue(res.sqs, main.QueueUrl!, dlq.QueueUrl!);
    const unlimited = new DynamoLimiter({
      client: res.dynamo,
      tableName: res.tables.limits,
      tiers: parseTierLimits(''),
    });
    const user = `u-${randomUUID()}`;
    const ids = Array.from({ length: 7 }, (_, i) => `r${i}`);
    for (const requestId of ids) {
      const slot = await enqueueWhole(
        unlimited,
        store,
        {
          userId: user,
          requestId,
          connectionId: 'c1',
          message: 'hello',
          estimatedInputTokens: 2,
          enqueuedAtEpochMs: clock,
          expiresAtEpochMs: queueDeadlineEpochMs(clock, 900),
        },
        10,
        clock,
      );
      expect(slot.kind).toBe('queued');
    }
    await queue.send({ v: 1, userId: user, requestId: 'r0', cause: wakeUpCause.enqueue(clock) });
    const deps = {
      limiter: unlimited,
      store,
      queue,
      sender,
      directory: { listByUser: async () => [] },
      metrics: noMetrics,
      log: quiet,
      now: () => clock,
      sleep: async (ms: number) => {
        clock += ms;
      },
    };
    const runner = new ReplyRunner({
      ...deps,
      model: new EchoModel({ delayMs: 0 }),
      settings: DEFAULT_RUNNER_SETTINGS,
    });
    const replay = new ReplayService({
      ...deps,
      // The reply runs to its end (and releases the wake-up) before the hand-off returns.
      handoff: { handOff: (job) => runner.run(job, () => 60_000) },
      settings: { ...DEFAULT_REPLAY_SETTINGS, refreshAfterReceives: 3 },
    });
    // The event source mapping: receive, replay, delete what is done.
    for (let round = 0; round < 30; round++) {
      const { Messages } = await res.sqs.send(
        new ReceiveMessageCommand({ QueueUrl: main.QueueUrl!, MessageSystemAttributeNames: ['All'] }),
      );
      const m = Messages?.[0];
      if (!m) break;
      if ((await replay.replay(recordOf(m), () => 60_000)) === 'done') {
        await res.sqs.send(
          new DeleteMessageCommand({ QueueUrl: main.QueueUrl!, ReceiptHandle: m.ReceiptHandle! }),
        );
      }
    }
    // Every request of the backlog got its reply; nothing was left to the DLQ.
    expect(sender.of('message_complete').map((m) => ('requestId' in m ? m.requestId : ''))).toEqual(ids);
    expect(await peek(res.sqs, dlq.QueueUrl!)).toEqual([]);
    expect((await unlimited.view(user, undefined, clock)).snap.waiting).toEqual([]);
  });
});
