import { randomUUID } from 'node:crypto';
import { ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { beforeEach, describe, expect, it } from 'vitest';
import { DynamoLimiter } from '../../lambda/adapters/dynamo-limiter';
import { EchoModel } from '../../lambda/adapters/models';
import { ReplyStore } from '../../lambda/adapters/reply-store';
import { RequestQueue } from '../../lambda/adapters/request-queue';
import type { AllowedDecision } from '../../lambda/core/limiter/decision';
import { parseTierLimits } from '../../lambda/core/limiter/policy';
import { queueDeadlineEpochMs } from '../../lambda/core/queue/request';
import type { ReplyJob } from '../../lambda/core/reply-job';
import { messageComplete } from '../../lambda/core/server-messages';
import type { OutgoingMessage } from '../../lambda/services/ports';
import { DEFAULT_REPLAY_SETTINGS, ReplayService } from '../../lambda/services/replay-service';
import { ReplyFailureService } from '../../lambda/services/reply-failure';
import { DEFAULT_RUNNER_SETTINGS, ReplyRunner } from '../../lambda/services/reply-runner';
import { createTestResources, type TestResources } from '../support/emulators';
import { enqueueWhole } from '../support/queued';

const T0 = Date.UTC(2026, 10, 24, 12, 0, 0);
const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };
const noMetrics = { count: () => undefined, milliseconds: () => undefined };

/**
 * The reply runner's on-failure destination (issue 20, finding 15), on dynalite and fauxqs: Lambda
 * dropped a reply job (too old to start, or every attempt failed) and sends its record here.
 */
