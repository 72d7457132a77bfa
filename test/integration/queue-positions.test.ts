import { randomUUID } from 'node:crypto';
import { ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { beforeEach, describe, expect, it } from 'vitest';
import { DynamoLimiter } from '../../lambda/adapters/dynamo-limiter';
import { ReplyStore } from '../../lambda/adapters/reply-store';
import { RequestQueue } from '../../lambda/adapters/request-queue';
import type { TokenReservation } from '../../lambda/core/limiter/decision';
import { parseTierLimits } from '../../lambda/core/limiter/policy';
import { isNewerPlace, type ToldPlace } from '../../lambda/core/queue/places';
import { ChatService } from '../../lambda/services/chat-service';
import type { OutgoingMessage } from '../../lambda/services/ports';
import { DEFAULT_REPLAY_SETTINGS, ReplayService } from '../../lambda/services/replay-service';
import { createTestResources, type TestResources } from '../support/emulators';

const T0 = Date.UTC(2026, 10, 24, 12, 0, 0);
const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };
const noMetrics = { count: () => undefined, milliseconds: () => undefined };

describe('queue positions told by two functions at once', () => {
  let res: TestResources;
  let clock: number;

  beforeEach(async () => {
    res = await createTestResources('positions');
    clock = T0;
  });

  it("never go up for the client: the Message function's late request_queued is older news than the processor's queue_position", async () => {
    const tiers = parseTierLimits({ tiers: { free: { requestsInFlight: 1 } } });
    // The Message function and the processor: two instances, each with its own view of the item.
    const messageLimiter = new DynamoLimiter({ client: res.dynamo, tableName: res.tables.limits, tiers });
    const processorLimiter = new DynamoLimiter({ client: res.dynamo, tableName: res.tables.limits, tiers });
    const store = new ReplyStore(res.dynamo, res.tables.requests);
    const queue = new RequestQueue(res.sqs, res.queues.requests.url, res.queues.dlq.url);
    const arrived: OutgoingMessage[] = [];
    // B's request_queued leaves the Message function late: it is held until the gate opens.
    let openGate!: () => void;
    const gate = new Promise<void>((resolve) => {
      openGate = resolve;
    });
    let bWritten!: () => void;
    const bQueued = new Promise<void>((resolve) => {
      bWritten = resolve;
    });
    const sender = {
      send: async (_connectionId: string, message: OutgoingMessage) => {
        if (message.type === 'request_queued' && message.requestId === 'B') {
          bWritten();
          await gate;
        }
        arrived.push(message);
        return 'sent' as const;
      },
    };
    let first: TokenReservation | undefined;
    const shared = {
      store,
      queue,
      sender,
      directory: { listByUser: async () => [] },
      metrics: noMetrics,
      log: quiet,
      now: () => clock,
    };
    const chat = new ChatService({
      ...shared,
      limiter: messageLimiter,
      handoff: {
        handOff: async (job) => {
          first ??= job.reservation;
        },
      },
      settings: { maxQueuedPerUser: 10, maxQueueWaitSeconds: 900 },
    });
    const user = { userId: `u-${randomUUID()}`, tier: 'free' as const };
    expect((await chat.sendMessage(user, 'c1', { message: 'one', requestId: 'first' })).kind).toBe(
      'handed-off',
    );
    expect(await chat.sendMessage(user, 'c1', { message: 'a', requestId: 'A' })).toMatchObject({
      position: 1,
    });
    const b = chat.sendMessage(user, 'c1', { message: 'b', requestId: 'B' });
    await bQueued;

    // Meanwhile the first reply ends and the processor admits A: B moves up to 1 and is told so.
    await processorLimiter.reconcile(first!, { inputTokens: 1, outputTokens: 1 }, clock);
    const replay = new ReplayService({
      ...shared,
      limiter: processorLimiter,
      handoff: { handOff: async () => undefined },
      settings: DEFAULT_REPLAY_SETTINGS,
      sleep: async () => undefined,
    });
    const { Messages } = await res.sqs.send(
      new ReceiveMessageCommand({ QueueUrl: res.queues.requests.url, MessageSystemAttributeNames: ['All'] }),
    );
    const m = Messages![0]!;
    await replay.replay(
      {
        messageId: m.MessageId!,
        receiptHandle: m.ReceiptHandle!,
        body: m.Body!,
        groupId: m.Attributes!.MessageGroupId!,
        deduplicationId: m.Attributes!.MessageDeduplicationId!,
      },
      () => 60_000,
    );
    openGate();
    expect(await b).toMatchObject({ kind: 'queued', position: 2 });

    // On the wire B's notices arrive as: position 1, then the late position 2.
    const places = arrived.filter(
      (x): x is Extract<OutgoingMessage, { type: 'request_queued' | 'queue_position' }> =>
        (x.type === 'request_queued' || x.type === 'queue_position') && x.requestId === 'B',
    );
    expect(places.map((p) => [p.type, p.position])).toEqual([
      ['queue_position', 1],
      ['request_queued', 2],
    ]);
    // Each carries the version of the list it was computed from, so the client keeps the newer.
    let told: ToldPlace | undefined;
    const seen: number[] = [];
    for (const place of places) {
      if (!isNewerPlace(told, place)) continue;
      told = place;
      seen.push(place.position);
    }
    expect(seen).toEqual([1]);
  });
});
