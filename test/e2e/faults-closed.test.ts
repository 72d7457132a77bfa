import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { LocalStack } from '../../local/stack';
import { type FaultProxy, startFaultProxy } from '../support/fault-proxy';
import { newUser, startTestStack } from '../support/local-stack';
import { TestClient, untilTime, waitUntilStatusAnswers } from '../support/ws-client';

/** LIMITER_FAIL_POLICY=closed: while DynamoDB is away, requests are refused, clearly. */
describe('faults, limiter failing closed', () => {
  let stack: LocalStack;
  let dynamo: FaultProxy;
  beforeAll(async () => {
    dynamo = await startFaultProxy(inject('dynamodbEndpoint'));
    stack = await startTestStack(
      { LIMITER_FAIL_POLICY: 'closed', LIMITER_BREAKER_SILENCE_MS: '1000' },
      { dynamodbEndpoint: dynamo.endpoint },
    );
  });
  afterAll(async () => {
    dynamo.restore();
    await stack?.stop();
    await dynamo?.stop();
  });

  it('refuses with INTERNAL_ERROR and a retryAfter while DynamoDB is down, and serves again after', async () => {
    const { token } = await newUser('closed');
    const client = await TestClient.connect(stack.wsUrl, token);
    // The limiter hears the store answer just before it goes: the silence starts at the cut.
    await client.request({ action: 'status' }, 'status');
    dynamo.cut();
    try {
      // Busy refusals first (the store has not been silent long enough), then `unavailable`.
      let refusal: Awaited<ReturnType<TestClient['request']>> | undefined;
      let busy = 0;
      for (let i = 0; i < 20; i++, busy++) {
        refusal = await client.request(
          { action: 'sendMessage', requestId: `down${i}`, message: 'hi' },
          'error',
        );
        if (refusal.code !== 'RATE_LIMIT_EXCEEDED') break;
        expect(refusal.details).toMatchObject({ limit: 'busy' });
        // A well-behaved client waits as long as it was told before it tries again.
        await untilTime((refusal.details as { resetAt: number }).resetAt);
      }
      expect(refusal).toMatchObject({ code: 'INTERNAL_ERROR', details: { retryAfter: 1 } });
      // At least the first try, within milliseconds of the last answer, was only busy.
      expect(busy).toBeGreaterThanOrEqual(1);
      expect(client.ofType('message_accepted')).toHaveLength(0);
    } finally {
      dynamo.restore();
    }
    // The breaker closes on the first answer to one of its probes (one call every 500 ms).
    await waitUntilStatusAnswers(client);
    const complete = await client.request(
      { action: 'sendMessage', requestId: 'back', message: 'hi' },
      'message_complete',
    );
    expect(complete.requestId).toBe('back');
    client.close();
  });
});
