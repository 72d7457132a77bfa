import { randomUUID } from 'node:crypto';
import { DeleteMessageCommand, type Message, ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { beforeEach, describe, expect, it } from 'vitest';
import { DynamoLimiter } from '../../lambda/adapters/dynamo-limiter';
import { ORPHAN_MARGIN_MS } from '../../lambda/adapters/limiter/global-counters';
import { EchoModel } from '../../lambda/adapters/models';
import { ReplyStore } from '../../lambda/adapters/reply-store';
import { RequestQueue } from '../../lambda/adapters/request-queue';
import { SweepIndex } from '../../lambda/adapters/sweep-index';
import type { GlobalLimits } from '../../lambda/core/limiter/global/limits';
import { parseLimitsConfig } from '../../lambda/core/limiter/policy';
import { queueDeadlineEpochMs, wakeUpCause } from '../../lambda/core/queue/request';
import { SWEEP_GRACE_MS } from '../../lambda/core/queue/sweep';
import type { OutgoingMessage, ReplyHandoffPort } from '../../lambda/services/ports';
import {
  DEFAULT_REPLAY_SETTINGS,
  type QueueRecord,
  ReplayService,
} from '../../lambda/services/replay-service';
import { DEFAULT_RUNNER_SETTINGS, ReplyRunner } from '../../lambda/services/reply-runner';
import { DEFAULT_SWEEP_SETTINGS, SweepService } from '../../lambda/services/sweep-service';
import { createTestResources, type TestResources } from '../support/emulators';
import { enqueueWhole } from '../support/queued';

const T0 = Date.UTC(2026, 10, 24, 12, 0, 0);
const LEASE_MS = 5_000;
const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };

class RecordingSender {
  readonly sent: OutgoingMessage[] = [];
  async send(_connectionId: string, message: OutgoingMessage): Promise<'sent'> {
    this.sent.push(message);
    return 'sent';
  }
  types(requestId: string): string[] {
    return this.sent.filter((m) => 'requestId' in m && m.requestId === requestId).map((m) => m.type);
  }
}

