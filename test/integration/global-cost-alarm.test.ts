import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LocalStack } from '../../local/stack';
import { captureOutput, crosses, emfDatapoints, peak, readAlarms, synthTemplate } from '../support/alarms';
import { newUser, startTestStack } from '../support/local-stack';
import { TestClient } from '../support/ws-client';

/**
 * SPEC §6 v2: the alarm on the global daily cost (only in a stack that has one) can fire. The
 * template is synthesized with a global daily cost limit; the local stack runs with the same one,
 * spends past 80 % of it, and what the handlers emit (EMF on stdout) crosses the alarm's
 * threshold under its own namespace, name, dimensions and statistic, read from the template.
 */
const LIMITS = {
  // requestsInFlight: a rate this high needs it (the item size bound, docs/configuration.md).
  tiers: { free: { messagesPerMinute: 600, burst: 100, requestsInFlight: 100 } },
  // 100 µUSD over one shard: each reply below costs about 6 µUSD (31 reserved, the rest refunded).
  global: { dailyCostUsd: 0.0001, shards: 1 },
};

describe('GlobalCostHigh can fire', () => {
  const template = synthTemplate({ limits: LIMITS });
  let stack: LocalStack;
  let stdout: ReturnType<typeof captureOutput>;
  beforeAll(async () => {
    stdout = captureOutput();
    stack = await startTestStack({
      LIMITS_CONFIG: JSON.stringify(LIMITS),
      POWERTOOLS_METRICS_DISABLED: 'false',
    });
  }, 60_000);
  afterAll(async () => {
    await stack?.stop();
    stdout?.restore();
  });

  it("is in the template only with a global daily cost limit, and today's spend past 80 % crosses it", async () => {
    expect(readAlarms(synthTemplate()).some((a) => a.logicalId.includes('GlobalCostHigh'))).toBe(false);
    const alarm = readAlarms(template).find((a) => a.logicalId.includes('GlobalCostHigh'));
    expect(alarm).toBeDefined();
    const { token } = await newUser('spender');
    const client = await TestClient.connect(stack.wsUrl, token);
    const from = stdout.lines.length;
    // Spend until the global limit refuses: the last admissions took the shard past 80 %.
    for (let i = 0; i < 40; i++) {
      const id = `c${i}`;
      client.send({
        action: 'sendMessage',
        requestId: id,
        message: 'one two three four five six',
        maxTokens: 50,
      });
      const answer = await client.next(
        (f) => f.requestId === id && ['message_accepted', 'error'].includes(f.type),
      );
      if (answer.type === 'error') break;
      await client.next((f) => f.type === 'message_complete' && f.requestId === `c${i}`);
    }
    const refused = client.ofType('error').at(-1);
    expect(refused).toMatchObject({ details: { limit: 'global.dailyCostUsd' } });
    const value = peak(alarm!.metrics[0]!, emfDatapoints(stdout.lines.slice(from)));
    expect(value, 'GlobalCostPercent emitted as the alarm watches it').toBeDefined();
    expect(crosses(alarm!, value!), `GlobalCostPercent ${value} crosses ${alarm!.threshold}`).toBe(true);
    client.close();
  }, 60_000);
});
