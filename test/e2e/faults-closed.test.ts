import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { LocalStack } from '../../local/stack';
import { type FaultProxy, startFaultProxy } from '../support/fault-proxy';
import { newUser, startTestStack } from '../support/local-stack';
import { TestClient } from '../support/ws-client';

/** LIMITER_FAIL_POLICY=closed: while DynamoDB is away, requests are refused, clearly. */
describe('faults, limiter failing closed', () => {
  let stack: LocalStack;
  let dynamo: FaultProxy;
  beforeAll(async () => {
    dynamo = await startFaultProxy(inject('dynamodbEndpoint'));
    stack = await startTestStack({ LIMITER_FAIL_POLICY: 'closed' }, { dynamodbEndpoint: dynamo.endpoint });
  });
  afterAll(async () => {
    dynamo.restore();
    await stack?.stop();
    await dynamo?.stop();
  });

  it('refuses with INTERNAL_ERROR and a retryAfter while DynamoDB is down, and serves again after', async () => {
    const { token } = await newUser('closed');
    const client = await TestClient.connect(stack.wsUrl, token);
    dynamo.cut();
    try {
      const refusal = await client.request(
        { action: 'sendMessage', requestId: 'down', message: 'hi' },
        'error',
      );
      expect(refusal).toMatchObject({
        code: 'INTERNAL_ERROR',
        requestId: 'down',
        details: { retryAfter: 1 },
      });
      expect(client.ofType('message_accepted')).toHaveLength(0);
    } finally {
      dynamo.restore();
    }
    const complete = await client.request(
      { action: 'sendMessage', requestId: 'back', message: 'hi' },
      'message_complete',
    );
    expect(complete.requestId).toBe('back');
    client.close();
  });
});
