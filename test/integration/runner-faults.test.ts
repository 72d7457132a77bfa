import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DynamoLimiter } from '../../lambda/adapters/dynamo-limiter';
import { EchoModel } from '../../lambda/adapters/models';
import { ReplyStore } from '../../lambda/adapters/reply-store';
import type { AllowedDecision } from '../../lambda/core/limiter/decision';
import { parseTierLimits } from '../../lambda/core/limiter/policy';
import { fitMessage } from '../../lambda/core/protocol';
import { queueDeadlineEpochMs } from '../../lambda/core/queue/request';
import type { ReplyJob } from '../../lambda/core/reply-job';
import { ChatService } from '../../lambda/services/chat-service';
import type { ModelEvent, ModelInput, ModelPort, OutgoingMessage } from '../../lambda/services/ports';
import { DEFAULT_REPLAY_SETTINGS, ReplayService } from '../../lambda/services/replay-service';
import { COALESCE_MS, POST_ATTEMPTS } from '../../lambda/services/reply-channel';
import {
  DEFAULT_RUNNER_SETTINGS,
  ReplyNotSettledError,
  ReplyRunner,
  type ReplyRunnerDeps,
} from '../../lambda/services/reply-runner';
import { localDynamoClient } from '../../local/aws-clients';
import { startDynamoProxy } from '../support/dynamo-proxy';
import { createTestResources, type TestResources } from '../support/emulators';
import { type FaultProxy, startFaultProxy } from '../support/fault-proxy';
import { enqueueWhole } from '../support/queued';

const T0 = Date.UTC(2026, 10, 24, 12, 0, 0);
const LEASE_MS = 60_000;
const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };
const noMetrics = { count: () => undefined, milliseconds: () => undefined };

/** A model that streams `pieces`, advancing the test's clock by `stepMs` after each, and counts its runs. */
class ScriptedModel implements ModelPort {
  runs = 0;
  constructor(
    private readonly pieces: readonly string[],
    private readonly hooks: {
      readonly step?: () => void | Promise<void>;
      /** Before the usage event: the model is done, the commit comes next. */
      readonly beforeDone?: () => void;
    } = {},
  ) {}

  async *stream(_input: ModelInput): AsyncIterable<ModelEvent> {
    this.runs++;
    for (const text of this.pieces) {
      yield { type: 'chunk', text };
      await this.hooks.step?.();
    }
    this.hooks.beforeDone?.();
    yield { type: 'done', usage: { inputTokens: 3, outputTokens: this.pieces.length } };
  }
}

/**
 * The reply runner and the services that hand off to it, on dynalite, under the faults Lambda's
 * asynchronous invocations, the store and `@connections` bring (issue 20, findings 8, 15, 17).
 * Every frame sent is recorded; time is the test's clock.
 */
