import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LocalStack } from '../../local/stack';
import { newUser, startTestStack } from '../support/local-stack';
import { type ServerFrame, TestClient, waitUntil } from '../support/ws-client';

/**
 * SPEC §2 v2 "Models and prices" and the cost budgets, through the local stack: two echo models
 * with different prices; `pro` may spend $0.01 a day on the dearer one only; `free` may use both,
 * spends $0.00026 a day, and lands on the cheaper one when its budget is spent.
 */
const LIMITS = {
  models: [
    { id: 'echo', kind: 'echo', inputUsdPerMillion: 0.2, outputUsdPerMillion: 0.6, maxOutputTokens: 100_000 },
    {
      id: 'echo-lite',
      kind: 'echo',
      inputUsdPerMillion: 0.02,
      outputUsdPerMillion: 0.06,
      maxOutputTokens: 100_000,
    },
  ],
  tiers: {
    free: {
      models: ['echo', 'echo-lite'],
      defaultModel: 'echo',
      fallbackModel: 'echo-lite',
      dailyCostUsd: 0.00026,
    },
    pro: {
      models: ['echo'],
      dailyCostUsd: 0.01,
      messagesPerMinute: 100_000,
      burst: 0,
      dailyTokens: 10_000_000,
    },
  },
};

describe('models, prices and cost budgets', () => {
  let stack: LocalStack;
  beforeAll(async () => {
    stack = await startTestStack({ LIMITS_CONFIG: JSON.stringify(LIMITS) });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  const dailyCost = (status: ServerFrame) =>
    (status.limits as { name: string; used: number; unit: string; limit: number }[]).find(
      (l) => l.name === 'dailyCostUsd',
    );

  it('prices each reply on its model and reports cost and model; status shows the budget in USD', async () => {
    const { token } = await newUser('priced');
    const client = await TestClient.connect(stack.wsUrl, token);
    const complete = await client.request(
      { action: 'sendMessage', requestId: 'p1', message: 'one two three four', maxTokens: 50 },
      'message_complete',
    );
    // 19 characters in (5 tokens), "Echo: one two three four" out (6 tokens), on echo.
    expect(complete).toMatchObject({ model: 'echo', usage: { inputTokens: 5, outputTokens: 6 } });
    const expectedMicro = Math.ceil(5 * 0.2 + 6 * 0.6);
    expect((complete.usage as { costUsd: number }).costUsd).toBeCloseTo(expectedMicro / 1e6, 12);
    const status = await client.request({ action: 'status' }, 'status');
    expect(dailyCost(status)).toMatchObject({ unit: 'usd', limit: 0.00026 });
    expect(dailyCost(status)?.used).toBeCloseTo(expectedMicro / 1e6, 12);
    client.close();
  });

  it('refuses a model the tier may not use with INVALID_REQUEST, keeps the connection, counts nothing', async () => {
    const { token } = await newUser('lite', 'pro');
    const client = await TestClient.connect(stack.wsUrl, token);
    for (const model of ['echo-lite', 'gpt-9']) {
      const refusal = await client.request(
        { action: 'sendMessage', requestId: `m-${model}`, message: 'hi', model },
        'error',
      );
      expect(refusal).toMatchObject({
        code: 'INVALID_REQUEST',
        requestId: `m-${model}`,
        details: { field: 'model' },
      });
    }
    const bad = await client.request(
      { action: 'sendMessage', message: 'hi', model: 'no spaces allowed' },
      'error',
    );
    expect(bad).toMatchObject({ code: 'INVALID_REQUEST' });
    expect(await client.request({ action: 'ping' }, 'pong')).toMatchObject({ type: 'pong' });
    const status = await client.request({ action: 'status' }, 'status');
    expect(dailyCost(status)?.used).toBe(0);
    expect(
      (status.limits as { name: string; used: number }[]).find((l) => l.name === 'messageRate')?.used,
    ).toBe(0);
    client.close();
  });

  it('never overdraws a $0.01 daily budget under 300 requests at once over 5 connections', async () => {
    const { token } = await newUser('spender', 'pro');
    const clients = await Promise.all(
      Array.from({ length: 5 }, () => TestClient.connect(stack.wsUrl, token)),
    );
    const prompt = 'x'.repeat(1_000); // 250 tokens in; up to 1,000 out: 650 µUSD reserved each
    for (let i = 0; i < 300; i++) {
      clients[i % 5]!.send({
        action: 'sendMessage',
        requestId: `c${i}`,
        message: `${prompt} ${i}`,
        maxTokens: 1000,
      });
    }
    const firsts = () =>
      clients
        .flatMap((c) => c.frames)
        .filter((f) => ['message_accepted', 'request_queued', 'error'].includes(f.type));
    await waitUntil(() => firsts().length >= 300, 60_000);
    const admitted = firsts().filter((f) => f.type === 'message_accepted').length;
    const completes = () => clients.flatMap((c) => c.ofType('message_complete'));
    await waitUntil(() => completes().length >= admitted, 30_000);
    const spent = completes().reduce((sum, f) => sum + (f.usage as { costUsd: number }).costUsd, 0);
    expect(admitted).toBeGreaterThan(0);
    expect(spent).toBeLessThanOrEqual(0.01);
    const status = await clients[0]!.request({ action: 'status' }, 'status');
    expect(dailyCost(status)?.used).toBeCloseTo(spent, 9);
    // What was refused says why, with the time the budget comes back.
    const refusal = firsts().find((f) => f.type === 'error');
    expect(refusal?.details).toMatchObject({ limit: 'dailyCostUsd' });
    // One warning for the day's budget, however many admissions raced past 80 %.
    const warnings = clients.flatMap((c) => c.ofType('limit_warning'));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({ limit: 'dailyCostUsd', limitValue: 0.01, unit: 'usd' });
    expect(warnings[0]!.remaining as number).toBeLessThanOrEqual(0.002);
    for (const c of clients) c.close();
  }, 90_000);

  it('lands on the cheaper fallback model when the cost budget is spent, and says so', async () => {
    const { token } = await newUser('landing');
    const client = await TestClient.connect(stack.wsUrl, token);
    // On echo the first reply costs about 202 µUSD of the 260: too little is left for another.
    const first = await client.request(
      { action: 'sendMessage', requestId: 'f1', message: 'y'.repeat(1_000), maxTokens: 1000 },
      'message_complete',
    );
    expect(first).toMatchObject({ model: 'echo' });
    expect(first.fallbackFrom).toBeUndefined();
    const second = await client.request(
      { action: 'sendMessage', requestId: 'f2', message: 'y'.repeat(1_000), maxTokens: 1000 },
      'message_complete',
    );
    expect(second).toMatchObject({ model: 'echo-lite', fallbackFrom: 'echo' });
    const status = await client.request({ action: 'status' }, 'status');
    expect(dailyCost(status)?.used).toBeLessThanOrEqual(0.00026);
    client.close();
  });
});
