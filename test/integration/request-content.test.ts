import { GetItemCommand } from '@aws-sdk/client-dynamodb';
import { ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { beforeEach, describe, expect, it } from 'vitest';
import { DynamoLimiter } from '../../lambda/adapters/dynamo-limiter';
import { EchoModel } from '../../lambda/adapters/models';
import { ReplyStore } from '../../lambda/adapters/reply-store';
import { RequestQueue } from '../../lambda/adapters/request-queue';
import { reservationFromMarker } from '../../lambda/core/limiter/decide/settle';
import { parseTierLimits } from '../../lambda/core/limiter/policy';
import { ChatService } from '../../lambda/services/chat-service';
import type { OutgoingMessage } from '../../lambda/services/ports';
import {
  DEFAULT_REPLAY_SETTINGS,
  type QueueRecord,
  ReplayService,
} from '../../lambda/services/replay-service';
import { DEFAULT_RUNNER_SETTINGS, ReplyRunner } from '../../lambda/services/reply-runner';
import { createTestResources, type TestResources } from '../support/emulators';
import { itemSizeBytes } from '../support/item-size';

const T0 = Date.UTC(2026, 10, 24, 12, 0, 0);
const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };
const noMetrics = { count: () => undefined, milliseconds: () => undefined };
/** An API Gateway connection id has this shape (16 characters). */
const CONNECTION = 'L0SM9cOFvHcCIhw=';
/** Every per-user limit kind on, none of them binding for these requests but in flight. */
const TIERS = parseTierLimits({
  tiers: {
    free: {
      messagesPerMinute: 600,
      burst: 100,
      requestsInFlight: 1,
      tokensPerMinute: 10_000_000,
      hourlyMessages: 1_000,
      dailyTokens: 100_000_000,
      weeklyTokens: 100_000_000,
      monthlyTokens: 100_000_000,
      dailyCostUsd: 1_000,
      monthlyCostUsd: 1_000,
    },
  },
});
/** Ten prompts of 8,000 four-byte characters (MAX_MESSAGE_CHARS), each one different. */
const PROMPTS = Array.from({ length: 10 }, (_, i) => String.fromCodePoint(0x1f600 + i).repeat(8_000));