describe('the self-healing sweep', () => {
  let res: TestResources;
  let clock: number;
  let sender: RecordingSender;
  let limiter: DynamoLimiter;
  let queue: RequestQueue;
  let store: ReplyStore;
  let events: { detailType: string; detail: Record<string, unknown> }[];
  let repaired: string[];

  const deps = () => ({
    limiter,
    store,
    queue,
    sender,
    // A user's live connection (a lapsed direct request's final message follows the user).
    directory: { listByUser: async (userId: string) => [{ connectionId: `conn-${userId}` }] },
    log: quiet,
    now: () => clock,
  });

  const sweep = () =>
    new SweepService({
      ...deps(),
      index: new SweepIndex(res.dynamo, res.tables.limits),
      events: {
        publish: async (detailType, detail) => {
          events.push({ detailType, detail: { ...detail } });
        },
      },
      metrics: {
        count: (name, _value, dimensions) => {
          if (name === 'StateRepaired') repaired.push(String(dimensions?.kind));
        },
        milliseconds: () => undefined,
      },
      settings: DEFAULT_SWEEP_SETTINGS,
    });

  /** The processor's service; its reply runner runs in this process, awaited unless `crashes`. */
  const replay = (crashes = false) => {
    const base = {
      ...deps(),
      metrics: { count: () => undefined, milliseconds: () => undefined },
      sleep: async (ms: number) => {
        clock += ms;
      },
    };
    const runner = new ReplyRunner({
      ...base,
      model: new EchoModel({ delayMs: 0 }),
      settings: { ...DEFAULT_RUNNER_SETTINGS, stopBeforeTimeoutMs: 1000 },
    });
    const handoff: ReplyHandoffPort = {
      // A crashed runner: the hand-off is taken, and nothing ever settles it.
      handOff: async (job) => (crashes ? undefined : runner.run(job, () => 60_000)),
    };
    return new ReplayService({
      ...base,
      handoff,
      settings: { ...DEFAULT_REPLAY_SETTINGS, leaseMs: LEASE_MS },
    });
  };

  /** The user's wake-ups in the queue now (received and left visible). */
  async function wakeUps(userId: string): Promise<Message[]> {
    const { Messages } = await res.sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: res.queues.requests.url,
        MaxNumberOfMessages: 10,
        VisibilityTimeout: 0,
        MessageSystemAttributeNames: ['All'],
      }),
    );
    return (Messages ?? []).filter((m) => JSON.parse(m.Body!).userId === userId);
  }

  /** Serves the user's queue as the processor would, until no wake-up is left. */
  async function serve(userId: string, service = replay()): Promise<void> {
    for (let i = 0; i < 10; i++) {
      const [m] = await wakeUps(userId);
      if (!m) return;
      const record: QueueRecord = {
        messageId: m.MessageId!,
        receiptHandle: m.ReceiptHandle!,
        body: m.Body!,
        groupId: m.Attributes!.MessageGroupId!,
        deduplicationId: m.Attributes!.MessageDeduplicationId!,
      };
      if ((await service.replay(record, () => 60_000)) === 'done') {
        await res.sqs.send(
          new DeleteMessageCommand({ QueueUrl: res.queues.requests.url, ReceiptHandle: m.ReceiptHandle! }),
        );
      }
    }
  }

  /** Queues a request the way the Message function does, except that its wake-up is lost. */
  async function enqueueWithoutWakeUp(userId: string, requestId: string): Promise<void> {
    const slot = await enqueueWhole(
      limiter,
      store,
      {
        userId,
        requestId,
        connectionId: `conn-${requestId}`,
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

  function limiterWith(global?: Partial<GlobalLimits>): DynamoLimiter {
    const config = parseLimitsConfig({ global });
    return new DynamoLimiter({
      client: res.dynamo,
      tableName: res.tables.limits,
      tiers: config.tiers,
      global: config.global,
      clock: () => clock,
    });
  }

  beforeEach(async () => {
    res = await createTestResources('sweep');
    clock = T0;
    sender = new RecordingSender();
    limiter = limiterWith();
    store = new ReplyStore(res.dynamo, res.tables.requests);
    queue = new RequestQueue(res.sqs, res.queues.requests.url, res.queues.dlq.url);
    events = [];
    repaired = [];
  });

  it('sends a fresh wake-up for a queue whose wake-up was lost, and the request is answered once even if the old one turns up', async () => {
    const user = `u-${randomUUID()}`;
    await enqueueWithoutWakeUp(user, 'r1');
    // Within the grace nothing is repaired: the wake-up may be on its way.
    clock += 30_000;
    expect((await sweep().run(clock)).looked).toBe(0);
    expect(await wakeUps(user)).toEqual([]);
    clock += SWEEP_GRACE_MS;
    const report = await sweep().run(clock);
    expect(report.repaired['lost-wake-up']).toBe(1);
    expect(repaired).toEqual(['lost-wake-up']);
    expect(events).toEqual([
      {
        detailType: 'State Repaired',
        detail: expect.objectContaining({ kind: 'lost-wake-up', userId: user, requestId: 'r1' }),
      },
    ]);
    expect(await wakeUps(user)).toHaveLength(1);
    // The original wake-up was only late, not lost: two wake-ups of one user. One reply still.
    await queue.send({ v: 1, userId: user, requestId: 'r1', cause: wakeUpCause.enqueue(T0) });
    expect(await wakeUps(user)).toHaveLength(1); // FIFO: one message of the group at a time
    await serve(user);
    expect(await wakeUps(user)).toEqual([]);
    expect(sender.types('r1').filter((t) => t === 'message_complete')).toHaveLength(1);
    expect(sender.types('r1').filter((t) => t === 'queue_processing_started')).toHaveLength(1);
    // Nothing is left that needs an end: the next look takes the user out of the index.
    clock += 5 * 60_000;
    await sweep().run(clock);
    expect((await limiter.view(user, undefined, clock)).snap.sweepAfterEpochMs).toBeUndefined();
    expect(repaired).toEqual(['lost-wake-up']);
  });

  it('leaves a healthy user alone: a live wake-up served in time, and a deferred one, get no repair', async () => {
    const served = `u-${randomUUID()}`;
    await enqueueWithoutWakeUp(served, 'ok1');
    await queue.send({ v: 1, userId: served, requestId: 'ok1', cause: wakeUpCause.enqueue(clock) });
    await serve(served);
    // A user over its rate for a minute and more: its wake-up is deferred until then, not lost.
    limiter = limiterWith();
    const slow = `u-${randomUUID()}`;
    await limiter.setOverride(slow, { limits: { messagesPerMinute: 1, burst: 1 } });
    for (let i = 0; ; i++) {
      const direct = { userId: slow, requestId: `d${i}`, estimatedInputTokens: 1 };
      if (!(await limiter.decide({ ...direct, queue: { mode: 'direct' } }, clock)).allowed) break;
    }
    await enqueueWithoutWakeUp(slow, 'later');
    for (let minute = 1; minute <= 3; minute++) {
      clock = T0 + minute * 20_000;
      await sweep().run(clock);
    }
    expect(repaired).toEqual([]);
    expect(await wakeUps(slow)).toEqual([]);
    expect(sender.types('ok1').filter((t) => t === 'message_complete')).toHaveLength(1);
  });

  it('wakes the processor for an active request whose runner died and whose wake-up was lost; it is taken over and answered once', async () => {
    const user = `u-${randomUUID()}`;
    await enqueueWithoutWakeUp(user, 'act1');
    await queue.send({ v: 1, userId: user, requestId: 'act1', cause: wakeUpCause.enqueue(clock) });
    // Admitted and handed to a runner that dies; then its wake-up is lost (deleted).
    const [m] = await wakeUps(user);
    const record: QueueRecord = {
      messageId: m!.MessageId!,
      receiptHandle: m!.ReceiptHandle!,
      body: m!.Body!,
      groupId: m!.Attributes!.MessageGroupId!,
      deduplicationId: m!.Attributes!.MessageDeduplicationId!,
    };
    expect(await replay(true).replay(record, () => 60_000)).toBe('retry');
    await res.sqs.send(
      new DeleteMessageCommand({ QueueUrl: res.queues.requests.url, ReceiptHandle: m!.ReceiptHandle! }),
    );
    expect((await limiter.view(user, undefined, clock)).snap.active?.requestId).toBe('act1');
    clock += LEASE_MS + SWEEP_GRACE_MS;
    const report = await sweep().run(clock);
    expect(report.repaired['orphaned-active']).toBe(1);
    await serve(user);
    expect(sender.types('act1').filter((t) => t === 'message_complete')).toHaveLength(1);
    const { snap } = await limiter.view(user, undefined, clock);
    expect(snap.active).toBeUndefined();
    expect(snap.reservations).toEqual({});
  });

  it('expires a head past its deadline that nobody expired, tells its sender once, and wakes the next', async () => {
    const user = `u-${randomUUID()}`;
    await enqueueWithoutWakeUp(user, 'old');
    clock += 5 * 60_000;
    await enqueueWithoutWakeUp(user, 'young');
    // Both wake-ups lost, and the sweep itself down until the first request is long past its
    // deadline (enqueued + 900 s + 60 s).
    clock = T0 + (900 + 60) * 1000 + SWEEP_GRACE_MS;
    const report = await sweep().run(clock);
    expect(report.repaired['expired-head']).toBe(1);
    expect(report.repaired['lost-wake-up']).toBe(1);
    expect(sender.types('old')).toEqual(['request_expired']);
    expect(sender.types('young')).toEqual(['queue_position']);
    // A second run changes nothing and tells nobody again.
    await sweep().run(clock);
    expect(sender.types('old')).toEqual(['request_expired']);
    expect((await limiter.view(user, undefined, clock)).snap.waiting).toEqual(['young']);
    await serve(user);
    expect(sender.types('young').filter((t) => t === 'message_complete')).toHaveLength(1);
  });

  it('drops an in-flight slot whose runner never settled, then takes the user out of the index', async () => {
    const user = `u-${randomUUID()}`;
    const decision = await limiter.decide(
      { userId: user, requestId: 'direct', estimatedInputTokens: 1, queue: { mode: 'direct' } },
      clock,
    );
    expect(decision.allowed).toBe(true);
    const lease = (await limiter.view(user, undefined, clock)).snap.inFlight?.direct;
    expect(lease).toBeGreaterThan(clock);
    clock = lease! + SWEEP_GRACE_MS;
    const report = await sweep().run(clock);
    // Its reservation was held too: the request is ended with its slot (lapsed-direct-request).
    expect(report.repaired['lapsed-direct-request']).toBe(1);
    expect((await limiter.view(user, undefined, clock)).snap.inFlight).toEqual({});
    clock += 5 * 60_000;
    await sweep().run(clock);
    const { snap } = await limiter.view(user, undefined, clock);
    expect(snap.sweepAfterEpochMs).toBeUndefined();
  });

  /** Makes the sweep look at the user now, whenever its index says the next look is due. */
  async function lookAt(userId: string): Promise<void> {
    const { snap } = await limiter.view(userId, undefined, clock);
    if (snap.sweepAfterEpochMs === undefined) return;
    await sweep().sweepUser({ userId, sweepAfterEpochMs: snap.sweepAfterEpochMs }, clock);
  }

  it('ends once a direct request whose runner died after its claim: charged nothing, told once, and not before its lease and grace are past', async () => {
    const user = `u-${randomUUID()}`;
    const before = (await limiter.view(user, undefined, clock)).snap.tu ?? 0;
    const decision = await limiter.decide(
      { userId: user, requestId: 'crashed', estimatedInputTokens: 5, queue: { mode: 'direct' } },
      clock,
    );
    expect(decision.allowed).toBe(true);
    const lease = (await limiter.view(user, undefined, clock)).snap.inFlight?.crashed;
    // The runner claims it, then its process dies; Lambda's retry finds the claim taken.
    const claim = await limiter.claim(user, 'crashed', 'runner-1', {
      source: 'direct',
      inFlightUntilEpochMs: lease,
    });
    expect(claim.kind).toBe('claimed');
    expect((await limiter.view(user, undefined, clock)).snap.tu).toBeGreaterThan(before);
    // A runner inside its lease (and the grace) is never cut off.
    clock = lease! + SWEEP_GRACE_MS - 1;
    await sweep().run(clock);
    await lookAt(user);
    expect(sender.types('crashed')).toEqual([]);
    expect((await limiter.view(user, undefined, clock)).snap.reservations.crashed?.claim).toBe('runner-1');

    // The look that run moved comes a second later.
    clock = lease! + SWEEP_GRACE_MS + 1000;
    const report = await sweep().run(clock);
    expect(report.repaired['lapsed-direct-request']).toBe(1);
    expect(sender.types('crashed')).toEqual(['request_failed']);
    const { snap } = await limiter.view(user, undefined, clock);
    expect(snap.reservations).toEqual({});
    expect(snap.inFlight).toEqual({});
    expect(snap.tu ?? 0).toBe(before);
    expect(events.filter((e) => e.detail.kind === 'lapsed-direct-request')).toHaveLength(1);
    // The runner's retry (or a second sweep) finds it ended: nobody is told twice.
    clock += 5 * 60_000;
    await sweep().run(clock);
    await lookAt(user);
    expect(sender.types('crashed')).toEqual(['request_failed']);
  });

  it('ends a direct request whose event never ran: claims it under the lease seen, so a late runner event does nothing', async () => {
    const user = `u-${randomUUID()}`;
    await limiter.decide(
      { userId: user, requestId: 'never', estimatedInputTokens: 5, queue: { mode: 'direct' } },
      clock,
    );
    const lease = (await limiter.view(user, undefined, clock)).snap.inFlight?.never;
    clock = lease! + SWEEP_GRACE_MS;
    expect((await sweep().run(clock)).repaired['lapsed-direct-request']).toBe(1);
    expect(sender.types('never')).toEqual(['request_failed']);
    // The event arrives late after all: its claim finds the request gone.
    const late = await limiter.claim(user, 'never', 'runner-late', {
      source: 'direct',
      inFlightUntilEpochMs: lease,
    });
    expect(late.kind).toBe('gone');
  });

  it("prunes the global waiting line of waiters who stopped looking, and keeps the others'", async () => {
    limiter = limiterWith({ requestsInFlight: 1, shards: 1 });
    const line = { tier: 'free' as const, limit: 'requestsInFlight' as const };
    // Both join now; 'looking' is deferred for two minutes (its wake-up comes back then), 'gone'
    // was due to look again at once and never did. A minute on, only 'gone' is stale (readers
    // skip it; only the sweep takes it out).
    await limiter.joinGlobalLine({
      ...line,
      userId: 'gone',
      enqueuedAtEpochMs: clock,
      deadlineEpochMs: clock + 900_000,
      seenAtEpochMs: clock,
    });
    await limiter.joinGlobalLine({
      ...line,
      userId: 'looking',
      enqueuedAtEpochMs: clock,
      deadlineEpochMs: clock + 900_000,
      seenAtEpochMs: clock,
      wakeAtEpochMs: clock + 120_000,
    });
    clock += 60_000;
    const report = await sweep().run(clock);
    expect(report.repaired['stale-line-entry']).toBe(1);
    const waiters = await limiter.global!.waiters({ fresh: true, nowMs: clock - 120_000 });
    expect(waiters.map((w) => w.userId)).toEqual(['looking']);
  });

  it("gives back once a global share held by nothing (taken on its shard, never made the user's), after its lease and margin", async () => {
    limiter = limiterWith({ hourlyMessages: 100, dailyTokens: 10_000, shards: 1 });
    const used = async () =>
      Object.fromEntries(
        ((await limiter.status('anyone', undefined, clock)).global ?? []).map((g) => [g.name, g.used]),
      );
    // What a decision leaves when its shard write lands and neither the user's own write nor the
    // give-back gets an answer (LimiterOutcomeUnknownError): the share, and no reservation.
    const requestId = 'r-orphan';
    const leaseUntilEpochMs = clock + 60_000;
    const admission = await limiter.global!.admit(
      { requestId, userId: 'u-orphan', tokens: 100, costMicroUsd: 0, weight: 1, leaseUntilEpochMs },
      clock,
      clock,
      {},
    );
    expect(admission.ok).toBe(true);
    expect(await used()).toMatchObject({ 'global.hourlyMessages': 1, 'global.dailyTokens': 100 });
    // Its lease just ended: not yet (a decision or settle may still be giving it back).
    clock = leaseUntilEpochMs;
    expect((await sweep().run(clock)).repaired['orphaned-global-share']).toBe(0);
    clock = leaseUntilEpochMs + ORPHAN_MARGIN_MS + 1;
    const report = await sweep().run(clock);
    expect(report.repaired['orphaned-global-share']).toBe(1);
    expect(repaired).toEqual(['orphaned-global-share']);
    expect(events).toEqual([
      {
        detailType: 'State Repaired',
        detail: expect.objectContaining({ kind: 'orphaned-global-share', userId: 'u-orphan', requestId }),
      },
    ]);
    expect(await used()).toMatchObject({ 'global.hourlyMessages': 0, 'global.dailyTokens': 0 });
    // Once: the next run finds nothing.
    clock += 60_000;
    expect((await sweep().run(clock)).repaired['orphaned-global-share']).toBe(0);
    expect(await used()).toMatchObject({ 'global.hourlyMessages': 0, 'global.dailyTokens': 0 });
  });
});
