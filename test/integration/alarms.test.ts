import { randomUUID } from 'node:crypto';
import { GetQueueAttributesCommand, type QueueAttributeName, SendMessageCommand } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { DynamoLimiter } from '../../lambda/adapters/dynamo-limiter';
import { parseTierLimits } from '../../lambda/core/limiter/policy';
import { queueDeadlineEpochMs } from '../../lambda/core/queue/request';
import { SWEEP_GRACE_MS } from '../../lambda/core/queue/sweep';
import { ENV, FUNCTIONS, type FunctionKey, QUEUES, type QueueKey } from '../../lambda/core/resources';
import { localDynamoClient, localSqsClient } from '../../local/aws-clients';
import { createAsyncInvoker, type LambdaHandler } from '../../local/gateway/lambda-runner';
import type { LocalStack } from '../../local/stack';
import {
  type AlarmSpec,
  captureOutput,
  crosses,
  emfDatapoints,
  evaluate,
  type Json,
  metricFilterDatapoints,
  peak,
  readAlarms,
  resourcesOfType,
  synthTemplate,
  type WatchedMetric,
} from '../support/alarms';
import { type FaultProxy, startFaultProxy } from '../support/fault-proxy';
import { newUser, startTestStack } from '../support/local-stack';
import { TestClient, untilTime, waitUntil, waitUntilStatusAnswers } from '../support/ws-client';

/**
 * SPEC §6 v2, every alarm can fire: for each alarm of the synthesized template, its condition is
 * driven through the real handlers of the local stack, and what the alarm watches is shown to be
 * emitted — the EMF the handlers print (namespace, name, dimensions and statistic read from the
 * template, never repeated here), the log lines a metric filter counts, or the SQS attribute that
 * CloudWatch publishes — and to cross the alarm's threshold. Where AWS alone emits a metric
 * (Lambda's Errors and Throttles, SQS's age of the oldest message), the test says why and shows
 * as much of the condition as runs here. The last test checks that no alarm went untested.
 */

