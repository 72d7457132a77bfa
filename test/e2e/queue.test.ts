import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynamoLimiter } from '../../lambda/adapters/dynamo-limiter';
import { ReplyStore } from '../../lambda/adapters/reply-store';
import { parseTierLimits } from '../../lambda/core/limiter/policy';
import { localDynamoClient } from '../../local/aws-clients';
import type { LocalStack } from '../../local/stack';
import { newUser, startTestStack } from '../support/local-stack';
import { TestClient } from '../support/ws-client';

describe('the request queue, end to end', () => {
  let stack: LocalStack;
  let limiter: DynamoLimiter;
  beforeAll(async () => {
    stack = await startTestStack();
    limiter = new DynamoLimiter({
      client: localDynamoClient(stack.emulators.dynamodbEndpoint),
      tableName: stack.resources.tables.limits,
      tiers: parseTierLimits(''),
    });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  /**
   * Each queued request's place as last told (request_queued, then queue_position). Concurrent
   * sends of one user may land in the queue in another order than they were acknowledged; the
   * ones moved back are told at once.
   */
  function places(
    client: TestClient,
    until = Number.POSITIVE_INFINITY,
  ): Map<string, { position: number; at: number; eta: number }> {
    const latest = new Map<string, { position: number; at: number; eta: number }>();
    for (const f of client.frames) {
      if ((f.type === 'request_queued' || f.type === 'queue_position') && f.timestamp <= until) {
        latest.set(f.requestId as string, {
          position: f.position as number,
          at: f.timestamp,
          eta: f.estimatedWaitTime as number,
        });
      }
    }
    return latest;
  }

  /** Sends n messages at once and waits until every one has been accepted or queued. */
  async function burst(client: TestClient, n: number, prefix = 'm'): Promise<void> {
    for (let i = 0; i < n; i++)
      client.send({ action: 'sendMessage', requestId: `${prefix}${i}`, message: `q ${i}` });
    await client.until(
      () =>
        client.frames.filter((f) => ['message_accepted', 'request_queued', 'error'].includes(f.type))
          .length >= n,
      20_000,
    );
  }

  it('queues the 5 messages over the burst, drains them in order about 3 s apart, with honest waits', async () => {
    const { token } = await newUser('thirty');
    const client = await TestClient.connect(stack.wsUrl, token);
    await burst(client, 30);
    expect(client.ofType('message_accepted')).toHaveLength(25);
    // API Gateway invokes the route concurrently, so which five wait is up to the race.
    expect(client.ofType('request_queued')).toHaveLength(5);
    // The global count moves as each request is queued; the last one counted sees all five.
    expect(
      Math.max(...client.ofType('request_queued').map((f) => f.totalInQueue as number)),
    ).toBeGreaterThanOrEqual(5);

    await client.until(() => client.ofType('message_complete').length === 30, 40_000);
    const firstStart = Math.min(...client.ofType('queue_processing_started').map((f) => f.timestamp));
    const settled = [...places(client, firstStart - 1).entries()].sort(
      (a, b) => a[1].position - b[1].position,
    );
    expect(settled.map(([, p]) => p.position)).toEqual([1, 2, 3, 4, 5]);
    const startOf = (id: string) => client.ofType('queue_processing_started', id)[0]!.timestamp;
    const startTimes = settled.map(([id]) => startOf(id));
    // In the order of their places, one refill (3 s) apart.
    expect([...startTimes].sort((a, b) => a - b)).toEqual(startTimes);
    for (let i = 1; i < startTimes.length; i++) {
      expect(startTimes[i]! - startTimes[i - 1]!).toBeGreaterThan(2000);
      expect(startTimes[i]! - startTimes[i - 1]!).toBeLessThan(4500);
    }
    // Estimated wait within max(2 s, 20 %) of the real wait, from the moment it was told.
    for (const [id, told] of settled) {
      const real = (startOf(id) - told.at) / 1000;
      expect(Math.abs(real - told.eta)).toBeLessThanOrEqual(Math.max(2, 0.2 * real));
    }
    // Every step of the drain is told: the last in line hears 4, 3, 2, 1.
    const stepsAfter = (id: string) =>
      client
        .ofType('queue_position', id)
        .filter((f) => f.timestamp >= firstStart)
        .map((f) => f.position);
    expect(stepsAfter(settled[4]![0])).toEqual([4, 3, 2, 1]);
    expect(stepsAfter(settled[1]![0])).toEqual([1]);
    expect(stepsAfter(settled[0]![0])).toEqual([]);
    // Each request ends exactly once.
    for (let i = 0; i < 30; i++) expect(client.ofType('message_complete', `m${i}`)).toHaveLength(1);
    client.close();
  }, 60_000);

  it('never lets a new message overtake queued ones, even when the limiter would admit it', async () => {
    const { userId, token } = await newUser('order');
    const client = await TestClient.connect(stack.wsUrl, token);
    await burst(client, 26);
    const waiting = client.ofType('request_queued')[0]!.requestId;
    // The bucket is full again, but one request is still waiting: the next must line up behind it.
    await limiter.reset(userId, 'messages', Date.now());
    const queuedAfter = await client.request(
      { action: 'sendMessage', requestId: 'late', message: 'late' },
      'request_queued',
    );
    expect(queuedAfter).toMatchObject({ requestId: 'late', position: 2 });
    await client.until(() => client.ofType('message_complete', 'late').length === 1, 20_000);
    const order = client.frames.filter((f) => f.type === 'message_complete').map((f) => f.requestId);
    expect(order.indexOf(waiting)).toBeLessThan(order.indexOf('late'));
    client.close();
  }, 30_000);

  it('cancels a queued request: the sender is told, the ones behind move up, it never runs', async () => {
    const { token } = await newUser('cancel');
    const client = await TestClient.connect(stack.wsUrl, token);
    await burst(client, 28);
    // The queue's own order, from status.
    const status = await client.request({ action: 'status' }, 'status');
    const order = (status.queue as { requests: { requestId: string }[] }).requests.map((r) => r.requestId);
    expect(order).toHaveLength(3);
    const [, second, third] = order as [string, string, string];
    const from = client.frames.length;
    const cancelled = await client.request({ action: 'cancel', requestId: second }, 'request_cancelled');
    expect(cancelled.requestId).toBe(second);
    const moved = await client.next((f) => f.type === 'queue_position' && f.requestId === third, { from });
    expect(moved.position).toBe(2);
    await client.until(() => client.ofType('message_complete', third).length === 1, 20_000);
    expect(client.ofType('queue_processing_started', second)).toHaveLength(0);
    expect(client.ofType('message_complete', second)).toHaveLength(0);
    const again = await client.request({ action: 'cancel', requestId: second }, 'error');
    expect(again.code).toBe('NOT_FOUND');
    client.close();
  }, 30_000);

  it("cannot cancel another user's request", async () => {
    const owner = await newUser('owner');
    const other = await newUser('other');
    const a = await TestClient.connect(stack.wsUrl, owner.token);
    const b = await TestClient.connect(stack.wsUrl, other.token);
    await burst(a, 26);
    const waiting = a.ofType('request_queued')[0]!.requestId as string;
    const refused = await b.request({ action: 'cancel', requestId: waiting }, 'error');
    expect(refused.code).toBe('NOT_FOUND');
    await a.until(() => a.ofType('message_complete', waiting).length === 1, 20_000);
    a.close();
    b.close();
  }, 30_000);

  it('caps a user at 10 queued requests (QUEUE_FULL) and lists them in status', async () => {
    const { userId, token } = await newUser('cap');
    // The bucket holds 25 and refills one a minute: nothing leaves the queue before status is
    // read, so it holds all 10 (with the default refill of one per 3 s, a slow run saw 9).
    await limiter.setOverride(userId, { limits: { messagesPerMinute: 1, burst: 24 } });
    const client = await TestClient.connect(stack.wsUrl, token);
    await burst(client, 36);
    expect(client.ofType('message_accepted')).toHaveLength(25);
    expect(client.ofType('request_queued')).toHaveLength(10);
    const full = client.ofType('error');
    expect(full).toHaveLength(1);
    expect(full[0]).toMatchObject({ code: 'QUEUE_FULL' });
    const status = await client.request({ action: 'status' }, 'status');
    const queue = status.queue as { queued: number; requests: { requestId: string; position: number }[] };
    expect(queue.queued).toBe(10);
    expect(queue.requests.map((r) => r.position)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    client.close();
  }, 30_000);

  it('refuses instead of queueing when the wait would exceed MAX_QUEUE_WAIT (token budget spent)', async () => {
    const { userId, token } = await newUser('budget');
    await limiter.setOverride(userId, { limits: { dailyTokens: 40 } });
    const client = await TestClient.connect(stack.wsUrl, token);
    const refusal = await client.request(
      { action: 'sendMessage', requestId: 'big', message: 'x'.repeat(400) },
      'error',
    );
    expect(refusal).toMatchObject({ code: 'RATE_LIMIT_EXCEEDED' });
    expect((refusal.details as { limit: string }).limit).toBe('dailyTokens');
    expect(client.ofType('request_queued')).toHaveLength(0);
    client.close();
  });

  it('keeps the reply of a request whose sender left, and delivers it on resume', async () => {
    const { userId, token } = await newUser('resume');
    const first = await TestClient.connect(stack.wsUrl, token);
    await burst(first, 26);
    const waiting = first.ofType('request_queued')[0]!.requestId;
    // The 25 admitted at once finish while the sender is there; only the queued one is left.
    await first.until(() => first.ofType('message_complete').length === 25, 10_000);
    first.close();
    // The processor finishes m25 with nobody connected: the reply is kept (bounded wait).
    const store = new ReplyStore(
      localDynamoClient(stack.emulators.dynamodbEndpoint),
      stack.resources.tables.requests,
    );
    await waitFor(async () => (await store.listReplies(userId, Date.now())).length === 1, 20_000);
    const second = await TestClient.connect(stack.wsUrl, token);
    const resumed = await second.request({ action: 'resume' }, 'message_complete');
    expect(resumed).toMatchObject({ requestId: waiting, text: expect.any(String) });
    await waitFor(async () => (await store.listReplies(userId, Date.now())).length === 0, 5_000);
    second.close();
  }, 30_000);
});

/** Re-checks `condition` on each processor step until it holds; fails after `timeoutMs`. */
async function waitFor(condition: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
