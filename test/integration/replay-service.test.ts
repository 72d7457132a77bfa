import { randomUUID } from 'node:crypto';
import { ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { beforeEach, describe, expect, it } from 'vitest';
import { DynamoLimiter } from '../../lambda/adapters/dynamo-limiter';
import { EchoModel, RetryableModelError } from '../../lambda/adapters/models';
import { ReplyStore } from '../../lambda/adapters/reply-store';
import { RequestQueue } from '../../lambda/adapters/request-queue';
import { parseTierLimits } from '../../lambda/core/limiter/policy';
import { queueDeadlineEpochMs } from '../../lambda/core/queue/request';
import type { ModelPort, OutgoingMessage } from '../../lambda/services/ports';
import {
  DEFAULT_REPLAY_SETTINGS,
  type QueueRecord,
  ReplayService,
} from '../../lambda/services/replay-service';
import { DEFAULT_RUNNER_SETTINGS, ReplyRunner } from '../../lambda/services/reply-runner';
import { createTestResources, type TestResources } from '../support/emulators';
import { enqueueWhole } from '../support/queued';

const T0 = Date.UTC(2026, 10, 24, 12, 0, 0);
const requestIdOf = (m: OutgoingMessage) => ('requestId' in m ? m.requestId : undefined);

/** Records what would have gone to each connection; the one test double of this file (no socket). */
class RecordingSender {
  readonly sent: { connectionId: string; message: OutgoingMessage }[] = [];
  gone = new Set<string>();
  async send(connectionId: string, message: OutgoingMessage): Promise<'sent' | 'gone'> {
    if (this.gone.has(connectionId)) return 'gone';
    this.sent.push({ connectionId, message });
    return 'sent';
  }
  types(requestId: string): string[] {
    return this.sent.filter((s) => requestIdOf(s.message) === requestId).map((s) => s.message.type);
  }
}

describe('ReplayService (exactly once over at-least-once delivery)', () => {
  let res: TestResources;
  let clock: number;
  let sender: RecordingSender;
  let limiter: DynamoLimiter;
  let store: ReplyStore;
  let queue: RequestQueue;

  /**
   * The processor's service, handing off to a real reply runner in this process: awaited (the
   * reply runs to its end before the hand-off returns) unless `detached`.
   */
  const service = (model: ModelPort = new EchoModel({ delayMs: 0 }), detached = false) => {
    const deps = {
      limiter,
      store,
      queue: heldQueue(),
      sender,
      directory: { listByUser: async () => [] },
      metrics: { count: () => undefined, milliseconds: () => undefined },
      log: { info: () => undefined, warn: () => undefined, error: () => undefined },
      now: () => clock,
      sleep: async (ms: number) => {
        clock += ms;
      },
    };
    const runner = new ReplyRunner({
      ...deps,
      model,
      settings: { ...DEFAULT_RUNNER_SETTINGS, modelRetryBaseMs: 10, stopBeforeTimeoutMs: 1000 },
    });
    return new ReplayService({
      ...deps,
      handoff: {
        handOff: async (job) => {
          const run = runner.run(job, () => 60_000);
          if (!detached) await run;
        },
      },
      settings: { ...DEFAULT_REPLAY_SETTINGS, leaseMs: 5_000 },
    });
  };

  /** The real queue; hand-made wake-ups (receipt handles `h-…`) are held and released in memory. */
  function heldQueue(): RequestQueue {
    return Object.assign(Object.create(queue), {
      defer: async (handle: string, ms: number) => {
        if (!handle.startsWith('h-')) await queue.defer(handle, ms);
      },
    });
  }

  /** Queues a request the way the Message function does, and returns its SQS record. */
  async function enqueue(
    userId: string,
    requestId = `r-${randomUUID().slice(0, 8)}`,
  ): Promise<QueueRecord | undefined> {
    const slot = await enqueueWhole(
      limiter,
      store,
      {
        userId,
        requestId,
        connectionId: 'conn-a',
        message: 'hello queue',
        estimatedInputTokens: 3,
        enqueuedAtEpochMs: clock,
        expiresAtEpochMs: queueDeadlineEpochMs(clock, 900),
      },
      10,
      clock,
    );
    expect(slot.kind).toBe('queued');
    await queue.send({ v: 1, userId, requestId });
    const { Messages } = await res.sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: res.queues.requests.url,
        MessageSystemAttributeNames: ['All'],
        VisibilityTimeout: 0,
      }),
    );
    const m = Messages?.find((x) => JSON.parse(x.Body!).requestId === requestId);
    if (!m) return undefined;
    return {
      messageId: m.MessageId!,
      receiptHandle: m.ReceiptHandle!,
      body: m.Body!,
      groupId: m.Attributes!.MessageGroupId!,
      deduplicationId: m.Attributes!.MessageDeduplicationId!,
    };
  }

  beforeEach(async () => {
    res = await createTestResources('replay');
    clock = T0;
    sender = new RecordingSender();
    limiter = new DynamoLimiter({
      client: res.dynamo,
      tableName: res.tables.limits,
      tiers: parseTierLimits(''),
    });
    store = new ReplyStore(res.dynamo, res.tables.requests);
    queue = new RequestQueue(res.sqs, res.queues.requests.url, res.queues.dlq.url);
  });

  it('processes a request delivered twice exactly once', async () => {
    const user = `u-${randomUUID()}`;
    const record = (await enqueue(user))!;
    const id = JSON.parse(record.body).requestId;
    const results = await Promise.all([
      service().replay(record, () => 60_000),
      service().replay(record, () => 60_000),
    ]);
    // Both hold the wake-up: one while its reply runs, the other until the active one's lease ends.
    expect(results).toEqual(['retry', 'retry']);
    const again = await service().replay(record, () => 60_000);
    expect(again).toBe('done');
    expect(sender.types(id).filter((t) => t === 'message_complete')).toHaveLength(1);
    expect(sender.types(id).filter((t) => t === 'queue_processing_started')).toHaveLength(1);
    const { snap, limits } = await limiter.view(user, undefined, clock);
    expect(limits.find((l) => l.name === 'messageRate')?.used).toBe(1);
    expect(snap.waiting).toEqual([]);
    expect(snap.active).toBeUndefined();
    expect(snap.queued).toEqual({});
    expect(snap.reservations).toEqual({});
  });

  it('recovers from a crash mid-reply with one retry and one complete reply, charging once', async () => {
    const user = `u-${randomUUID()}`;
    const record = (await enqueue(user))!;
    const id = JSON.parse(record.body).requestId;
    // The first attempt streams one chunk and then its process dies (the promise never settles).
    const crashing: ModelPort = {
      async *stream() {
        yield { type: 'chunk', text: 'Echo: ' };
        await new Promise(() => undefined);
      },
    };
    void service(crashing, true).replay(record, () => 60_000);
    await expect.poll(() => sender.types(id)).toContain('chunk');
    // SQS hands the message out again; inside the lease the new delivery waits…
    expect(await service().replay(record, () => 60_000)).toBe('retry');
    // …after it, it takes over with the reservation already made.
    clock += 6_000;
    expect(await service().replay(record, () => 60_000)).toBe('retry');
    expect(sender.types(id).filter((t) => t === 'message_complete')).toHaveLength(1);
    const { snap, limits } = await limiter.view(user, undefined, clock);
    expect(snap.active).toBeUndefined();
    expect(snap.reservations).toEqual({});
    // Admitted once, whatever the attempts: today's count holds one message (the bucket has
    // refilled since, so it cannot tell), and the tokens of the one complete reply, settled once.
    const complete = sender.sent.find(
      (s) => requestIdOf(s.message) === id && s.message.type === 'message_complete',
    )?.message as { usage: { totalTokens: number } } | undefined;
    expect(complete?.usage.totalTokens).toBeGreaterThan(0);
    expect(limits.find((l) => l.name === 'dailyTokens')?.used).toBe(complete?.usage.totalTokens);
    const today = (await limiter.status(user, undefined, clock)).history?.at(-1);
    expect(today).toMatchObject({ messages: 1, tokens: complete?.usage.totalTokens });
  });

  it('recovers from a crash before the decision: nothing moved, the next delivery runs it once', async () => {
    const user = `u-${randomUUID()}`;
    const record = (await enqueue(user))!;
    const id = JSON.parse(record.body).requestId;
    const real = limiter;
    let crashed = false;
    limiter = Object.assign(Object.create(real), {
      decide: (...args: Parameters<DynamoLimiter['decide']>) => {
        if (!crashed) {
          crashed = true;
          throw new Error('process died before deciding');
        }
        return real.decide(...args);
      },
    });
    await expect(service().replay(record, () => 60_000)).rejects.toThrow('process died');
    limiter = Object.assign(Object.create(real), { decide: real.decide.bind(real) });
    expect(await service().replay(record, () => 60_000)).toBe('retry');
    expect(sender.types(id).filter((t) => t === 'message_complete')).toHaveLength(1);
    expect(
      (await real.status(user, undefined, clock)).limits.find((l) => l.name === 'messageRate')?.used,
    ).toBe(1);
  });

  it('a crash while sending the final reply after the commit: the model is not run again, charged once', async () => {
    const user = `u-${randomUUID()}`;
    const record = (await enqueue(user))!;
    const id = JSON.parse(record.body).requestId;
    let runs = 0;
    const counting: ModelPort = {
      stream(input) {
        runs++;
        return new EchoModel({ delayMs: 0 }).stream(input);
      },
    };
    // The process dies while sending message_complete, after the commit settled the request.
    const send = sender.send.bind(sender);
    let dead = false;
    sender.send = async (connectionId, message) => {
      if (message.type === 'message_complete' && !dead) {
        dead = true;
        throw new Error('process died while sending');
      }
      return send(connectionId, message);
    };
    const first = await service(counting).replay(record, () => 60_000);
    expect(first).toBe('retry');
    expect(await service(counting).replay(record, () => 60_000)).toBe('done');
    expect(runs).toBe(1);
    // The post that failed was tried once more, so the reply still arrived once.
    expect(sender.types(id).filter((t) => t === 'message_complete')).toHaveLength(1);
    const { snap } = await limiter.view(user, undefined, clock);
    expect(snap.reservations).toEqual({});
  });

  it('replays the head of the list, whichever request the wake-up was sent for', async () => {
    const user = `u-${randomUUID()}`;
    await enqueue(user, 'first');
    await enqueue(user, 'second');
    // FIFO would hand out one message of the group at a time; here two records name each request.
    const wakeUp = (requestId: string): QueueRecord => ({
      messageId: `m-${requestId}`,
      receiptHandle: `h-${requestId}`,
      body: JSON.stringify({ v: 1, userId: user, requestId }),
      groupId: user,
      deduplicationId: requestId,
    });
    const [first, second] = [wakeUp('first'), wakeUp('second')];
    // SQS hands out the second request's message first (sends of one user may race).
    expect(await service().replay(second, () => 60_000)).toBe('retry');
    expect(sender.types('first')).toContain('message_complete');
    expect(sender.types('second')).toEqual(['queue_position']);
    expect(await service().replay(first, () => 60_000)).toBe('retry');
    expect(sender.types('second')).toContain('message_complete');
    const order = sender.sent
      .filter((s) => s.message.type === 'queue_processing_started')
      .map((s) => requestIdOf(s.message));
    expect(order).toEqual(['first', 'second']);
    // A wake-up with nobody waiting changes nothing.
    expect(await service().replay(first, () => 60_000)).toBe('done');
  });

  it('moves a request that fails for good to the DLQ, refunds it and tells the user', async () => {
    const user = `u-${randomUUID()}`;
    const record = (await enqueue(user))!;
    const id = JSON.parse(record.body).requestId;
    const poison: ModelPort = {
      // biome-ignore lint/correctness/useYield: a model that fails before producing anything
      async *stream() {
        throw new Error('ValidationException: the model refuses this input');
      },
    };
    expect(await service(poison).replay(record, () => 60_000)).toBe('retry');
    expect(sender.types(id)).toContain('request_failed');
    expect((await limiter.view(user, undefined, clock)).snap.active).toBeUndefined();
    const { Messages } = await res.sqs.send(
      new ReceiveMessageCommand({ QueueUrl: res.queues.dlq.url, MessageAttributeNames: ['All'] }),
    );
    expect(JSON.parse(Messages![0]!.Body!).requestId).toBe(id);
    expect(Messages![0]!.MessageAttributes?.reason?.StringValue).toContain('ValidationException');
    const status = await limiter.status(user, undefined, clock);
    expect(status.limits.find((l) => l.name === 'dailyTokens')?.used).toBe(0);
  });

  it('retries a retryable model error later on the same reservation', async () => {
    const user = `u-${randomUUID()}`;
    const record = (await enqueue(user))!;
    const id = JSON.parse(record.body).requestId;
    let calls = 0;
    const flaky: ModelPort = {
      stream(input) {
        calls++;
        if (calls === 1) throw new RetryableModelError('throttled');
        return new EchoModel({ delayMs: 0 }).stream(input);
      },
    };
    // The runner retries a throttled model itself (after a backoff), on the same reservation.
    expect(await service(flaky).replay(record, () => 60_000)).toBe('retry');
    expect(calls).toBe(2);
    expect(sender.types(id).filter((t) => t === 'message_complete')).toHaveLength(1);
  });

  it('expires a request not started within MAX_QUEUE_WAIT + 60 s', async () => {
    const user = `u-${randomUUID()}`;
    const record = (await enqueue(user))!;
    const id = JSON.parse(record.body).requestId;
    clock += 961_000;
    expect(await service().replay(record, () => 60_000)).toBe('done');
    expect(sender.types(id)).toEqual(['request_expired']);
    const { snap } = await limiter.view(user, undefined, clock);
    expect(snap.waiting).toEqual([]);
    expect(snap.queued).toEqual({});
  });

  it('waits for the limiter when the user is over the rate, in-process for short waits', async () => {
    const user = `u-${randomUUID()}`;
    for (let i = 0; i < 25; i++)
      await limiter.decide({ userId: user, requestId: `d${i}`, estimatedInputTokens: 1 }, clock);
    const record = (await enqueue(user))!;
    const id = JSON.parse(record.body).requestId;
    const start = clock;
    expect(await service().replay(record, () => 60_000)).toBe('retry');
    // The bucket refills one message every 3 s: the replay started exactly then.
    const started = sender.sent.find(
      (s) => s.message.type === 'queue_processing_started' && s.message.requestId === id,
    );
    expect(started?.message.timestamp).toBe(start + 3000);
  });

  it('expires at once, with its reason, a head the token budget cannot take before its deadline, and serves the next', async () => {
    const user = `u-${randomUUID()}`;
    // 60 tokens left today: a request asking 1,000 output tokens cannot run before midnight.
    await limiter.setOverride(user, { limits: { dailyTokens: 60 } });
    const big = await enqueueWhole(
      limiter,
      store,
      {
        userId: user,
        requestId: 'big',
        connectionId: 'conn-a',
        message: 'x'.repeat(200),
        maxTokens: 1000,
        estimatedInputTokens: 50,
        enqueuedAtEpochMs: clock,
        expiresAtEpochMs: queueDeadlineEpochMs(clock, 900),
      },
      10,
      clock,
    );
    expect(big.kind).toBe('queued');
    const small = (await enqueue(user, 'small'))!;
    expect(await service().replay(small, () => 60_000)).toBe('retry');
    expect(sender.sent.find((s) => s.message.type === 'request_expired')?.message).toMatchObject({
      requestId: 'big',
      reason: 'dailyTokens will not allow it before its deadline',
    });
    expect(sender.types('small')).toContain('message_complete');
  });

  it('parks an unreadable message in the DLQ', async () => {
    const result = await service().replay(
      { messageId: 'm', receiptHandle: 'h', body: '{"not":"a request"}', groupId: 'g', deduplicationId: 'd' },
      () => 60_000,
    );
    expect(result).toBe('done');
    const { Messages } = await res.sqs.send(new ReceiveMessageCommand({ QueueUrl: res.queues.dlq.url }));
    expect(Messages?.[0]?.Body).toBe('{"not":"a request"}');
  });
});
