import { ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { beforeEach, describe, expect, it } from 'vitest';
import { DynamoLimiter } from '../../lambda/adapters/dynamo-limiter';
import { ReplyStore } from '../../lambda/adapters/reply-store';
import { RequestQueue } from '../../lambda/adapters/request-queue';
import { parseLimitsConfig } from '../../lambda/core/limiter/policy';
import type { MetricName } from '../../lambda/core/metrics';
import { ChatService } from '../../lambda/services/chat-service';
import {
  DEFAULT_REPLAY_SETTINGS,
  type QueueRecord,
  ReplayService,
} from '../../lambda/services/replay-service';
import { createTestResources, type TestResources } from '../support/emulators';

const T0 = Date.UTC(2026, 10, 24, 12, 0, 0);
const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };

/**
 * `TeamLimitExceeded` (SPEC §9.4, §6): a request held back by its team's limit counts once where
 * the user is told (refused, or queued) and once each time its queued request is looked at and
 * still waits for the team — never in `GlobalLimitExceeded`, and a request of another team never.
 */
describe('TeamLimitExceeded', () => {
  let res: TestResources;
  let clock: number;
  let counted: MetricName[];

  beforeEach(async () => {
    res = await createTestResources('team-metric');
    clock = T0;
    counted = [];
  });

  it('counts a team refusal on the chat path (queued, refused) and in the replay wait, and nothing else', async () => {
    const config = parseLimitsConfig({ teams: { T: { requestsInFlight: 1 }, U: { requestsInFlight: 1 } } });
    const limiter = new DynamoLimiter({
      client: res.dynamo,
      tableName: res.tables.limits,
      tiers: config.tiers,
      teams: config.teams,
    });
    const store = new ReplyStore(res.dynamo, res.tables.requests);
    const queue = new RequestQueue(res.sqs, res.queues.requests.url, res.queues.dlq.url);
    const shared = {
      limiter,
      store,
      queue,
      sender: { send: async () => 'sent' as const },
      directory: { listByUser: async () => [] },
      metrics: {
        count: (name: MetricName) => {
          counted.push(name);
        },
        milliseconds: () => undefined,
      },
      log: quiet,
      now: () => clock,
    };
    // The replies never end here: each admitted request keeps its team's one slot.
    const chat = new ChatService({
      ...shared,
      handoff: { handOff: async () => undefined },
      settings: { maxQueuedPerUser: 1, maxQueueWaitSeconds: 900 },
    });
    const count = (name: MetricName) => counted.filter((n) => n === name).length;
    // b's team on its record (a queued request replayed later keeps the record's team; the token's
    // claim is the chat path's only).
    await limiter.setTeam('b', 'T');

    expect(
      (await chat.sendMessage({ userId: 'a', tier: 'free', team: 'T' }, 'ca', { message: 'hi' })).kind,
    ).toBe('handed-off');
    expect(count('TeamLimitExceeded')).toBe(0);
    // b (team T): held back by its team's one slot — queued.
    expect(
      await chat.sendMessage({ userId: 'b', tier: 'free', team: 'T' }, 'cb', {
        message: 'one',
        requestId: 'b1',
      }),
    ).toMatchObject({ kind: 'queued', position: 1 });
    expect(count('TeamLimitExceeded')).toBe(1);
    // b's second waits behind b's first (its own queue, full), not for the team: not counted.
    expect(
      await chat.sendMessage({ userId: 'b', tier: 'free', team: 'T' }, 'cb', {
        message: 'two',
        requestId: 'b2',
      }),
    ).toMatchObject({ kind: 'refused', code: 'QUEUE_FULL' });
    expect(count('TeamLimitExceeded')).toBe(1);
    // d (team T) where requests never queue: refused by the team's limit, and told so.
    const noQueue = new ChatService({
      ...shared,
      handoff: { handOff: async () => undefined },
      settings: { maxQueuedPerUser: 0, maxQueueWaitSeconds: 900 },
    });
    expect(
      await noQueue.sendMessage({ userId: 'd', tier: 'free', team: 'T' }, 'cd', {
        message: 'hi',
        requestId: 'd1',
      }),
    ).toMatchObject({
      kind: 'refused',
      code: 'RATE_LIMIT_EXCEEDED',
      details: { limit: 'team.requestsInFlight' },
    });
    expect(count('TeamLimitExceeded')).toBe(2);
    // c (team U) is not held back by team T: nothing counted.
    expect(
      (await chat.sendMessage({ userId: 'c', tier: 'free', team: 'U' }, 'cc', { message: 'hi' })).kind,
    ).toBe('handed-off');
    expect(count('TeamLimitExceeded')).toBe(2);

    // The processor looks at b's queued request: its team's slot is still a's, so it waits in line.
    const { Messages } = await res.sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: res.queues.requests.url,
        MessageSystemAttributeNames: ['All'],
        VisibilityTimeout: 0,
      }),
    );
    const m = Messages!.find((x) => JSON.parse(x.Body!).userId === 'b')!;
    const record: QueueRecord = {
      messageId: m.MessageId!,
      receiptHandle: m.ReceiptHandle!,
      body: m.Body!,
      groupId: m.Attributes!.MessageGroupId!,
      deduplicationId: m.Attributes!.MessageDeduplicationId!,
    };
    clock += 1000;
    const replay = new ReplayService({
      ...shared,
      handoff: { handOff: async () => undefined },
      settings: DEFAULT_REPLAY_SETTINGS,
      sleep: async (ms: number) => {
        clock += ms;
      },
    });
    expect(await replay.replay(record, () => 60_000)).toBe('retry');
    expect(count('TeamLimitExceeded')).toBe(3);
    expect(count('GlobalLimitExceeded')).toBe(0);
  }, 60_000);
});