describe('ReplyFailureService (a reply job Lambda dropped)', () => {
  let res: TestResources;
  let limiter: DynamoLimiter;
  let queue: RequestQueue;
  let sent: { connectionId: string; message: OutgoingMessage }[];
  let clock: number;
  let deferred: { handle: string; ms: number }[];

  beforeEach(async () => {
    res = await createTestResources('replyfail');
    // An in-flight limit of 1, so a slot that is not freed refuses the next request.
    limiter = new DynamoLimiter({
      client: res.dynamo,
      tableName: res.tables.limits,
      tiers: parseTierLimits(JSON.stringify({ tiers: { free: { requestsInFlight: 1 } } })),
    });
    queue = new RequestQueue(res.sqs, res.queues.requests.url, res.queues.dlq.url);
    sent = [];
    deferred = [];
    clock = T0;
  });

  const deps = () => ({
    limiter,
    store: new ReplyStore(res.dynamo, res.tables.requests),
    queue: {
      defer: async (handle: string, ms: number) => {
        deferred.push({ handle, ms });
        await queue.defer(handle, ms);
      },
      moveToDeadLetterQueue: queue.moveToDeadLetterQueue.bind(queue),
    },
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
  const failures = () => new ReplyFailureService(deps());

  async function admittedDirect(userId: string): Promise<ReplyJob> {
    const requestId = `r-${randomUUID().slice(0, 8)}`;
    const decision = await limiter.decide(
      { userId, requestId, estimatedInputTokens: 3, maxTokens: 200 },
      clock,
    );
    expect(decision.allowed).toBe(true);
    const { reservation, inFlightUntilEpochMs } = decision as AllowedDecision;
    return {
      v: 1,
      userId,
      requestId,
      connectionId: 'c1',
      prompt: 'hello',
      reservation,
      source: 'direct',
      inFlightUntilEpochMs,
    };
  }

  const usedTokens = async (userId: string) =>
    (await limiter.status(userId, undefined, clock)).limits.find((l) => l.name === 'dailyTokens')?.used;
  const told = (requestId: string) =>
    sent
      .filter((s) => 'requestId' in s.message && s.message.requestId === requestId)
      .map((s) => s.message.type);

  it('refunds a dropped direct request, frees its slot and tells the user once, for two records', async () => {
    const user = `u-${randomUUID()}`;
    const job = await admittedDirect(user);
    expect(await usedTokens(user)).toBe(job.reservation.reservedTokens);
    // Its slot is taken: a second request is refused for in-flight.
    const refused = await limiter.decide(
      { userId: user, requestId: 'second', estimatedInputTokens: 3, maxTokens: 200 },
      clock,
    );
    expect(refused).toMatchObject({ allowed: false, limit: 'requestsInFlight' });

    // Lambda may deliver a record twice: the second changes nothing and tells nobody.
    expect(await failures().settleDropped({ job, condition: 'EventAgeExceeded', invokeCount: 0 })).toBe(
      'settled',
    );
    expect(await failures().settleDropped({ job, condition: 'EventAgeExceeded', invokeCount: 0 })).toBe(
      'already-ended',
    );

    expect(await usedTokens(user)).toBe(0);
    const { snap } = await limiter.view(user, undefined, clock);
    expect(snap.inFlight ?? {}).toEqual({});
    expect(snap.reservations[job.requestId]).toBeUndefined();
    expect(told(job.requestId)).toEqual(['request_failed']);
    expect(sent[0]).toMatchObject({
      connectionId: 'c1',
      message: { type: 'request_failed', requestId: job.requestId },
    });
    // The slot is free again.
    const next = await limiter.decide(
      { userId: user, requestId: 'third', estimatedInputTokens: 3, maxTokens: 200 },
      clock,
    );
    expect(next.allowed).toBe(true);
  });

  it('settles a dropped direct request to the reply its runner kept but could not settle, and sends that reply once', async () => {
    const user = `u-${randomUUID()}`;
    const job = await admittedDirect(user);
    // The runner claimed it, produced the reply, could not settle it (the store was out) and kept
    // it; its retry could not settle it either, and Lambda gave up.
    expect(
      await limiter.claim(user, job.requestId, 'runner-1', {
        source: 'direct',
        inFlightUntilEpochMs: job.inFlightUntilEpochMs,
      }),
    ).toEqual({ kind: 'claimed' });
    const usage = { inputTokens: 3, outputTokens: 5, totalTokens: 8 };
    await new ReplyStore(res.dynamo, res.tables.requests).keepProduced(
      user,
      job.requestId,
      { claim: 'runner-1', usage, message: messageComplete(job.requestId, 'the reply', usage, clock) },
      clock,
    );

    const record = { job, condition: 'RetriesExhausted', invokeCount: 2 } as const;
    expect(await failures().settleDropped(record)).toBe('settled');
    expect(await failures().settleDropped(record)).toBe('already-ended');

    expect(told(job.requestId)).toEqual(['message_complete']);
    expect(await usedTokens(user)).toBe(8);
    expect((await limiter.view(user, undefined, clock)).snap.reservations[job.requestId]).toBeUndefined();
  });

  it('changes nothing for a job a late runner already settled: no refund of what it charged, no notice', async () => {
    const user = `u-${randomUUID()}`;
    const job = await admittedDirect(user);
    const runner = new ReplyRunner({
      ...deps(),
      model: new EchoModel({ delayMs: 0 }),
      settings: DEFAULT_RUNNER_SETTINGS,
      sleep: async () => undefined,
    });
    await runner.run(job, () => 600_000);
    const charged = await usedTokens(user);
    expect(charged).toBeGreaterThan(0);
    sent = [];

    expect(await failures().settleDropped({ job, condition: 'RetriesExhausted', invokeCount: 2 })).toBe(
      'already-ended',
    );
    expect(await usedTokens(user)).toBe(charged);
    expect(sent).toEqual([]);
  });

  it('ends a dropped queued request’s lease once, so the processor takes it over at once', async () => {
    const user = `u-${randomUUID()}`;
    const requestId = `q-${randomUUID().slice(0, 8)}`;
    const slot = await enqueueWhole(
      limiter,
      deps().store,
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
    expect(slot.kind).toBe('queued');
    await queue.send({ v: 1, userId: user, requestId });
    const received = async () => {
      const { Messages } = await res.sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: res.queues.requests.url,
          MessageSystemAttributeNames: ['All'],
          WaitTimeSeconds: 1,
        }),
      );
      const m = Messages?.[0];
      if (!m) return undefined;
      return {
        messageId: m.MessageId!,
        receiptHandle: m.ReceiptHandle!,
        body: m.Body!,
        groupId: m.Attributes!.MessageGroupId!,
        deduplicationId: m.Attributes!.MessageDeduplicationId!,
      };
    };
    const handedOff: ReplyJob[] = [];
    const replay = new ReplayService({
      ...deps(),
      queue,
      handoff: { handOff: async (job) => void handedOff.push(job) },
      settings: DEFAULT_REPLAY_SETTINGS,
      sleep: async () => undefined,
    });
    // The processor admits it and hands it off; Lambda drops that event.
    const first = await received();
    expect(await replay.replay(first!, () => 30_000)).toBe('retry');
    const [job] = handedOff;
    expect(job).toMatchObject({ source: 'queue', requestId, lease: { attempts: 1 } });
    // Held for the lease: nothing to receive.
    expect(await received()).toBeUndefined();

    clock += 300_000;
    expect(await failures().settleDropped({ job: job!, condition: 'EventAgeExceeded' })).toBe('lease-ended');
    expect(await failures().settleDropped({ job: job!, condition: 'EventAgeExceeded' })).toBe(
      'already-ended',
    );
    expect(deferred).toEqual([{ handle: job!.wakeUpReceiptHandle, ms: 0 }]);

    // The wake-up is back at once, and the next delivery takes the request over as attempt 2.
    const again = await received();
    expect(again).toBeDefined();
    expect(await replay.replay(again!, () => 30_000)).toBe('retry');
    // Ending the lease counted the dropped attempt (as a failed hand-off does), the takeover one
    // more: after `maxAttempts` the request fails for good and its user is told.
    expect(handedOff[1]).toMatchObject({ requestId, lease: { attempts: 3 } });
    // A record of the first attempt arriving now must not end the new one.
    expect(await failures().settleDropped({ job: job!, condition: 'RetriesExhausted' })).toBe(
      'already-ended',
    );
    expect((await limiter.view(user, undefined, clock)).snap.active).toMatchObject({
      requestId,
      attempts: 3,
    });
  });
});