describe('waiting requests keep their content in the Requests table (issue 22)', () => {
  let res: TestResources;
  let clock: number;
  let sent: { connectionId: string; message: OutgoingMessage }[];
  let prompts: Map<string, string[]>;

  beforeEach(async () => {
    res = await createTestResources('content');
    clock = T0;
    sent = [];
    prompts = new Map();
  });

  const limiter = () => new DynamoLimiter({ client: res.dynamo, tableName: res.tables.limits, tiers: TIERS });
  const common = () => ({
    store: new ReplyStore(res.dynamo, res.tables.requests),
    queue: heldQueue(new RequestQueue(res.sqs, res.queues.requests.url, res.queues.dlq.url)),
    sender: {
      send: async (connectionId: string, message: OutgoingMessage) => {
        sent.push({ connectionId, message });
        return 'sent' as const;
      },
    },
    directory: { listByUser: async () => [] },
    metrics: noMetrics,
    log: quiet,
    now: () => clock,
  });

  /** The Message function: the first request is admitted (its reply never runs), the next 10 wait. */
  async function queueTen(userId: string) {
    const chat = new ChatService({
      ...common(),
      limiter: limiter(),
      handoff: { handOff: async () => undefined },
      settings: { maxQueuedPerUser: 10, maxQueueWaitSeconds: 900 },
    });
    const identity = { userId, tier: 'free' as const };
    const first = await chat.sendMessage(identity, CONNECTION, { message: 'first' });
    expect(first.kind).toBe('handed-off');
    const ids: string[] = [];
    for (const [i, message] of PROMPTS.entries()) {
      const outcome = await chat.sendMessage(identity, CONNECTION, { message });
      expect(outcome).toMatchObject({ kind: 'queued', position: i + 1 });
      ids.push(outcome.kind === 'queued' ? outcome.requestId : '');
    }
    return { first: first.kind === 'handed-off' ? first.requestId : '', ids };
  }

  /** The processor, handing off to a real reply runner that runs to its end before it returns. */
  function processor() {
    const sleep = async (ms: number) => {
      clock += ms;
    };
    const deps = { ...common(), limiter: limiter(), sleep };
    const runner = new ReplyRunner({
      ...deps,
      model: new EchoModel({ delayMs: 0 }),
      settings: { ...DEFAULT_RUNNER_SETTINGS, modelRetryBaseMs: 10, stopBeforeTimeoutMs: 1000 },
    });
    return new ReplayService({
      ...deps,
      handoff: {
        handOff: async (job) => {
          prompts.set(job.requestId, [...(prompts.get(job.requestId) ?? []), job.prompt]);
          await runner.run(job, () => 60_000);
        },
      },
      settings: DEFAULT_REPLAY_SETTINGS,
    });
  }

  /** The real queue, but the wake-up this test serves with (receipt handle `h-…`) is held in memory. */
  function heldQueue(queue: RequestQueue): RequestQueue {
    return Object.assign(Object.create(queue), {
      defer: async (handle: string, ms: number) => {
        if (!handle.startsWith('h-')) await queue.defer(handle, ms);
      },
    });
  }

  /** The wake-up the first enqueue sent, served under a receipt handle held in memory. */
  async function wakeUp(): Promise<QueueRecord> {
    const { Messages } = await res.sqs.send(
      new ReceiveMessageCommand({ QueueUrl: res.queues.requests.url, MessageSystemAttributeNames: ['All'] }),
    );
    const m = Messages![0]!;
    return {
      messageId: m.MessageId!,
      receiptHandle: `h-${m.MessageId}`,
      body: m.Body!,
      groupId: m.Attributes!.MessageGroupId!,
      deduplicationId: m.Attributes!.MessageDeduplicationId!,
    };
  }

  /** Ends the first (direct) request, whose reply never ran, so its in-flight slot frees. */
  async function endFirst(userId: string, requestId: string) {
    const l = limiter();
    const { snap } = await l.view(userId, undefined, clock);
    const pending = snap.reservations[requestId]!;
    await l.reconcile(
      reservationFromMarker(userId, requestId, pending),
      { inputTokens: 1, outputTokens: 1 },
      clock,
    );
  }

  /** Serves the user's queue with its one wake-up until the processor says it is done. */
  async function serveAll(record: QueueRecord) {
    for (let i = 0; i < 30; i++) {
      if ((await processor().replay(record, () => 60_000)) === 'done') return;
    }
    throw new Error('the queue was not served to its end');
  }

  it("keeps a user's limiter item under 2 KB with 10 prompts of 8,000 four-byte characters waiting, and replays each once, in order, whole", async () => {
    const userId = crypto.randomUUID();
    const { first, ids } = await queueTen(userId);

    const { Item } = await res.dynamo.send(
      new GetItemCommand({
        TableName: res.tables.limits,
        Key: { pk: { S: `user#${userId}` } },
        ConsistentRead: true,
      }),
    );
    const size = itemSizeBytes(Item!);
    expect(size).toBeGreaterThan(500); // it does hold the 10 waiting requests' places
    expect(size).toBeLessThan(2048);

    await endFirst(userId, first);
    await serveAll(await wakeUp());

    expect([...prompts.keys()]).toEqual(ids);
    expect(ids.map((id) => prompts.get(id))).toEqual(PROMPTS.map((p) => [p]));
    for (const id of ids) {
      const finals = sent.filter((s) => s.message.type === 'message_complete' && s.message.requestId === id);
      expect(finals).toHaveLength(1);
    }
    const { snap } = await limiter().view(userId, undefined, clock);
    expect(snap.waiting).toEqual([]);
    expect(snap.queued).toEqual({});
  });

  it('fails a started request whose content is missing for good, with request_failed, and serves the next', async () => {
    const userId = crypto.randomUUID();
    const { first, ids } = await queueTen(userId);
    const store = new ReplyStore(res.dynamo, res.tables.requests);
    const { snap } = await limiter().view(userId, undefined, clock);
    await store.deleteContent(userId, snap.queued[ids[0]!]!);

    await endFirst(userId, first);
    await serveAll(await wakeUp());

    const lost = sent.filter((s) => 'requestId' in s.message && s.message.requestId === ids[0]);
    expect(lost.map((s) => s.message.type)).toEqual(['request_queued', 'request_failed']);
    expect(prompts.has(ids[0]!)).toBe(false);
    expect([...prompts.keys()]).toEqual(ids.slice(1));
    const after = await limiter().view(userId, undefined, clock);
    expect(after.snap.waiting).toEqual([]);
    expect(after.snap.active).toBeUndefined();
    expect(after.snap.reservations).toEqual({});
  });

  it('deletes the content of a cancelled request', async () => {
    const userId = crypto.randomUUID();
    const { ids } = await queueTen(userId);
    const store = new ReplyStore(res.dynamo, res.tables.requests);
    const { snap } = await limiter().view(userId, undefined, clock);
    const request = snap.queued[ids[3]!]!;
    expect((await store.getContent(userId, request))?.message).toBe(PROMPTS[3]);
    const chat = new ChatService({
      ...common(),
      limiter: limiter(),
      handoff: { handOff: async () => undefined },
      settings: { maxQueuedPerUser: 10, maxQueueWaitSeconds: 900 },
    });
    expect(await chat.cancel({ userId, tier: 'free' }, CONNECTION, ids[3]!)).toEqual({ kind: 'cancelled' });
    expect(await store.getContent(userId, request)).toBeUndefined();
  });
});
