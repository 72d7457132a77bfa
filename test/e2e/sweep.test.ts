import { PurgeQueueCommand } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SWEEP_GRACE_MS } from '../../lambda/core/queue/sweep';
import { ENV } from '../../lambda/core/resources';
import { runAdminCli } from '../../local/admin/admin-cli';
import { localSqsClient } from '../../local/aws-clients';
import type { LocalStack } from '../../local/stack';
import { newUser, startTestStack } from '../support/local-stack';
import { TestClient } from '../support/ws-client';

/** A queued request whose wake-up is lost, found and answered by the sweep, through the local stack. */
describe('the self-healing sweep, end to end', () => {
  let stack: LocalStack;
  beforeAll(async () => {
    stack = await startTestStack({
      // One reply at a time, and a reply that takes a moment: the second message waits in line.
      [ENV.limitsConfig]: JSON.stringify({ tiers: { free: { requestsInFlight: 1 } } }),
      [ENV.echoDelayMs]: '300',
    });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  async function audit(userId: string): Promise<{ code: number; out: string }> {
    let out = '';
    const code = await runAdminCli(['audit', userId, '--endpoint', stack.httpUrl], {
      out: (s) => {
        out += s;
      },
      err: (s) => {
        out += s;
      },
    });
    return { code, out };
  }

  it('answers a queued request after its wake-up was deleted from SQS by hand, once the sweep runs', async () => {
    const { userId, token } = await newUser('sweep');
    const client = await TestClient.connect(stack.wsUrl, token);
    await client.request(
      { action: 'sendMessage', requestId: 'first', message: 'one two three' },
      'message_accepted',
    );
    const queued = await client.request(
      { action: 'sendMessage', requestId: 'second', message: 'four' },
      'request_queued',
    );
    expect(queued.position).toBe(1);
    // The wake-up is lost: deleted by hand, with whatever the processor held of it.
    await localSqsClient(stack.emulators.sqsEndpoint).send(
      new PurgeQueueCommand({ QueueUrl: stack.resources.queues.requests.url }),
    );
    await client.next((f) => f.type === 'message_complete' && f.requestId === 'first', { timeoutMs: 20_000 });
    await stack.processorIdle();
    expect(client.ofType('queue_processing_started', 'second')).toEqual([]);

    // The sweep runs as its schedule would a little later, finds the queue nobody wakes, wakes it.
    const report = (await stack.runSweep(Date.now() + 2 * SWEEP_GRACE_MS)) as {
      repaired: Record<string, number>;
    };
    expect(report).toMatchObject({ repaired: { 'lost-wake-up': 1 } });
    await client.next((f) => f.type === 'message_complete' && f.requestId === 'second', {
      timeoutMs: 20_000,
    });
    await stack.processorIdle();
    expect(client.ofType('message_complete', 'second')).toHaveLength(1);
    expect(await audit(userId)).toEqual({ code: 0, out: `audit ${userId}: ok` });
    client.close();
  });
});
