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
const DAY = Math.floor(T0 / DAY_MS);
const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };

/**
 * `Budget Threshold Crossed` for a team's budget (SPEC §9.5, scope `team`): the total is over the
 * team's shards (`team#<name>#<k>`), so the sweep reads it and publishes each crossing once per team,
 * limit, threshold and window, as its conditional mark on the team's own `team#<name>#events` lets
 * it — across runs and instances, and never for a team that did not cross.
 */
describe('team budget events from the sweep', () => {
  let res: TestResources;
  let clock: number;
  let events: { detailType: string; detail: Record<string, unknown> }[];

  const options = () => {
    const config = parseLimitsConfig({
      // `alpha` named; `beta` takes the defaults, known to the sweep from the teams' index only.
      teams: { alpha: { dailyTokens: 5_000, shards: 2 } },
      teamDefaults: { dailyTokens: 5_000 },
    });
    return {
      client: res.dynamo,
      tableName: res.tables.limits,
      tiers: config.tiers,
      global: config.global,
      teams: config.teams,
      teamDefaults: config.teamDefaults,
      clock: () => clock,
    };
  };
  const limiterOf = () => new DynamoLimiter(options());

  let logged: { message: string; fields?: Record<string, unknown> }[];
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
      log: {
        ...quiet,
        error: (message: string, fields?: Record<string, unknown>) => {
          logged.push({ message, fields });
        },
      },
      settings: DEFAULT_SWEEP_SETTINGS,
      now: () => clock,
    });

  /** `n` requests of 500 tokens each (400 in, 100 out) by members of `team`, decided and settled. */
  async function spend(limiter: DynamoLimiter, team: string, n: number, tag: string): Promise<void> {
    for (let i = 0; i < n; i++) {
      const d = await limiter.decide(
        {
          userId: `${team}-${tag}-${i}`,
          requestId: `r-${team}-${tag}-${i}`,
          estimatedInputTokens: 400,
          maxTokens: 100,
          claimTeam: team,
          queue: { mode: 'direct' },
        },
        clock,
      );
      expect(d.allowed ? 'allowed' : d.limit).toBe('allowed');
      if (!d.allowed) return;
      await limiter.reconcile(d.reservation, { inputTokens: 400, outputTokens: 100 }, clock + 1);
    }
  }

  const crossed = () =>
    events.filter((e) => e.detailType === 'Budget Threshold Crossed').map((e) => ({ ...e.detail }));

  beforeEach(async () => {
    res = await createTestResources('sweep-team-events');
    clock = T0;
    events = [];
    logged = [];
  });

  it("publishes a team's 80 % and 100 % once each, over two sweeps and two instances, and nothing for another team", async () => {
    const [a, b] = [limiterOf(), limiterOf()];
    await spend(a, 'alpha', 7, 'd1'); // alpha 3,500 of 5,000: below 80 %
    await spend(b, 'beta', 2, 'd1'); // beta 1,000: 20 %
    clock += 60_000;
    await sweepOf(a).run(clock);
    expect(crossed()).toEqual([]);

    await spend(b, 'alpha', 1, 'd1b'); // alpha 4,000: 80 %
    clock += 60_000;
    await Promise.all([sweepOf(a).run(clock), sweepOf(b).run(clock)]);
    await sweepOf(b).run(clock + 60_000);
    expect(crossed()).toEqual([
      {
        scope: 'team',
        team: 'alpha',
        limit: 'team.dailyTokens',
        thresholdPercent: 80,
        used: 4_000,
        remaining: 1_000,
        limitValue: 5_000,
        unit: 'tokens',
        window: DAY,
        resetAt: new Date((DAY + 1) * DAY_MS).toISOString(),
        crossedAt: new Date(clock).toISOString(),
      },
    ]);

    clock += 120_000;
    await spend(a, 'alpha', 2, 'd1c'); // alpha 5,000: 100 %
    clock += 60_000;
    await Promise.all([sweepOf(a).run(clock), sweepOf(b).run(clock)]);
    await sweepOf(a).run(clock + 60_000);
    expect(crossed().map((d) => [d.team, d.limit, d.thresholdPercent, d.used, d.remaining])).toEqual([
      ['alpha', 'team.dailyTokens', 80, 4_000, 1_000],
      ['alpha', 'team.dailyTokens', 100, 5_000, 0],
    ]);

    // beta's marks are its own: its 80 % the same day is published once, alpha's marks notwithstanding.
    await spend(b, 'beta', 6, 'd1d'); // beta 4,000: 80 %
    clock += 60_000;
    await sweepOf(b).run(clock);
    await sweepOf(a).run(clock + 60_000);
    expect(
      crossed()
        .slice(2)
        .map((d) => [d.scope, d.team, d.limit, d.thresholdPercent, d.used, d.window]),
    ).toEqual([['team', 'beta', 'team.dailyTokens', 80, 4_000, DAY]]);

    // The next day: a new window; alpha's pair again once its members cross it again.
    clock = (DAY + 1) * DAY_MS + 60_000;
    await sweepOf(a).run(clock);
    expect(crossed()).toHaveLength(3);
    await spend(a, 'alpha', 10, 'd2');
    clock += 60_000;
    await Promise.all([sweepOf(a).run(clock), sweepOf(b).run(clock)]);
    expect(
      crossed()
        .slice(3)
        .map((d) => [d.team, d.thresholdPercent, d.used, d.window]),
    ).toEqual([
      ['alpha', 80, 5_000, DAY + 1],
      ['alpha', 100, 5_000, DAY + 1],
    ]);
  }, 60_000);

  it("publishes the other teams' crossings when one team's budgets cannot be read, and that team's the next run", async () => {
    let failAlpha = true;
    /** A limiter whose reading of alpha's budgets fails (a fault) while failAlpha holds. */
    class FlakyAlpha extends DynamoLimiter {
      override async markTeamCrossings(team: string, nowMs: number) {
        if (team === 'alpha' && failAlpha) throw new Error('alpha shards timed out');
        return super.markTeamCrossings(team, nowMs);
      }
    }
    const limiter = new FlakyAlpha(options());
    await spend(limiter, 'alpha', 8, 'f'); // 4,000: 80 %
    await spend(limiter, 'beta', 8, 'f'); // 4,000: 80 %
    clock += 60_000;
    await sweepOf(limiter).run(clock);
    expect(crossed().map((d) => [d.team, d.thresholdPercent])).toEqual([['beta', 80]]);
    expect(logged.map((l) => l.message)).toEqual([
      "sweep: reading team alpha's budgets failed; the next run tries again",
    ]);

    failAlpha = false;
    clock += 60_000;
    await sweepOf(limiter).run(clock);
    expect(crossed().map((d) => [d.team, d.thresholdPercent, d.used])).toEqual([
      ['beta', 80, 4_000],
      ['alpha', 80, 4_000],
    ]);
  }, 60_000);
});
