import { ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { beforeEach, describe, expect, it } from 'vitest';
import { DynamoLimiter } from '../../lambda/adapters/dynamo-limiter';
import { ReplyStore } from '../../lambda/adapters/reply-store';
import { RequestQueue } from '../../lambda/adapters/request-queue';
import { identityFromAuthorizer } from '../../lambda/core/identity';
import { reservationFromMarker } from '../../lambda/core/limiter/decide/settle';
import type { DecideInput } from '../../lambda/core/limiter/decision';
import { parseTierLimits } from '../../lambda/core/limiter/policy';
import type { QueuedRequest } from '../../lambda/core/queue/request';
import type { ReplyJob } from '../../lambda/core/reply-job';
import { ChatService } from '../../lambda/services/chat-service';
import type { OutgoingMessage } from '../../lambda/services/ports';
import {
  DEFAULT_REPLAY_SETTINGS,
  type QueueRecord,
  ReplayService,
} from '../../lambda/services/replay-service';
import { createTestResources, type TestResources } from '../support/emulators';

const T0 = Date.UTC(2026, 11, 3, 12, 0, 0);
const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };
const noMetrics = { count: () => undefined, milliseconds: () => undefined };
const CONNECTION = 'L0SM9cOFvHcCIhw=';
/** One reply in flight per user: the second message waits, and its replay is a decision of its own. */
const TIERS = parseTierLimits({
  tiers: { free: { messagesPerMinute: 600, burst: 100, requestsInFlight: 1 } },
});

/**
 * The token's `team` claim reaches the limiter (SPEC §9.4): from the authorizer's context through
 * the Message function's identity to `DecideInput.claimTeam`, onto the waiting request, the reply
 * job, the replay's decision (the waiting request's stored claim: the item's codec keeps it).
 */
