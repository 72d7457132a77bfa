import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ENV } from '../../lambda/core/resources';
import type { LocalStack } from '../../local/stack';
import { newUser, startTestStack } from '../support/local-stack';
import { TestClient } from '../support/ws-client';

/** A stack with no queue room, so every over-limit message is refused and the refusal shows. */
describe('refusals at the limits', () => {
  let stack: LocalStack;
  beforeAll(async () => {
    stack = await startTestStack({ [ENV.maxQueuedPerUser]: '0', [ENV.connectLimitPerMinute]: '5' });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('refuses the 26th rapid message with RATE_LIMIT_EXCEEDED and a retryAfter of about 3 s', async () => {
    const { token } = await newUser('rapid');
    const client = await TestClient.connect(stack.wsUrl, token);
    for (let i = 0; i < 26; i++) client.send({ action: 'sendMessage', requestId: `m${i}`, message: 'hi' });
    const refusal = await client.next((f) => f.type === 'error', { timeoutMs: 15_000 });
    await client.until(() => client.ofType('message_complete').length === 25, 15_000);
    // Which message loses the race is up to the concurrent invocations, as in API Gateway.
    expect(refusal).toMatchObject({
      code: 'RATE_LIMIT_EXCEEDED',
      requestId: expect.stringMatching(/^m\d+$/),
    });
    expect(client.ofType('error')).toHaveLength(1);
    const details = refusal.details as { retryAfter: number; limit: string; resetAt: number };
    expect(details.limit).toBe('messageRate');
    expect(details.retryAfter).toBeGreaterThanOrEqual(1);
    // One refill is 3 s; concurrent invocations read their clocks a few ms apart, and the value
    // is rounded up to whole seconds, so 4 is possible for a request decided "before" the first.
    expect(details.retryAfter).toBeLessThanOrEqual(4);
    expect(client.ofType('message_accepted')).toHaveLength(25);
    client.close();
  });

  it('refuses connection attempts over the per-IP limit with 429', async () => {
    const { token } = await newUser('many');
    const statuses: (number | undefined)[] = [];
    // The stack allows 5 per minute per address; earlier tests of this file used some already.
    for (let i = 0; i < 8; i++) statuses.push(await TestClient.refusal(stack.wsUrl, token));
    expect(statuses).toContain(429);
    expect(statuses.indexOf(429)).toBeGreaterThan(0);
  });
});
