import { beforeEach, describe, expect, it } from 'vitest';
import { DynamoLimiter } from '../../lambda/adapters/dynamo-limiter';
import { ReplyStore } from '../../lambda/adapters/reply-store';
import { RequestQueue } from '../../lambda/adapters/request-queue';
import { SweepIndex } from '../../lambda/adapters/sweep-index';
import { parseLimitsConfig } from '../../lambda/core/limiter/policy';
import { DEFAULT_SWEEP_SETTINGS, SweepService } from '../../lambda/services/sweep-service';
import { createTestResources, type TestResources } from '../support/emulators';

const T0 = Date.UTC(2026, 10, 24, 12, 0, 0);
const DAY_MS = 86_400_000;
const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };

/**
 * `Budget Threshold Crossed` for a global budget (SPEC §9.5): no admission knows the total over the
 * shards, so the sweep reads it and publishes each crossing once per window, as its conditional
 * mark on `global#events` lets it — across runs and across instances.
 */
describe('global budget events from the sweep', () => {
  let res: TestResources;
  let clock: number;
  let events: { detailType: string; detail: Record<string, unknown> }[];

  const limiterOf = () => {
    const config = parseLimitsConfig({ global: { dailyTokens: 5_000, shards: 2 } });
    return new DynamoLimiter({
      client: res.dynamo,
      tableName: res.tables.limits,
      tiers: config.tiers,
      global: config.global,
      clock: () => clock,
    });
  };

  const sweepOf = (limiter: DynamoLimiter) =>
    new SweepService({
      limiter,
      index: new SweepIndex(res.dynamo, res.tables.limits),
      queue: new RequestQueue(res.sqs, res.queues.requests.url, res.queues.dlq.url),
      store: new ReplyStore(res.dynamo, res.tables.requests),
      sender: { send: async () => 'sent' as const },
      directory: { listByUser: async () => [] },
      events: {
        publish: async (detailType, detail) => {
          events.push({ detailType, detail: { ...detail } });
        },
      },
      metrics: { count: () => undefined, milliseconds: () => undefined },
      log: quiet,
      settings: DEFAULT_SWEEP_SETTINGS,
      now: () => clock,
    });

  /** `n` requests of 500 tokens each (400 in, 100 out), each a different user's, decided and settled. */
  async function spend(limiter: DynamoLimiter, n: number, tag: string): Promise<void> {
    for (let i = 0; i < n; i++) {
      const d = await limiter.decide(
        {
          userId: `u-${tag}-${i}`,
          requestId: `r-${tag}-${i}`,
          estimatedInputTokens: 400,
          maxTokens: 100,
          queue: { mode: 'direct' },
        },
        clock,
      );
      expect(d.allowed).toBe(true);
      if (!d.allowed) return;
      await limiter.reconcile(d.reservation, { inputTokens: 400, outputTokens: 100 }, clock + 1);
    }
  }

  const crossed = () =>
    events
      .filter((e) => e.detailType === 'Budget Threshold Crossed')
      .map((e) => ({ ...e.detail }) as Record<string, unknown>);

  beforeEach(async () => {
    res = await createTestResources('sweep-global-events');
    clock = T0;
    events = [];
  });

  it('publishes 80 % and 100 % of the global daily tokens once each per day, over two sweeps and two instances', async () => {
    const [a, b] = [limiterOf(), limiterOf()];
    await spend(a, 7, 'd1'); // 3,500 of 5,000: below 80 %
    clock += 60_000;
    await sweepOf(a).run(clock);
    expect(crossed()).toEqual([]);

    await spend(b, 1, 'd1b'); // 4,000: 80 %
    clock += 60_000;
    await Promise.all([sweepOf(a).run(clock), sweepOf(b).run(clock)]);
    await sweepOf(b).run(clock + 60_000);
    expect(crossed()).toEqual([
      {
        scope: 'global',
        limit: 'global.dailyTokens',
        thresholdPercent: 80,
        used: 4_000,
        remaining: 1_000,
        limitValue: 5_000,
        unit: 'tokens',
        window: Math.floor(T0 / DAY_MS),
        resetAt: new Date((Math.floor(T0 / DAY_MS) + 1) * DAY_MS).toISOString(),
        crossedAt: new Date(clock).toISOString(),
      },
    ]);

    clock += 120_000;
    await spend(a, 2, 'd1c'); // 5,000: 100 %
    clock += 60_000;
    await sweepOf(a).run(clock);
    await sweepOf(b).run(clock + 60_000);
    expect(crossed().map((d) => [d.thresholdPercent, d.used, d.remaining])).toEqual([
      [80, 4_000, 1_000],
      [100, 5_000, 0],
    ]);

    // The next day: a new window, a new pair of events, once each again.
    clock = (Math.floor(T0 / DAY_MS) + 1) * DAY_MS + 60_000;
    await sweepOf(a).run(clock);
    expect(crossed()).toHaveLength(2);
    await spend(b, 10, 'd2');
    clock += 60_000;
    await sweepOf(a).run(clock);
    await sweepOf(b).run(clock + 60_000);
    const day2 = crossed().slice(2);
    expect(day2.map((d) => [d.thresholdPercent, d.used, d.window])).toEqual([
      [80, 5_000, Math.floor(T0 / DAY_MS) + 1],
      [100, 5_000, Math.floor(T0 / DAY_MS) + 1],
    ]);
  }, 60_000);
});