describe('the reply runner under retried, duplicated, delayed and lost events and stores', () => {
  let res: TestResources;
  let clock: number;
  let limiter: DynamoLimiter;
  let store: ReplyStore;
  let sent: { connectionId: string; message: OutgoingMessage }[];
  let slept: number[];
  let dynamoProxy: FaultProxy | undefined;
  let stopProxy: (() => Promise<void>) | undefined;
  /** Called by every injected sleep after the clock moved (restores a store, say). */
  let onSleep: () => void;

  beforeEach(async () => {
    res = await createTestResources('runner-faults');
    clock = T0;
    sent = [];
    slept = [];
    onSleep = () => undefined;
    limiter = newLimiter(res.dynamo);
    store = new ReplyStore(res.dynamo, res.tables.requests);
  });

  afterEach(async () => {
    await dynamoProxy?.stop();
    dynamoProxy = undefined;
    await stopProxy?.();
    stopProxy = undefined;
  });

  const newLimiter = (client = res.dynamo) =>
    new DynamoLimiter({
      client,
      tableName: res.tables.limits,
      tiers: parseTierLimits(''),
      inFlightLeaseMs: LEASE_MS,
      clock: () => clock,
    });

  const sleep = async (ms: number) => {
    slept.push(ms);
    clock += ms;
    onSleep();
  };

  const recordingSender = (fail?: (message: OutgoingMessage, attempt: number) => boolean) => {
    const attempts = new Map<OutgoingMessage, number>();
    return {
      async send(connectionId: string, message: OutgoingMessage): Promise<'sent'> {
        const attempt = (attempts.get(message) ?? 0) + 1;
        attempts.set(message, attempt);
        if (fail?.(message, attempt)) {
          throw Object.assign(new Error('Too Many Requests'), { name: 'LimitExceededException' });
        }
        // As the notifier posts it: within API Gateway's 128 KB.
        sent.push({ connectionId, message: fitMessage(message) });
        return 'sent';
      },
    };
  };

  const runner = (
    model: ModelPort,
    options: { limiter?: DynamoLimiter; sender?: ReturnType<typeof recordingSender> } = {},
  ) => new ReplyRunner(runnerDeps(model, options));

  const runnerDeps = (
    model: ModelPort,
    options: { limiter?: DynamoLimiter; sender?: ReturnType<typeof recordingSender> } = {},
  ) =>
    ({
      limiter: options.limiter ?? limiter,
      store,
      queue: { defer: async () => undefined, moveToDeadLetterQueue: async () => undefined },
      sender: options.sender ?? recordingSender(),
      directory: { listByUser: async () => [] },
      model,
      metrics: noMetrics,
      log: quiet,
      settings: DEFAULT_RUNNER_SETTINGS,
      now: () => clock,
      sleep,
      random: () => 0.5,
    }) satisfies ReplyRunnerDeps;

  const of = (requestId: string, type?: string) =>
    sent
      .map((s) => s.message)
      .filter((m) => 'requestId' in m && m.requestId === requestId && (!type || m.type === type));
  const streamedText = (requestId: string) =>
    of(requestId, 'chunk')
      .map((m) => (m as { text: string }).text)
      .join('');
  const tokensUsed = async (userId: string) =>
    (await limiter.status(userId, undefined, clock)).limits.find((l) => l.name === 'dailyTokens')?.used;

  /** A request admitted as the Message function admits it. */
  async function admitted(userId: string, prompt = 'hello there'): Promise<ReplyJob> {
    const requestId = `r-${randomUUID().slice(0, 8)}`;
    const decision = (await limiter.decide(
      { userId, requestId, estimatedInputTokens: 3, maxTokens: 200 },
      clock,
    )) as AllowedDecision;
    expect(decision.allowed).toBe(true);
    return {
      v: 1,
      userId,
      requestId,
      connectionId: 'c1',
      prompt,
      reservation: decision.reservation,
      source: 'direct',
      inFlightUntilEpochMs: decision.inFlightUntilEpochMs,
    };
  }

  /** The processor's service; each job it hands to a runner is captured, not run. */
  function processor(handedOff: ReplyJob[]) {
    return new ReplayService({
      limiter,
      store,
      queue: {
        send: async () => undefined,
        defer: async () => undefined,
        moveToDeadLetterQueue: async () => undefined,
        depth: async () => 0,
      },
      sender: recordingSender(),
      directory: { listByUser: async () => [] },
      handoff: { handOff: async (job) => void handedOff.push(job) },
      metrics: noMetrics,
      log: quiet,
      settings: { ...DEFAULT_REPLAY_SETTINGS, leaseMs: LEASE_MS },
      now: () => clock,
      sleep,
    });
  }

  /** Queues one request and lets the processor admit it: the job of its first attempt. */
  async function queuedJob(userId: string, handedOff: ReplyJob[]): Promise<ReplyJob> {
    const requestId = `q-${randomUUID().slice(0, 8)}`;
    const slot = await enqueueWhole(
      limiter,
      store,
      {
        userId,
        requestId,
        connectionId: 'c1',
        message: 'hello queue',
        estimatedInputTokens: 3,
        enqueuedAtEpochMs: clock,
        expiresAtEpochMs: queueDeadlineEpochMs(clock, 900),
      },
      10,
      clock,
    );
    expect(slot.kind).toBe('queued');
    await processor(handedOff).replay(record(userId, requestId), () => 60_000);
    expect(handedOff.at(-1)).toMatchObject({ requestId, lease: { attempts: 1 } });
    return handedOff.at(-1)!;
  }

  const record = (userId: string, requestId: string) => ({
    messageId: `m-${requestId}`,
    receiptHandle: `h-${requestId}`,
    body: JSON.stringify({ v: 1, userId, requestId }),
    groupId: userId,
    deduplicationId: requestId,
  });

  describe('finding 15: asynchronous events delivered twice, late, or with a lost answer', () => {
    it('streams a reply whose event is delivered twice once, and charges it once', async () => {
      const user = `u-${randomUUID()}`;
      const job = await admitted(user);
      let release!: () => void;
      const gate = new Promise<void>((resolve) => {
        release = resolve;
      });
      const model = new ScriptedModel(['one ', 'two ', 'three'], { step: () => gate });
      // Both copies of the event run at once: the first is past its claim and streaming when the
      // second arrives.
      const first = runner(model).run(job, () => 600_000);
      await expect.poll(() => of(job.requestId, 'chunk').length).toBe(1);
      await runner(model).run(job, () => 600_000);
      release();
      await first;
      expect(model.runs).toBe(1);
      expect(streamedText(job.requestId)).toBe('one two three');
      expect(of(job.requestId, 'message_complete')).toHaveLength(1);
      expect(await tokensUsed(user)).toBe(3 + 3);
    });

    it("streams a queued request's reply once when its event is delivered twice", async () => {
      const user = `u-${randomUUID()}`;
      const handedOff: ReplyJob[] = [];
      const job = await queuedJob(user, handedOff);
      let release!: () => void;
      const gate = new Promise<void>((resolve) => {
        release = resolve;
      });
      const model = new ScriptedModel(['one ', 'two ', 'three'], { step: () => gate });
      const first = runner(model).run(job, () => 600_000);
      await expect.poll(() => of(job.requestId, 'chunk').length).toBe(1);
      // The copy runs on another instance (its own view of the item).
      await runner(model, { limiter: newLimiter() }).run(job, () => 600_000);
      release();
      await first;
      expect(model.runs).toBe(1);
      expect(streamedText(job.requestId)).toBe('one two three');
      expect(of(job.requestId, 'message_complete')).toHaveLength(1);
      expect(await tokensUsed(user)).toBe(3 + 3);
      expect((await limiter.view(user, undefined, clock)).snap.active).toBeUndefined();
    });

    it('ignores a late first-attempt event after a takeover: no frame, no refund, the active request stays', async () => {
      const user = `u-${randomUUID()}`;
      const handedOff: ReplyJob[] = [];
      const attempt1 = await queuedJob(user, handedOff);
      // The first event never ran (delayed in Lambda's queue). The lease lapses; the processor's
      // next delivery takes the request over as attempt 2.
      clock += LEASE_MS + 1;
      await processor(handedOff).replay(record(user, attempt1.requestId), () => 60_000);
      const attempt2 = handedOff.at(-1)!;
      expect(attempt2.lease).toMatchObject({ attempts: 2 });
      const before = await limiter.view(user, undefined, clock);

      // Attempt 1's event arrives now, past its lease: before the fix it refunded the whole
      // reservation, ended the active request and sent request_failed.
      const model = new EchoModel({ delayMs: 0 });
      const told = of(attempt1.requestId).length;
      await runner(model).run(attempt1, () => 600_000);
      expect(of(attempt1.requestId).slice(told)).toEqual([]);
      const after = await limiter.view(user, undefined, clock);
      expect(after.snap.active).toMatchObject({ requestId: attempt1.requestId, attempts: 2 });
      expect(after.snap.reservations).toEqual(before.snap.reservations);
      expect(await tokensUsed(user)).toBe(attempt1.reservation.reservedTokens);

      // Attempt 2 answers, once, charged what it produced.
      await runner(model).run(attempt2, () => 600_000);
      expect(of(attempt1.requestId, 'message_complete')).toHaveLength(1);
      expect(of(attempt1.requestId, 'request_failed')).toEqual([]);
      const { usage } = of(attempt1.requestId, 'message_complete')[0] as { usage: { totalTokens: number } };
      expect(await tokensUsed(user)).toBe(usage.totalTokens);
      expect((await limiter.view(user, undefined, clock)).snap.active).toBeUndefined();
    });

    it('ignores a late first-attempt event that arrives while the takeover streams', async () => {
      const user = `u-${randomUUID()}`;
      const handedOff: ReplyJob[] = [];
      const attempt1 = await queuedJob(user, handedOff);
      clock += LEASE_MS + 1;
      await processor(handedOff).replay(record(user, attempt1.requestId), () => 60_000);
      const attempt2 = handedOff.at(-1)!;
      let release!: () => void;
      const gate = new Promise<void>((resolve) => {
        release = resolve;
      });
      const model = new ScriptedModel(['a ', 'b ', 'c'], { step: () => gate });
      const running = runner(model).run(attempt2, () => 600_000);
      await expect.poll(() => of(attempt1.requestId, 'chunk').length).toBe(1);
      // Given a fresh lease of its own, the old event would stream and settle: it must not.
      await runner(new EchoModel({ delayMs: 0 })).run(
        { ...attempt1, inFlightUntilEpochMs: clock + LEASE_MS },
        () => 600_000,
      );
      release();
      await running;
      expect(model.runs).toBe(1);
      expect(streamedText(attempt1.requestId)).toBe('a b c');
      expect(of(attempt1.requestId, 'message_complete')).toHaveLength(1);
      expect(await tokensUsed(user)).toBe(3 + 3);
    });

    it('lets a first attempt that outlived its lease settle nothing once the request was taken over', async () => {
      const user = `u-${randomUUID()}`;
      const handedOff: ReplyJob[] = [];
      const attempt1 = await queuedJob(user, handedOff);
      let release!: () => void;
      const gate = new Promise<void>((resolve) => {
        release = resolve;
      });
      // Attempt 1 claims and streams, then hangs (a stalled model) past its lease.
      const stalled = new ScriptedModel(['stale ', 'reply'], { step: () => gate });
      const first = runner(stalled).run(attempt1, () => 600_000);
      await expect.poll(() => of(attempt1.requestId, 'chunk').length).toBe(1);
      clock += LEASE_MS + 1;
      await processor(handedOff).replay(record(user, attempt1.requestId), () => 60_000);
      const attempt2 = handedOff.at(-1)!;
      let release2!: () => void;
      const gate2 = new Promise<void>((resolve) => {
        release2 = resolve;
      });
      // Attempt 2 (another instance) streams…
      const second = runner(new ScriptedModel(['fresh ', 'reply'], { step: () => gate2 }), {
        limiter: newLimiter(),
      }).run(attempt2, () => 600_000);
      await expect.poll(() => of(attempt1.requestId, 'chunk').length).toBe(2);
      // …when attempt 1 comes back to life and reaches its settle: the request is no longer its own.
      release();
      await first;
      expect(of(attempt1.requestId, 'message_complete')).toEqual([]);
      expect((await limiter.view(user, undefined, clock)).snap.active).toMatchObject({ attempts: 2 });
      release2();
      await second;
      expect(of(attempt1.requestId, 'message_complete')).toHaveLength(1);
      expect(of(attempt1.requestId, 'message_complete')[0]).toMatchObject({ text: 'fresh reply' });
      expect(await tokensUsed(user)).toBe(3 + 2);
    });

    describe('a lost Invoke answer', () => {
      const chat = (handOff: (job: ReplyJob) => Promise<void>) =>
        new ChatService({
          limiter,
          store,
          queue: {
            send: async () => undefined,
            defer: async () => undefined,
            moveToDeadLetterQueue: async () => undefined,
            depth: async () => 0,
          },
          sender: recordingSender(),
          directory: { listByUser: async () => [] },
          handoff: { handOff },
          metrics: noMetrics,
          log: quiet,
          settings: { maxQueuedPerUser: 10, maxQueueWaitSeconds: 900 },
          now: () => clock,
        });
      const timedOut = () => Object.assign(new Error('socket hang up'), { name: 'TimeoutError' });

      it('never refunds a reply a runner is answering: it is metered', async () => {
        const user = `u-${randomUUID()}`;
        let running: Promise<void> | undefined;
        let job: ReplyJob | undefined;
        let release!: () => void;
        const gate = new Promise<void>((resolve) => {
          release = resolve;
        });
        const model = new ScriptedModel(['one ', 'two ', 'three'], { step: () => gate });
        const outcome = await chat(async (handedOff) => {
          // The event went out and a runner started and claimed it; the answer never came back.
          job = handedOff;
          running = runner(model).run(handedOff, () => 600_000);
          await expect.poll(() => of(handedOff.requestId, 'chunk').length).toBe(1);
          throw timedOut();
        }).sendMessage({ userId: user, tier: 'free' }, 'c1', { message: 'hello there', maxTokens: 200 });
        release();
        await running;
        expect(outcome).toMatchObject({ kind: 'handed-off' });
        const complete = of(job!.requestId, 'message_complete');
        expect(complete).toHaveLength(1);
        expect(await tokensUsed(user)).toBe(
          (complete[0] as { usage: { totalTokens: number } }).usage.totalTokens,
        );
      });

      it("never ends the lease of a queued request whose runner claimed it: the processor's Invoke answer lost", async () => {
        const user = `u-${randomUUID()}`;
        const requestId = `q-${randomUUID().slice(0, 8)}`;
        await enqueueWhole(
          limiter,
          store,
          {
            userId: user,
            requestId,
            connectionId: 'c1',
            message: 'hello queue',
            estimatedInputTokens: 3,
            enqueuedAtEpochMs: clock,
            expiresAtEpochMs: queueDeadlineEpochMs(clock, 900),
          },
          10,
          clock,
        );
        let release!: () => void;
        const gate = new Promise<void>((resolve) => {
          release = resolve;
        });
        const model = new ScriptedModel(['one ', 'two'], { step: () => gate });
        let running: Promise<void> | undefined;
        const lost = new ReplayService({
          limiter,
          store,
          queue: {
            send: async () => undefined,
            defer: async () => undefined,
            moveToDeadLetterQueue: async () => undefined,
            depth: async () => 0,
          },
          sender: recordingSender(),
          directory: { listByUser: async () => [] },
          handoff: {
            handOff: async (job) => {
              running = runner(model).run(job, () => 600_000);
              await expect.poll(() => of(requestId, 'chunk').length).toBe(1);
              throw timedOut();
            },
          },
          metrics: noMetrics,
          log: quiet,
          settings: { ...DEFAULT_REPLAY_SETTINGS, leaseMs: LEASE_MS },
          now: () => clock,
          sleep,
        });
        await lost.replay(record(user, requestId), () => 60_000);
        // The next delivery finds the lease still held: it waits, and takes nothing over.
        const handedOff: ReplyJob[] = [];
        await processor(handedOff).replay(record(user, requestId), () => 60_000);
        expect(handedOff).toEqual([]);
        release();
        await running;
        expect(model.runs).toBe(1);
        expect(of(requestId, 'message_complete')).toHaveLength(1);
        expect(await tokensUsed(user)).toBe(3 + 2);
      });

      it('refunds a hand-off no runner claimed, and a runner that starts later does nothing', async () => {
        const user = `u-${randomUUID()}`;
        let job: ReplyJob | undefined;
        const outcome = await chat(async (handedOff) => {
          // Queued in Lambda, not started yet, and the answer was lost.
          job = handedOff;
          throw timedOut();
        }).sendMessage({ userId: user, tier: 'free' }, 'c1', { message: 'hello there', maxTokens: 200 });
        expect(outcome).toMatchObject({ kind: 'refused', code: 'INTERNAL_ERROR' });
        expect(await tokensUsed(user)).toBe(0);
        const model = new ScriptedModel(['never']);
        const told = of(job!.requestId).length;
        await runner(model).run(job!, () => 600_000);
        expect(model.runs).toBe(0);
        expect(of(job!.requestId).slice(told)).toEqual([]);
        expect(await tokensUsed(user)).toBe(0);
      });
    });
  });

  describe('writes of the runner that landed but whose answer was lost', () => {
    /**
     * The limiter behind a proxy that holds the first two writes `picks` chooses past the limiter's
     * timeout (300 ms) and then applies them: the first lands while the second try waits, so the
     * third try finds the first one's work done.
     */
    async function lateAnswers(picks: (body: string) => boolean): Promise<DynamoLimiter> {
      const proxy = await startDynamoProxy(res.dynamodbEndpoint);
      stopProxy = () => proxy.stop();
      let held = 0;
      proxy.inject((operation, body) => operation === 'UpdateItem' && picks(body) && held++ < 2, {
        kind: 'delay',
        ms: 400,
      });
      return new DynamoLimiter({
        client: localDynamoClient(proxy.endpoint),
        tableName: res.tables.limits,
        tiers: parseTierLimits(''),
        inFlightLeaseMs: LEASE_MS,
        timeoutMs: 300,
        clock: () => clock,
      });
    }

    it('takes a claim whose answer was lost as its own: the reply runs once', async () => {
      const user = `u-${randomUUID()}`;
      const job = await admitted(user);
      const proxied = await lateAnswers((body) => body.includes('claim-lost-answer'));
      const model = new ScriptedModel(['one ', 'two']);
      await new ReplyRunner({
        ...runnerDeps(model),
        limiter: proxied,
        newClaimId: () => 'claim-lost-answer',
      }).run(job, () => 600_000);
      expect(model.runs).toBe(1);
      expect(of(job.requestId, 'message_complete')).toHaveLength(1);
      expect(await tokensUsed(user)).toBe(3 + 2);
    });

    it('sends message_complete after a settle that landed though its answer was lost', async () => {
      const user = `u-${randomUUID()}`;
      const job = await admitted(user);
      const proxied = await lateAnswers(
        (body) => body.includes(`"r_${job.requestId}"`) && body.includes('REMOVE'),
      );
      await new ReplyRunner({ ...runnerDeps(new ScriptedModel(['one ', 'two'])), limiter: proxied }).run(
        job,
        () => 600_000,
      );
      expect(of(job.requestId, 'message_complete')).toHaveLength(1);
      expect(await tokensUsed(user)).toBe(3 + 2);
    });
  });

  describe("an event Lambda gave up on (the runner's on-failure destination)", () => {
    it('refunds a dropped event no runner claimed and tells the user; a late copy then does nothing', async () => {
      const user = `u-${randomUUID()}`;
      const job = await admitted(user);
      expect(await runner(new ScriptedModel([])).endFailedEvent(job, () => 60_000)).toBe('refunded');
      expect(of(job.requestId, 'error')).toMatchObject([{ code: 'INTERNAL_ERROR' }]);
      const { snap } = await limiter.view(user, undefined, clock);
      expect(snap.reservations).toEqual({});
      expect(snap.inFlight).toEqual({});
      expect(await tokensUsed(user)).toBe(0);
      const late = new ScriptedModel(['late']);
      await runner(late).run(job, () => 600_000);
      expect(late.runs).toBe(0);
    });

    it('leaves a request a runner claimed to that runner', async () => {
      const user = `u-${randomUUID()}`;
      const job = await admitted(user);
      let release!: () => void;
      const gate = new Promise<void>((resolve) => {
        release = resolve;
      });
      const running = runner(new ScriptedModel(['one ', 'two'], { step: () => gate })).run(
        job,
        () => 600_000,
      );
      await expect.poll(() => of(job.requestId, 'chunk').length).toBe(1);
      expect(await runner(new ScriptedModel([])).endFailedEvent(job, () => 60_000)).toBe('left');
      release();
      await running;
      expect(of(job.requestId, 'message_complete')).toHaveLength(1);
      expect(of(job.requestId, 'error')).toEqual([]);
      expect(await tokensUsed(user)).toBe(3 + 2);
    });

    it('leaves a queued attempt that was taken over since to the takeover', async () => {
      const user = `u-${randomUUID()}`;
      const handedOff: ReplyJob[] = [];
      const attempt1 = await queuedJob(user, handedOff);
      clock += LEASE_MS + 1;
      await processor(handedOff).replay(record(user, attempt1.requestId), () => 60_000);
      expect(await runner(new ScriptedModel([])).endFailedEvent(attempt1, () => 60_000)).toBe('left');
      expect((await limiter.view(user, undefined, clock)).snap.active).toMatchObject({ attempts: 2 });
      expect(of(attempt1.requestId, 'request_failed')).toEqual([]);
    });
  });

  describe('finding 8: the store out at the commit', () => {
    /** The limiter's DynamoDB behind a proxy that can be cut. */
    async function limiterBehindProxy(): Promise<{ proxied: DynamoLimiter; proxy: FaultProxy }> {
      dynamoProxy = await startFaultProxy(res.dynamodbEndpoint);
      return { proxied: newLimiter(localDynamoClient(dynamoProxy.endpoint)), proxy: dynamoProxy };
    }

    it('waits out a store outage at its claim, then answers once', async () => {
      const user = `u-${randomUUID()}`;
      const job = await admitted(user);
      const { proxied, proxy } = await limiterBehindProxy();
      proxy.cut();
      const outageEndsAt = clock + 3000;
      onSleep = () => {
        if (clock >= outageEndsAt) proxy.restore();
      };
      const model = new ScriptedModel(['one ', 'two']);
      await runner(model, { limiter: proxied }).run(job, () => 600_000);
      expect(clock).toBeGreaterThanOrEqual(outageEndsAt);
      expect(model.runs).toBe(1);
      expect(of(job.requestId, 'message_complete')).toHaveLength(1);
      expect(await tokensUsed(user)).toBe(3 + 2);
    });

    it('waits out a 5 s outage at the commit: one message_complete, after the settle, charged once', async () => {
      const user = `u-${randomUUID()}`;
      const job = await admitted(user);
      const { proxied, proxy } = await limiterBehindProxy();
      let cutAt = 0;
      const model = new ScriptedModel(['one ', 'two ', 'three'], {
        beforeDone: () => {
          proxy.cut();
          cutAt = clock;
        },
      });
      onSleep = () => {
        if (cutAt && clock >= cutAt + 5000) proxy.restore();
      };
      await runner(model, { limiter: proxied }).run(job, () => 600_000);
      expect(model.runs).toBe(1);
      expect(clock).toBeGreaterThanOrEqual(cutAt + 5000);
      expect(of(job.requestId, 'message_complete')).toHaveLength(1);
      expect(await tokensUsed(user)).toBe(3 + 3);
      expect((await limiter.view(user, undefined, clock)).snap.reservations).toEqual({});
    });

    it('keeps what a runner produced when the store stays out, and its retry settles it without the model', async () => {
      const user = `u-${randomUUID()}`;
      const job = await admitted(user);
      const { proxied, proxy } = await limiterBehindProxy();
      const model = new ScriptedModel(['one ', 'two ', 'three'], { beforeDone: () => proxy.cut() });
      const timeout = clock + DEFAULT_RUNNER_SETTINGS.stopBeforeTimeoutMs + 20_000;
      await expect(
        runner(model, { limiter: proxied }).run(job, () => timeout - clock),
      ).rejects.toBeInstanceOf(ReplyNotSettledError);
      // Nothing final was said, nothing settled: the reservation is still whole.
      expect(of(job.requestId, 'message_complete')).toEqual([]);
      expect(await tokensUsed(user)).toBe(job.reservation.reservedTokens);

      // Lambda retries the event a minute later; the store is back.
      proxy.restore();
      clock += 60_000;
      await runner(model, { limiter: proxied }).run(job, () => 600_000);
      expect(model.runs).toBe(1);
      expect(of(job.requestId, 'message_complete')).toHaveLength(1);
      expect(await tokensUsed(user)).toBe(3 + 3);
      expect(await store.producedReply(user, job.requestId, clock)).toBeUndefined();
    });

    it('lets the takeover of a queued request settle what the first attempt produced, without the model', async () => {
      const user = `u-${randomUUID()}`;
      const handedOff: ReplyJob[] = [];
      const attempt1 = await queuedJob(user, handedOff);
      const { proxied, proxy } = await limiterBehindProxy();
      const model = new ScriptedModel(['one ', 'two ', 'three'], { beforeDone: () => proxy.cut() });
      const timeout = clock + DEFAULT_RUNNER_SETTINGS.stopBeforeTimeoutMs + 20_000;
      await expect(
        runner(model, { limiter: proxied }).run(attempt1, () => timeout - clock),
      ).rejects.toBeInstanceOf(ReplyNotSettledError);
      proxy.restore();
      // Its lease lapses; the processor takes the request over as attempt 2.
      clock += LEASE_MS + 1;
      await processor(handedOff).replay(record(user, attempt1.requestId), () => 60_000);
      const attempt2 = handedOff.at(-1)!;
      expect(attempt2.lease).toMatchObject({ attempts: 2 });
      await runner(model).run(attempt2, () => 600_000);
      expect(model.runs).toBe(1);
      expect(of(attempt1.requestId, 'message_complete')).toHaveLength(1);
      expect(of(attempt1.requestId, 'message_complete')[0]).toMatchObject({ text: 'one two three' });
      expect(await tokensUsed(user)).toBe(3 + 3);
      expect((await limiter.view(user, undefined, clock)).snap.active).toBeUndefined();
    });
  });

  describe('finding 17: chunks under a throttled @connections', () => {
    const pieces = (n: number, size = 5) =>
      Array.from({ length: n }, (_, i) => `${String(i).padEnd(size - 1)} `);

    it('coalesces a fast stream into one post per interval', async () => {
      const user = `u-${randomUUID()}`;
      const job = await admitted(user);
      // 20 pieces, one every 30 ms: posts at 0, 120, 240, 360, 480 ms and the rest at the end.
      const text = pieces(20);
      const model = new ScriptedModel(text, {
        step: () => {
          clock += 30;
        },
      });
      await runner(model).run(job, () => 600_000);
      expect(COALESCE_MS).toBe(100);
      expect(of(job.requestId, 'chunk')).toHaveLength(6);
      expect(of(job.requestId, 'chunk').map((m) => (m as { index: number }).index)).toEqual([
        0, 1, 2, 3, 4, 5,
      ]);
      expect(streamedText(job.requestId)).toBe(text.join(''));
    });

    it('retries throttled posts with a jittered exponential backoff and loses no chunk', async () => {
      const user = `u-${randomUUID()}`;
      const job = await admitted(user);
      const text = pieces(6);
      const model = new ScriptedModel(text, {
        step: () => {
          clock += 200;
        },
      });
      // Every post is throttled three times before it goes through.
      const sender = recordingSender((_m, attempt) => attempt <= 3);
      await runner(model, { sender }).run(job, () => 600_000);
      expect(streamedText(job.requestId)).toBe(text.join(''));
      expect(of(job.requestId, 'message_complete')).toHaveLength(1);
      expect(of(job.requestId, 'message_complete')[0]).not.toHaveProperty('resume');
      // 100, 200, 400 ms ceilings, half fixed and half jitter (random 0.5): 75, 150, 300.
      expect(slept.slice(0, 3)).toEqual([75, 150, 300]);
    });

    it('keeps a long reply whose chunk was lost for resume, and says so in message_complete', async () => {
      const user = `u-${randomUUID()}`;
      const job = await admitted(user);
      // 40 pieces of 4 KB: a reply over 128 KB, so message_complete cannot carry its text.
      const text = pieces(40, 4096);
      const model = new ScriptedModel(text, {
        step: () => {
          clock += 200;
        },
      });
      // @connections throttles every chunk after the first, for good.
      const sender = recordingSender((m) => m.type === 'chunk' && (m as { index: number }).index > 0);
      await runner(model, { sender }).run(job, () => 600_000);
      const complete = of(job.requestId, 'message_complete');
      expect(complete).toHaveLength(1);
      expect(complete[0]).toMatchObject({ textOmitted: true, resume: true });
      // No chunk follows the lost one: the client is not shown a reply with a hole in it.
      expect(of(job.requestId, 'chunk').map((m) => (m as { index: number }).index)).toEqual([0]);
      const kept = await store.listReplies(user, clock);
      expect(kept.map((r) => r.requestId)).toEqual([job.requestId]);
      expect((kept[0]!.message as { text: string }).text).toBe(text.join(''));
      expect(POST_ATTEMPTS).toBe(5);
    });
  });
});
