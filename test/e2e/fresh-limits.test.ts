import { type Item, parseList } from 'structured-headers';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { LocalStack } from '../../local/stack';
import { type DynamoProxy, startDynamoProxy } from '../support/dynamo-proxy';
import { newUser, startTestStack } from '../support/local-stack';
import { type ServerFrame, TestClient } from '../support/ws-client';

/**
 * Fresh limits without asking (SPEC §9.3, issue 24 items 2 and 3), through the whole local stack:
 * every `message_complete` carries the limits its settle left, exactly as a `status` after it gives
 * them, with the IETF RateLimit fields, and the settle costs the store no more calls than before.
 * The message bucket refills one message a minute (capacity 25) and every other limit here is a
 * fixed window, so nothing moves between the settle and the `status` that follows it: every
 * number compares exactly.
 */
const LIMITS = {
  tiers: {
    free: {
      messagesPerMinute: 1,
      burst: 24,
      hourlyMessages: 100,
      dailyMessages: 500,
      monthlyTokens: 1_000_000,
      weeklyTokens: 500_000,
      dailyCostUsd: 5,
      shadow: ['weeklyTokens'],
    },
  },
};

interface Limit {
  name: string;
  limit: number;
  used: number;
  remaining: number;
  resetAt: number;
  unit: string;
  windowSeconds: number;
  shadow: boolean;
}

const limitsOf = (frame: ServerFrame) => frame.limits as Limit[];
const params = (field: unknown) =>
  parseList(String(field)).map((m) => [(m as Item)[0], Object.fromEntries((m as Item)[1])] as const);

describe('message_complete carries the limits its settle left', () => {
  let stack: LocalStack;
  let dynamo: DynamoProxy;
  beforeAll(async () => {
    dynamo = await startDynamoProxy(inject('dynamodbEndpoint'));
    stack = await startTestStack(
      { LIMITS_CONFIG: JSON.stringify(LIMITS) },
      { dynamodbEndpoint: dynamo.endpoint },
    );
  });
  afterAll(async () => {
    await stack?.stop();
    await dynamo?.stop();
  });

  it('equal to a following status, limit by limit, with the same RateLimit fields', async () => {
    const { token } = await newUser('fresh');
    const client = await TestClient.connect(stack.wsUrl, token);
    let tokens = 0;
    let cost = 0;
    for (const [i, message] of ['hello there', 'and a second, longer question'].entries()) {
      const complete = await client.request(
        { action: 'sendMessage', requestId: `f${i}`, message },
        'message_complete',
      );
      const status = await client.request({ action: 'status' }, 'status');
      const usage = complete.usage as { totalTokens: number; costUsd: number };
      tokens += usage.totalTokens;
      cost += usage.costUsd;
      // Exactly what status gives after it: every field of every limit.
      expect(limitsOf(complete)).toEqual(limitsOf(status));
      const byName = new Map(limitsOf(complete).map((l) => [l.name, l]));
      expect([...byName.keys()]).toEqual([
        'messageRate',
        'hourlyMessages',
        'dailyMessages',
        'dailyTokens',
        'weeklyTokens',
        'monthlyTokens',
        'dailyCostUsd',
      ]);
      // And they are this reply's: i + 1 messages, the tokens and cost the replies were charged.
      expect(byName.get('messageRate')).toMatchObject({ limit: 25, used: i + 1, remaining: 24 - i });
      expect(byName.get('hourlyMessages')).toMatchObject({ limit: 100, used: i + 1 });
      expect(byName.get('dailyTokens')).toMatchObject({ limit: 100_000, used: tokens });
      expect(byName.get('monthlyTokens')).toMatchObject({ used: tokens });
      expect(byName.get('dailyCostUsd')!.used).toBeCloseTo(cost, 6);
      // The policy field is the same on both; the shadow weekly budget is not in it.
      expect(complete.rateLimitPolicy).toBe(status.rateLimitPolicy);
      expect(params(complete.rateLimitPolicy)).toEqual([
        ['messageRate', { q: 25, w: 1500 }],
        ['hourlyMessages', { q: 100, w: 3600 }],
        ['dailyMessages', { q: 500, w: 86_400 }],
        ['dailyTokens', { q: 100_000, qu: 'tokens', w: 86_400 }],
        ['monthlyTokens', { q: 1_000_000, qu: 'tokens', w: 2_592_000 }],
        ['dailyCostUsd', { q: 5_000_000, qu: 'usd-micros', w: 86_400 }],
      ]);
      // What is left matches the limits exactly; the seconds to reset count from each message's
      // own instant (the settle's, then the status's, a moment later).
      const enforced = limitsOf(complete).filter((l) => !l.shadow);
      const [afterSettle, atStatus] = [params(complete.rateLimit), params(status.rateLimit)];
      for (const [j, l] of enforced.entries()) {
        const perUnit = l.unit === 'usd' ? 1_000_000 : 1;
        expect(afterSettle[j]).toEqual([
          l.name,
          { r: Math.round(l.remaining * perUnit), t: expect.any(Number) },
        ]);
        expect(atStatus[j]![1].r).toBe(afterSettle[j]![1].r);
        expect(atStatus[j]![1].t).toBe(Math.max(0, Math.ceil((l.resetAt - Number(status.timestamp)) / 1000)));
        expect(afterSettle[j]![1].t).toBeGreaterThanOrEqual(atStatus[j]![1].t as number);
      }
    }
    client.close();
  });

  it('costs no store call of its own: a reply is its decision, claim and settle, one UpdateItem each', async () => {
    const { token } = await newUser('calls');
    const client = await TestClient.connect(stack.wsUrl, token);
    dynamo.reset();
    const complete = await client.request(
      { action: 'sendMessage', requestId: 'c1', message: 'hi' },
      'message_complete',
    );
    expect(limitsOf(complete).map((l) => l.name)).toContain('messageRate');
    // Measured before this change and after it: 3 UpdateItem, nothing else — the limits come
    // from the settle's own answer (ReturnValues ALL_NEW), not from a read.
    expect(dynamo.calls()).toEqual({ UpdateItem: 3 });
    client.close();
  });
});
