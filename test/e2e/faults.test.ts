import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { DynamoLimiter } from '../../lambda/adapters/dynamo-limiter';
import { metricTotals } from '../../lambda/adapters/observability';
import { parseTierLimits } from '../../lambda/core/limiter/policy';
import { localDynamoClient } from '../../local/aws-clients';
import type { LocalStack } from '../../local/stack';
import { type FaultProxy, startFaultProxy } from '../support/fault-proxy';
import { newUser, startTestStack } from '../support/local-stack';
import { TestClient, untilTime, waitUntilStatusAnswers } from '../support/ws-client';

/** Fail-open (the default): DynamoDB and SQS taken away and brought back under live traffic. */
describe('faults, limiter failing open', () => {
  let stack: LocalStack;
  let dynamo: FaultProxy;
  let sqs: FaultProxy;
  beforeAll(async () => {
    dynamo = await startFaultProxy(inject('dynamodbEndpoint'));
    sqs = await startFaultProxy(inject('sqsEndpoint'));
    // The breaker opens after 1 s without any answer from the store (3 s by default).
    stack = await startTestStack(
      { LIMITER_BREAKER_SILENCE_MS: '1000' },
      { dynamodbEndpoint: dynamo.endpoint, sqsEndpoint: sqs.endpoint },
    );
  });
  afterAll(async () => {
    dynamo.restore();
    sqs.restore();
    await stack?.stop();
    await dynamo?.stop();
    await sqs?.stop();
  });

  it('refuses until the store is down for everyone, then fails open, counts it, and limits again after', async () => {
    const { token } = await newUser('open');
    const client = await TestClient.connect(stack.wsUrl, token);
    const before = metricTotals.get('LimiterFailOpen') ?? 0;
    // The limiter hears the store answer just before it goes: the silence starts at the cut.
    await client.request({ action: 'status' }, 'status');
    dynamo.cut();
    let sent = 0;
    try {
      // Until the breaker opens, a fault is no permission: each try is refused with a retryAfter.
      for (; sent < 20 && client.ofType('message_complete').length === 0; sent++) {
        const id = `down${sent}`;
        client.send({ action: 'sendMessage', requestId: id, message: 'still there?' });
        const first = await client.next(
          (f) => f.requestId === id && ['error', 'message_accepted'].includes(f.type),
          { timeoutMs: 15_000 },
        );
        if (first.type === 'error') {
          expect(first).toMatchObject({ code: 'RATE_LIMIT_EXCEEDED', details: { limit: 'busy' } });
          expect((first.details as { retryAfter: number }).retryAfter).toBeGreaterThanOrEqual(1);
          // A well-behaved client waits as long as it was told before it tries again.
          await untilTime((first.details as { resetAt: number }).resetAt);
        } else {
          await client.until(() => client.ofType('message_complete', id).length === 1, 5_000);
        }
      }
      // The first try met faults within milliseconds of the last answer: refused busy, not failed
      // over (the breaker's silence rule); only a later one, after 1 s of silence, failed open.
      expect(client.frames.find((f) => f.requestId === 'down0')).toMatchObject({
        type: 'error',
        code: 'RATE_LIMIT_EXCEEDED',
        details: { limit: 'busy' },
      });
      expect(sent).toBeGreaterThanOrEqual(2);
      expect(client.ofType('message_complete')).toHaveLength(1);
      expect(client.ofType('message_accepted')).toHaveLength(1);
      expect(metricTotals.get('LimiterFailOpen')).toBe(before + 1);
    } finally {
      dynamo.restore();
    }
    // The store answers again; the breaker closes on the first answer to one of its probes (one
    // call a second goes through while it is open). Then every limit applies again.
    await waitUntilStatusAnswers(client);
    for (let i = 0; i < 26; i++) client.send({ action: 'sendMessage', requestId: `m${i}`, message: 'hi' });
    await client.until(
      () =>
        client.frames.filter((f) => f.type === 'message_accepted' && String(f.requestId).startsWith('m'))
          .length === 25 && client.ofType('request_queued').length === 1,
      15_000,
    );
    client.close();
  }, 40_000);

  it('loses nothing queued when DynamoDB drops out while the queue drains', async () => {
    const { token } = await newUser('drain');
    const client = await TestClient.connect(stack.wsUrl, token);
    for (let i = 0; i < 28; i++) client.send({ action: 'sendMessage', requestId: `q${i}`, message: 'hi' });
    await client.until(() => client.ofType('request_queued').length === 3, 15_000);
    dynamo.cut();
    await new Promise((resolve) => setTimeout(resolve, 2500)); // an outage of 2.5 s, on purpose
    dynamo.restore();
    await client.until(() => client.ofType('message_complete').length === 28, 40_000);
    for (let i = 0; i < 28; i++) expect(client.ofType('message_complete', `q${i}`)).toHaveLength(1);
    client.close();
  }, 60_000);

  it('refuses to queue with a clear error when SQS is down, and writes nothing', async () => {
    const { userId, token } = await newUser('nosqs');
    // One message per minute, so the second one has to queue.
    const limiter = new DynamoLimiter({
      client: localDynamoClient(dynamo.endpoint),
      tableName: stack.resources.tables.limits,
      tiers: parseTierLimits(''),
    });
    await limiter.setOverride(userId, { limits: { messagesPerMinute: 1, burst: 0 } });
    const client = await TestClient.connect(stack.wsUrl, token);
    await client.request({ action: 'sendMessage', requestId: 'first', message: 'hi' }, 'message_complete');
    sqs.cut();
    let refusal: Awaited<ReturnType<TestClient['request']>>;
    try {
      refusal = await client.request(
        { action: 'sendMessage', requestId: 'lost', message: 'hi' },
        'error',
        20_000,
      );
    } finally {
      sqs.restore();
    }
    expect(refusal).toMatchObject({ code: 'INTERNAL_ERROR', requestId: 'lost', details: { retryAfter: 1 } });
    const status = await client.request({ action: 'status' }, 'status');
    expect(status.queue).toEqual({ queued: 0, requests: [] });
    const { snap } = await limiter.view(userId, undefined, Date.now());
    expect(snap.queued.lost).toBeUndefined();
    expect(snap.waiting).toEqual([]);
    client.close();
  }, 40_000);
});