describe("the token's team claim reaches every decision of the request", () => {
  let res: TestResources;
  let clock: number;
  let decided: DecideInput[];
  let asked: QueuedRequest[];
  let jobs: ReplyJob[];
  let statusAsks: (Parameters<DynamoLimiter['status']>[3] | undefined)[];

  beforeEach(async () => {
    res = await createTestResources('teamclaim');
    clock = T0;
    decided = [];
    asked = [];
    jobs = [];
    statusAsks = [];
  });

  /** The real limiter, recording what it is asked. */
  function recordingLimiter(): DynamoLimiter {
    const real = new DynamoLimiter({ client: res.dynamo, tableName: res.tables.limits, tiers: TIERS });
    return Object.assign(Object.create(real), {
      decide: (input: DecideInput, nowMs: number) => {
        decided.push(input);
        return real.decide(input, nowMs);
      },
      decideOrQueue: (...[input, nowMs, queueIfDenied]: Parameters<DynamoLimiter['decideOrQueue']>) => {
        decided.push(input);
        return real.decideOrQueue(input, nowMs, (denied) => {
          const ask = queueIfDenied(denied);
          if (ask) asked.push(ask.request);
          return ask;
        });
      },
      status: (...args: Parameters<DynamoLimiter['status']>) => {
        statusAsks.push(args[3]);
        return real.status(...args);
      },
    });
  }

  const common = () => ({
    store: new ReplyStore(res.dynamo, res.tables.requests),
    sender: { send: async (_c: string, _m: OutgoingMessage) => 'sent' as const },
    directory: { listByUser: async () => [] },
    metrics: noMetrics,
    log: quiet,
    now: () => clock,
    handoff: {
      handOff: async (job: ReplyJob) => {
        jobs.push(job);
      },
    },
  });

  function chat() {
    const queue = new RequestQueue(res.sqs, res.queues.requests.url, res.queues.dlq.url);
    return new ChatService({
      ...common(),
      queue,
      limiter: recordingLimiter(),
      settings: { maxQueuedPerUser: 5, maxQueueWaitSeconds: 900 },
    });
  }

  it('a direct message and a queued one carry the claim; the reply job too', async () => {
    const userId = crypto.randomUUID();
    // As the Message function reads it: the authorizer's context, strings only.
    const identity = identityFromAuthorizer({ userId, tier: 'free', team: 'eng' });
    const service = chat();
    const first = await service.sendMessage(identity, CONNECTION, { message: 'one' });
    const second = await service.sendMessage(identity, CONNECTION, { message: 'two' });
    expect(first.kind).toBe('handed-off');
    expect(second).toMatchObject({ kind: 'queued', position: 1 });

    expect(decided.map((d) => [d.requestId, d.claimTier, d.claimTeam])).toEqual([
      [jobs[0]!.requestId, 'free', 'eng'],
      [second.requestId, 'free', 'eng'],
    ]);
    expect(asked.map((q) => [q.requestId, q.claimTeam])).toEqual([[second.requestId, 'eng']]);
    expect(jobs.map((j) => [j.requestId, j.claimTier, j.claimTeam, j.source])).toEqual([
      [first.requestId, 'free', 'eng', 'direct'],
    ]);
  });

  it("status asks with the connection's team claim, so the team's source can be its token", async () => {
    const service = chat();
    const userId = crypto.randomUUID();
    await service.status(identityFromAuthorizer({ userId, tier: 'free', team: 'eng' }));
    await service.status(identityFromAuthorizer({ userId, tier: 'free' }));
    expect(statusAsks).toEqual([{ claimTeam: 'eng' }, undefined]);
  });

  it('a token without a team asks no team', async () => {
    const userId = crypto.randomUUID();
    await chat().sendMessage(identityFromAuthorizer({ userId, tier: 'free' }), CONNECTION, {
      message: 'one',
    });
    expect(decided).toHaveLength(1);
    expect(decided[0]!.claimTeam).toBeUndefined();
    expect(jobs[0]!.claimTeam).toBeUndefined();
  });

  it('the replay of a waiting request decides and hands off with the claim it was queued with', async () => {
    const userId = crypto.randomUUID();
    const identity = identityFromAuthorizer({ userId, tier: 'free', team: 'eng' });
    const service = chat();
    const first = await service.sendMessage(identity, CONNECTION, { message: 'one' });
    const second = await service.sendMessage(identity, CONNECTION, { message: 'two' });
    expect(second.kind).toBe('queued');
    if (first.kind !== 'handed-off') throw new Error(`the first message was ${first.kind}`);
    // The first reply ends: its slot frees, and the waiting one may start.
    const real = new DynamoLimiter({ client: res.dynamo, tableName: res.tables.limits, tiers: TIERS });
    const { snap } = await real.view(userId, undefined, clock);
    await real.reconcile(
      reservationFromMarker(userId, first.requestId, snap.reservations[first.requestId]!),
      { inputTokens: 1, outputTokens: 1 },
      clock,
    );
    decided = [];
    jobs = [];
    const { Messages } = await res.sqs.send(
      new ReceiveMessageCommand({ QueueUrl: res.queues.requests.url, MessageSystemAttributeNames: ['All'] }),
    );
    const m = Messages![0]!;
    const record: QueueRecord = {
      messageId: m.MessageId!,
      receiptHandle: m.ReceiptHandle!,
      body: m.Body!,
      groupId: m.Attributes!.MessageGroupId!,
      deduplicationId: m.Attributes!.MessageDeduplicationId!,
    };
    const processor = new ReplayService({
      ...common(),
      queue: new RequestQueue(res.sqs, res.queues.requests.url, res.queues.dlq.url),
      limiter: recordingLimiter(),
      sleep: async (ms: number) => {
        clock += ms;
      },
      settings: DEFAULT_REPLAY_SETTINGS,
    });
    await processor.replay(record, () => 60_000);

    expect(decided.map((d) => [d.requestId, d.queue?.mode, d.claimTier, d.claimTeam])).toEqual([
      [second.requestId, 'replay', 'free', 'eng'],
    ]);
    expect(jobs.map((j) => [j.requestId, j.source, j.claimTeam])).toEqual([
      [second.requestId, 'queue', 'eng'],
    ]);
  });
});
