import { randomUUID } from 'node:crypto';
import { GetItemCommand, type GetItemCommandOutput } from '@aws-sdk/client-dynamodb';
import { ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { marshall, unmarshall } from '@aws-sdk/util-dynamodb';
import { beforeEach, describe, expect, it } from 'vitest';
import { DynamoLimiter } from '../../lambda/adapters/dynamo-limiter';
import { EchoModel } from '../../lambda/adapters/models';
import { ReplyStore } from '../../lambda/adapters/reply-store';
import { RequestQueue } from '../../lambda/adapters/request-queue';
import { lineKey } from '../../lambda/core/limiter/global/line';
import { parseLimitsConfig } from '../../lambda/core/limiter/policy';
import { queueDeadlineEpochMs } from '../../lambda/core/queue/request';
import type { ReplyJob } from '../../lambda/core/reply-job';
import type { OutgoingMessage } from '../../lambda/services/ports';
import {
  DEFAULT_REPLAY_SETTINGS,
  type QueueRecord,
  ReplayService,
} from '../../lambda/services/replay-service';
import { DEFAULT_RUNNER_SETTINGS, ReplyRunner } from '../../lambda/services/reply-runner';
import { createTestResources, type TestResources } from '../support/emulators';
import { enqueueWhole } from '../support/queued';

const T0 = Date.UTC(2026, 10, 24, 12, 0, 0);
/** What a request of 3 input tokens reserves: its input and the default output allowance. */
const RESERVED = 3 + 1024;

describe('a queued request held back by its team (SPEC §9.4)', () => {
  let res: TestResources;
  let clock: number;
  let limiter: DynamoLimiter;
  let store: ReplyStore;
  let queue: RequestQueue;
  const sent: OutgoingMessage[] = [];

  /**
   * The processor's service, handing off to a real reply runner in this process (awaited), or to
   * `handOff` (a reply still running: its reservation held).
   */
  const service = (handOff?: (job: ReplyJob) => Promise<void>) => {
    const deps = {
      limiter,
      store,
      queue,
      sender: {
        send: async (_c: string, message: OutgoingMessage) => {
          sent.push(message);
          return 'sent' as const;
        },
      },
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
      model: new EchoModel({ delayMs: 0 }),
      settings: { ...DEFAULT_RUNNER_SETTINGS, modelRetryBaseMs: 10, stopBeforeTimeoutMs: 1000 },
    });
    return new ReplayService({
      ...deps,
      handoff: { handOff: handOff ?? ((job: ReplyJob) => runner.run(job, () => 60_000)) },
      settings: { ...DEFAULT_REPLAY_SETTINGS, leaseMs: 5_000 },
    });
  };

  /** Queues a request the way the Message function does, and returns its SQS record. */
  async function enqueue(userId: string, claimTeam?: string): Promise<QueueRecord> {
    const requestId = `r-${randomUUID().slice(0, 8)}`;
    const slot = await enqueueWhole(
      limiter,
      store,
      {
        userId,
        requestId,
        connectionId: 'conn-a',
        message: 'hello team',
        estimatedInputTokens: 3,
        enqueuedAtEpochMs: clock,
        expiresAtEpochMs: queueDeadlineEpochMs(clock, 900),
        ...(claimTeam === undefined ? {} : { claimTeam }),
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
    const m = Messages!.find((x) => JSON.parse(x.Body!).requestId === requestId)!;
    return {
      messageId: m.MessageId!,
      receiptHandle: m.ReceiptHandle!,
      body: m.Body!,
      groupId: m.Attributes!.MessageGroupId!,
      deduplicationId: m.Attributes!.MessageDeduplicationId!,
    };
  }

  const lineItem = async (userId: string) => {
    const { Item }: GetItemCommandOutput = await res.dynamo.send(
      new GetItemCommand({
        TableName: res.tables.limits,
        Key: marshall({ pk: lineKey(userId) }),
        ConsistentRead: true,
      }),
    );
    return Item ? unmarshall(Item) : undefined;
  };

  beforeEach(async () => {
    res = await createTestResources('teamq');
    clock = T0;
    sent.length = 0;
    const config = parseLimitsConfig({ teams: { T: { requestsInFlight: 1 }, U: { requestsInFlight: 1 } } });
    limiter = new DynamoLimiter({
      client: res.dynamo,
      tableName: res.tables.limits,
      tiers: config.tiers,
      teams: config.teams,
    });
    store = new ReplyStore(res.dynamo, res.tables.requests);
    queue = new RequestQueue(res.sqs, res.queues.requests.url, res.queues.dlq.url);
  });

  it("waits in the line under its team's scope, never holds back another team, and is woken by its team's settle", async () => {
    for (const [user, team] of [
      ['a', 'T'],
      ['b', 'T'],
      ['c', 'U'],
    ] as const)
      await limiter.setTeam(user, team);
    const holder = await limiter.decide({ userId: 'a', requestId: 'ra', estimatedInputTokens: 3 }, clock);
    if (!holder.allowed) throw new Error(`refused: ${holder.limit}`);
    // b's queued request: its team's one slot is a's. It joins the line for team T's capacity.
    const record = await enqueue('b');
    expect(await service().replay(record, () => 60_000)).toBe('retry');
    expect(await lineItem('b')).toMatchObject({
      l: 'requestsInFlight',
      sc: 'team:T',
      h: record.receiptHandle,
    });
    expect(sent.some((m) => m.type === 'queue_processing_started')).toBe(false);
    // Team U's member is not behind team T's waiter.
    expect(
      (await limiter.decide({ userId: 'c', requestId: 'rc', estimatedInputTokens: 3 }, clock + 1)).allowed,
    ).toBe(true);
    // a's reply ends: its settle wakes b, the first in line for team T's capacity.
    clock += 1000;
    const outcome = await limiter.reconcile(holder.reservation, { inputTokens: 3, outputTokens: 5 }, clock);
    expect(outcome).toMatchObject({ applied: true, globalWakeUp: record.receiptHandle });
    // The wake-up is held while the reply runs (as for any queued request), and the reply completes.
    expect(await service().replay(record, () => 60_000)).toBe('retry');
    expect(sent.filter((m) => m.type === 'queue_processing_started')).toHaveLength(1);
    expect(sent.filter((m) => m.type === 'message_complete')).toHaveLength(1);
    expect((await limiter.teamUsage('T', clock)).limits).toEqual([
      expect.objectContaining({ name: 'team.requestsInFlight', used: 0 }),
    ]);
    // Admitted: out of the line (only its key and a TTL of now are left, for DynamoDB to delete).
    expect(Object.keys((await lineItem('b')) ?? {}).sort()).toEqual(['pk', 'ttlEpochSeconds']);
  }, 60_000);

  it("keeps a token-only member's team claim while it waits: its replay and its takeover count as the team's", async () => {
    const config = parseLimitsConfig({ teams: { T: { requestsInFlight: 1, dailyTokens: 1_000_000 } } });
    limiter = new DynamoLimiter({
      client: res.dynamo,
      tableName: res.tables.limits,
      tiers: config.tiers,
      teams: config.teams,
    });
    const teamUsed = async () =>
      Object.fromEntries((await limiter.teamUsage('T', clock)).limits.map((l) => [l.name, l.used]));
    // Nobody has a team on record: each member's team is its token's claim only.
    const holder = await limiter.decide(
      { userId: 'a', requestId: 'ra', claimTeam: 'T', estimatedInputTokens: 3 },
      clock,
    );
    if (!holder.allowed) throw new Error(`refused: ${holder.limit}`);
    const reserved = holder.reservation.reservedTokens;
    expect(reserved).toBe(RESERVED);
    const record = await enqueue('b', 'T');
    const { snap } = await limiter.view('b', undefined, clock, { fresh: true });
    expect(snap.team).toBeUndefined();
    expect(snap.queued[snap.waiting[0]!]?.claimTeam).toBe('T');
    // Replayed while a holds the team's one slot: it waits for team T, decided with the stored claim.
    const jobs: ReplyJob[] = [];
    const running = service(async (job) => {
      jobs.push(job);
    });
    expect(await running.replay(record, () => 60_000)).toBe('retry');
    expect(await lineItem('b')).toMatchObject({ l: 'requestsInFlight', sc: 'team:T' });
    expect(jobs).toHaveLength(0);
    expect(await teamUsed()).toEqual({ 'team.requestsInFlight': 1, 'team.dailyTokens': RESERVED });
    // a's reply ends (8 tokens); b's replay takes the team's slot and reserves, as the team's.
    clock += 1000;
    await limiter.reconcile(holder.reservation, { inputTokens: 3, outputTokens: 5 }, clock);
    expect(await teamUsed()).toEqual({ 'team.requestsInFlight': 0, 'team.dailyTokens': 8 });
    expect(await running.replay(record, () => 60_000)).toBe('retry');
    expect(jobs.map((j) => [j.source, j.claimTeam, j.reservation.team?.name])).toEqual([['queue', 'T', 'T']]);
    expect(await teamUsed()).toEqual({ 'team.requestsInFlight': 1, 'team.dailyTokens': 8 + RESERVED });
    // So another token-only member is held back by it.
    const third = await limiter.decide(
      { userId: 'c', requestId: 'rc', claimTeam: 'T', estimatedInputTokens: 3 },
      clock + 1,
    );
    expect(third).toMatchObject({ allowed: false, limit: 'team.requestsInFlight', team: 'T' });
    // The attempt dies; after its lease the next delivery takes it over with a reservation rebuilt
    // from the item, which names team T: its settle gives the team's unused tokens back.
    clock += 5_001;
    expect(await running.replay(record, () => 60_000)).toBe('retry');
    expect(jobs).toHaveLength(2);
    const takenOver = jobs[1]!;
    expect([takenOver.lease?.attempts, takenOver.reservation.team]).toEqual([2, { name: 'T' }]);
    await limiter.reconcile(takenOver.reservation, { inputTokens: 3, outputTokens: 5 }, clock, {
      endsActive: true,
    });
    expect(await teamUsed()).toEqual({ 'team.requestsInFlight': 0, 'team.dailyTokens': 16 });
  }, 60_000);
});