describe('every alarm can fire (SPEC §6)', () => {
  const template = synthTemplate();
  const alarms = readAlarms(template);
  const covered = new Set<string>();
  let stack: LocalStack;
  let dynamo: FaultProxy;
  let sqs: FaultProxy;
  let stdout: ReturnType<typeof captureOutput>;

  /** Local queue URL of the template queue an SQS alarm names (its `QueueName` dimension). */
  const queueKeyOf = (dimension: unknown): QueueKey => {
    const [logicalId] = (dimension as { 'Fn::GetAtt': [string, string] })['Fn::GetAtt'];
    const queues = resourcesOfType(template, 'AWS::SQS::Queue');
    const main = queues.find(([, p]) => p.RedrivePolicy)!;
    const deadLetterOf = (k: QueueKey) => (QUEUES[k] as { deadLetterQueue?: QueueKey }).deadLetterQueue;
    const requestsKey = (Object.keys(QUEUES) as QueueKey[]).find((k) => deadLetterOf(k))!;
    if (logicalId === main[0]) return requestsKey;
    const dlqArn = (main[1].RedrivePolicy as Json).deadLetterTargetArn as { 'Fn::GetAtt': [string] };
    expect(logicalId).toBe(dlqArn['Fn::GetAtt'][0]);
    return deadLetterOf(requestsKey)!;
  };

  /** The alarms watching a metric (by namespace and name), at least one. */
  const watching = (namespace: string, name: string): AlarmSpec[] => {
    const found = alarms.filter((a) => a.metrics.some((m) => m.namespace === namespace && m.name === name));
    expect(found.length, `an alarm on ${namespace}/${name}`).toBeGreaterThan(0);
    return found;
  };

  /** Asserts the captured EMF and log lines drive every alarm on `name` in `namespace` over its threshold. */
  const expectEmittedOverThreshold = (namespace: string, name: string, from: number) => {
    const lines = stdout.lines.slice(from);
    const points = [...emfDatapoints(lines), ...metricFilterDatapoints(template, lines)];
    for (const alarm of watching(namespace, name)) {
      const value = peak(alarm.metrics[0]!, points);
      expect(value, `${name} emitted as ${alarm.logicalId} watches it`).toBeDefined();
      expect(crosses(alarm, value!), `${name} = ${value} crosses ${alarm.threshold}`).toBe(true);
      covered.add(alarm.logicalId);
    }
  };

  /** CloudWatch's SQS metrics, as GetQueueAttributes gives them (the emulator has no CloudWatch). */
  const SQS_ATTRIBUTE_OF_METRIC: Record<string, QueueAttributeName> = {
    ApproximateNumberOfMessagesVisible: 'ApproximateNumberOfMessages',
    ApproximateNumberOfMessagesNotVisible: 'ApproximateNumberOfMessagesNotVisible',
  };
  const sqsMetricValue = async (metric: WatchedMetric): Promise<number> => {
    const attribute = SQS_ATTRIBUTE_OF_METRIC[metric.name];
    if (!attribute) throw new Error(`${metric.name} has no GetQueueAttributes counterpart`);
    const { Attributes } = await localSqsClient(inject('sqsEndpoint')).send(
      new GetQueueAttributesCommand({
        QueueUrl: stack.resources.queues[queueKeyOf(metric.dimensions.QueueName)].url,
        AttributeNames: [attribute],
      }),
    );
    return Number(Attributes?.[attribute] ?? 0);
  };
  const sqsAlarmValue = async (alarm: AlarmSpec): Promise<number> => {
    const values: Record<string, number> = {};
    for (const metric of alarm.metrics) values[metric.id] = await sqsMetricValue(metric);
    return alarm.expression ? evaluate(alarm.expression, values) : values[alarm.metrics[0]!.id]!;
  };

  const limiter = () =>
    new DynamoLimiter({
      client: localDynamoClient(inject('dynamodbEndpoint')),
      tableName: stack.resources.tables.limits,
      tiers: parseTierLimits(''),
    });

  const queueDepthAlarm = () => watching('AWS/SQS', 'ApproximateNumberOfMessagesNotVisible')[0]!;

  beforeAll(async () => {
    stdout = captureOutput();
    dynamo = await startFaultProxy(inject('dynamodbEndpoint'));
    sqs = await startFaultProxy(inject('sqsEndpoint'));
    stack = await startTestStack(
      {
        // Metrics on, under the names the stack gives the functions (local/stack.ts sets them).
        POWERTOOLS_METRICS_DISABLED: 'false',
        // The breaker opens after 1 s without any answer from the store (3 s by default).
        LIMITER_BREAKER_SILENCE_MS: '1000',
      },
      { dynamodbEndpoint: dynamo.endpoint, sqsEndpoint: sqs.endpoint },
    );
  }, 60_000);
  afterAll(async () => {
    dynamo?.restore();
    sqs?.restore();
    await stack?.stop();
    await dynamo?.stop();
    await sqs?.stop();
    stdout?.restore();
  });

  it('RequestsFailed, FaultsLogged and DeadLetterQueueNotEmpty: an unreadable queued message is parked in the DLQ', async () => {
    const from = stdout.lines.length;
    // What a corrupt or foreign message looks like to the processor (it comes through the poller).
    await localSqsClient(inject('sqsEndpoint')).send(
      new SendMessageCommand({
        QueueUrl: stack.resources.queues.requests.url,
        MessageBody: 'not a request',
        MessageGroupId: 'corrupt',
        MessageDeduplicationId: randomUUID(),
      }),
    );
    await waitUntil(
      () => emfDatapoints(stdout.lines.slice(from)).some((p) => p.name === 'RequestsFailed'),
      15_000,
    );
    expectEmittedOverThreshold('ChatLimiter', 'RequestsFailed', from);
    expectEmittedOverThreshold('ChatLimiter', 'FaultsLogged', from);
    for (const alarm of watching('AWS/SQS', 'ApproximateNumberOfMessagesVisible')) {
      if (queueKeyOf(alarm.metrics[0]!.dimensions.QueueName) !== QUEUES.requests.deadLetterQueue) continue;
      const value = await sqsAlarmValue(alarm);
      expect(crosses(alarm, value), `DLQ depth ${value} crosses ${alarm.threshold}`).toBe(true);
      covered.add(alarm.logicalId);
    }
  });

  it('FaultsLogged: a fault the Message function catches (SQS down while queueing) is logged and counted', async () => {
    const { userId, token } = await newUser('enqueue');
    await limiter().setOverride(userId, { limits: { messagesPerMinute: 1, burst: 0 } });
    const client = await TestClient.connect(stack.wsUrl, token);
    await client.request(
      { action: 'sendMessage', requestId: 'first', message: 'hi' },
      'message_complete',
      20_000,
    );
    const from = stdout.lines.length;
    sqs.cut();
    try {
      const refusal = await client.request(
        { action: 'sendMessage', requestId: 'lost', message: 'hi' },
        'error',
        20_000,
      );
      expect(refusal).toMatchObject({ code: 'INTERNAL_ERROR', requestId: 'lost' });
    } finally {
      sqs.restore();
    }
    // The handler answered normally (Lambda's Errors stays at 0); only the ERROR log tells.
    expectEmittedOverThreshold('ChatLimiter', 'FaultsLogged', from);
    client.close();
  }, 40_000);

  it('LimiterFailOpen: DynamoDB down for everyone opens the breaker and admits a message uncounted', async () => {
    const { token } = await newUser('open');
    const client = await TestClient.connect(stack.wsUrl, token);
    const from = stdout.lines.length;
    dynamo.cut();
    try {
      for (let sent = 0; sent < 20 && client.ofType('message_accepted').length === 0; sent++) {
        const id = `down${sent}`;
        client.send({ action: 'sendMessage', requestId: id, message: 'still there?' });
        const first = await client.next(
          (f) => f.requestId === id && ['error', 'message_accepted'].includes(f.type),
          {
            timeoutMs: 15_000,
          },
        );
        if (first.type === 'error') await untilTime((first.details as { resetAt: number }).resetAt);
      }
      expect(client.ofType('message_accepted')).toHaveLength(1);
      await waitUntil(
        () => emfDatapoints(stdout.lines.slice(from)).some((p) => p.name === 'LimiterFailOpen'),
        5_000,
      );
      expectEmittedOverThreshold('ChatLimiter', 'LimiterFailOpen', from);
    } finally {
      dynamo.restore();
    }
    await waitUntilStatusAnswers(client);
    client.close();
  }, 60_000);

  it('QueueDepthHigh: users with requests waiting, their wake-ups deferred in flight, past the threshold', async () => {
    // The queue holds one wake-up per user with waiting requests (docs/queue.md), which the
    // processor keeps in flight (deferred) while the head waits: the depth is visible + in flight,
    // and it counts users waiting, each with up to MAX_QUEUED_PER_USER requests.
    const alarm = queueDepthAlarm();
    const users = await Promise.all(Array.from({ length: alarm.threshold + 1 }, () => newUser('depth')));
    const clients = await Promise.all(
      users.map(async ({ userId, token }) => {
        // One message a minute: the second one waits for the rest of this test.
        await limiter().setOverride(userId, { limits: { messagesPerMinute: 1, burst: 0 } });
        const client = await TestClient.connect(stack.wsUrl, token);
        client.send({ action: 'sendMessage', requestId: 'now', message: 'hi' });
        await client.request(
          { action: 'sendMessage', requestId: 'later', message: 'hi' },
          'request_queued',
          20_000,
        );
        return client;
      }),
    );
    // Once the processor has taken the wake-ups and deferred them, a visible-only count (the
    // alarm before review) no longer sees the line; the alarm's expression still does.
    const visible = alarm.metrics.find((m) => m.name === 'ApproximateNumberOfMessagesVisible')!;
    const deadline = Date.now() + 45_000;
    while (crosses(alarm, await sqsMetricValue(visible)) && Date.now() < deadline)
      await stack.processorIdle();
    expect(crosses(alarm, await sqsMetricValue(visible)), 'visible wake-ups alone').toBe(false);
    const value = await sqsAlarmValue(alarm);
    expect(crosses(alarm, value), `queue depth ${value} crosses ${alarm.threshold}`).toBe(true);
    covered.add(alarm.logicalId);
    for (const client of clients) client.close();
  }, 90_000);

  it('OldestRequestTooOld: watches the request queue at MAX_QUEUE_WAIT, which SQS alone measures', async () => {
    // ApproximateAgeOfOldestMessage is computed by SQS for CloudWatch; no GetQueueAttributes
    // attribute carries it, and the emulator has none, so it cannot be read here. Its condition —
    // a request still in the queue after MAX_QUEUE_WAIT, when the service would have expired it —
    // means the processor is not draining (disabled mapping, throttles, a crash loop): the
    // threshold must be that wait, and the queue the one the processor drains.
    const functions = resourcesOfType(template, 'AWS::Lambda::Function');
    const waits = new Set(
      functions.map(([, p]) => ((p.Environment as Json).Variables as Json)[ENV.maxQueueWaitSeconds]),
    );
    for (const alarm of watching('AWS/SQS', 'ApproximateAgeOfOldestMessage')) {
      const metric = alarm.metrics[0]!;
      expect(queueKeyOf(metric.dimensions.QueueName)).toBe('requests');
      expect([...waits]).toEqual([String(alarm.threshold)]);
      expect(metric.statistic).toBe('Maximum');
      covered.add(alarm.logicalId);
    }
  });

  it('<function>Errors and <function>Throttles: Lambda counts them; here an uncaught fault fails the invocation', async () => {
    // Lambda publishes Errors (an invocation that threw or ran past its Timeout) and Throttles
    // (no concurrency left) itself; a function prints neither, and the local runner has no
    // concurrency limit to throttle on. What runs here: a handler that does not catch a fault
    // fails its invocation — $connect while DynamoDB is down refuses the handshake with 500 —
    // which Lambda counts as an error of that function. Faults a handler catches are FaultsLogged.
    const connectFunction = resourcesOfType(template, 'AWS::Lambda::Function').find(([id]) =>
      id.startsWith(`Functions${FUNCTIONS.connect.id}`),
    );
    expect(connectFunction).toBeDefined();
    const { token } = await newUser('errors');
    dynamo.cut();
    let status: number | undefined;
    try {
      status = await TestClient.refusal(stack.wsUrl, token);
    } finally {
      dynamo.restore();
    }
    expect(status).toBe(500);
    const functionIds = new Set(resourcesOfType(template, 'AWS::Lambda::Function').map(([id]) => id));
    for (const name of ['Errors', 'Throttles']) {
      const watched = watching('AWS/Lambda', name).map((alarm) => {
        const ref = alarm.metrics[0]!.dimensions.FunctionName as { Ref: string };
        expect(functionIds.has(ref.Ref)).toBe(true);
        covered.add(alarm.logicalId);
        return ref.Ref;
      });
      // One alarm per function, the connect function's among them.
      expect(new Set(watched)).toEqual(functionIds);
      expect(watched).toContain(connectFunction![0]);
    }
    expect(Object.keys(FUNCTIONS) as FunctionKey[]).toHaveLength(functionIds.size);
  }, 30_000);

  it('ReplyEventsDropped and ReplyDestinationDeliveryFailures: Lambda counts them; here a dropped reply event reaches replyFailure', async () => {
    // Lambda publishes AsyncEventsDropped (an event it gave up on: too old, or every attempt
    // failed; counted even when it goes to a destination) and DestinationDeliveryFailures (a
    // record it could not hand to the destination) itself. What runs here: the local Lambda gives
    // up on a reply event exactly as FUNCTIONS.reply.asyncInvoke tells AWS to, and sends it on.
    const replyId = resourcesOfType(template, 'AWS::Lambda::Function').find(([id]) =>
      id.startsWith(`Functions${FUNCTIONS.reply.id}`),
    )![0];
    const records: unknown[] = [];
    const destination = {
      name: FUNCTIONS.replyFailure.id,
      timeoutMs: 1000,
      handler: (async (record: unknown) => void records.push(record)) as LambdaHandler,
    };
    const { onFailure: _declared, ...settings } = FUNCTIONS.reply.asyncInvoke;
    const invoker = createAsyncInvoker({ retryDelaysMs: [1, 1] });
    invoker.invoke(
      {
        name: FUNCTIONS.reply.id,
        timeoutMs: 1000,
        handler: (async () => {
          throw new Error('the runner crashed');
        }) as LambdaHandler,
        asyncInvoke: { ...settings, onFailure: destination },
      },
      { v: 1 },
    );
    await invoker.idle();
    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({ requestContext: { condition: 'RetriesExhausted' } });
    for (const name of ['AsyncEventsDropped', 'DestinationDeliveryFailures']) {
      for (const alarm of watching('AWS/Lambda', name)) {
        const metric = alarm.metrics[0]!;
        expect(metric.dimensions.FunctionName).toEqual({ Ref: replyId });
        expect(metric.statistic).toBe('Sum');
        expect(crosses(alarm, 1)).toBe(true);
        covered.add(alarm.logicalId);
      }
    }
  });

  it('StateRepairsMany: the sweep repairs the queues of eleven users whose wake-ups were lost', async () => {
    const from = stdout.lines.length;
    const nowMs = Date.now();
    for (let i = 0; i < 11; i++) {
      const { userId } = await newUser('lost');
      // Queued as the Message function does, but the wake-up never reached SQS.
      const slot = await limiter().enqueue(
        {
          userId,
          requestId: 'r1',
          connectionId: 'gone',
          contentKey: 'k',
          estimatedInputTokens: 1,
          enqueuedAtEpochMs: nowMs,
          expiresAtEpochMs: queueDeadlineEpochMs(nowMs, 900),
        },
        10,
        nowMs,
      );
      expect(slot.kind).toBe('queued');
    }
    await stack.runSweep(nowMs + 2 * SWEEP_GRACE_MS);
    expectEmittedOverThreshold('ChatLimiter', 'StateRepaired', from);
  }, 30_000);

  it('leaves no alarm of the template untested', () => {
    expect(alarms.map((a) => a.logicalId).filter((id) => !covered.has(id))).toEqual([]);
  });
});
