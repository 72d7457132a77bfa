import { randomUUID } from 'node:crypto';
import { GetItemCommand } from '@aws-sdk/client-dynamodb';
import { marshall, unmarshall } from '@aws-sdk/util-dynamodb';
import { describe, expect, inject, it } from 'vitest';
import { DynamoLimiter } from '../../lambda/adapters/dynamo-limiter';
import type {
  AllowedDecision,
  DecideInput,
  Decision,
  DeniedDecision,
} from '../../lambda/core/limiter/decision';
import type { GlobalLimits } from '../../lambda/core/limiter/global/limits';
import { SETTLED_SHARE_PREFIX, userKey } from '../../lambda/core/limiter/item/attributes';
import { parseLimitsConfig } from '../../lambda/core/limiter/policy';
import { HOUR_MS } from '../../lambda/core/limiter/windows';
import { localDynamoClient, localSqsClient } from '../../local/aws-clients';
import { createLocalResources } from '../../local/resources';
import { countCalls } from '../support/call-counter';
import { onEveryEmulator } from '../support/dynamodb-local';
import { itemSizeBytes } from '../support/item-size';

const NOW = Date.UTC(2026, 10, 24, 10, 0, 0);
/** Users' own limits out of the way (one message a millisecond): only the global ones bind. */
const OPEN_TIERS = {
  free: { messagesPerMinute: 60_000, burst: 0, dailyTokens: 100_000_000 },
  pro: { messagesPerMinute: 60_000, burst: 0, dailyTokens: 100_000_000 },
  enterprise: { messagesPerMinute: 60_000, burst: 0, dailyTokens: 100_000_000 },
};

function describeGlobalContract(backend: string, endpoint: () => string) {
  describe(`global limits on ${backend}`, () => {
    /** A fresh table (the shards are stack-wide) and `n` limiter instances on it. */
    async function instances(global: Partial<GlobalLimits>, n = 6, globalWaitersTtlMs?: number) {
      const { tables } = await createLocalResources(
        localDynamoClient(endpoint()),
        localSqsClient(inject('sqsEndpoint')),
        `global-${randomUUID().slice(0, 8)}`,
      );
      const client = localDynamoClient(endpoint());
      const counter = countCalls(client);
      const make = (tiers: object = OPEN_TIERS) => {
        const config = parseLimitsConfig({ tiers, global });
        return new DynamoLimiter({
          client,
          tableName: tables.limits,
          tiers: config.tiers,
          global: config.global,
          timeoutMs: 30_000,
          inFlightLeaseMs: 60_000,
          globalWaitersTtlMs,
        });
      };
      return {
        limiters: Array.from({ length: n }, () => make()),
        counter,
        make,
        client,
        tableName: tables.limits,
      };
    }
    const ask = (userId: string, over: Partial<DecideInput> = {}): DecideInput => ({
      userId,
      requestId: randomUUID(),
      estimatedInputTokens: 10,
      maxTokens: 90,
      ...over,
    });
    /** 300 decisions at once over 50 users and every instance. */
    const burst = (limiters: DynamoLimiter[], at = NOW, users = 50, n = 300) =>
      Promise.all(
        Array.from({ length: n }, (_, i) => limiters[i % limiters.length]!.decide(ask(`u${i % users}`), at)),
      );
    const admitted = (ds: Decision[]) => ds.filter((d): d is AllowedDecision => d.allowed);
    const totals = async (limiter: DynamoLimiter) =>
      Object.fromEntries(
        ((await limiter.status('anyone', undefined, NOW)).global ?? []).map((g) => [g.name, g.used]),
      );

    it('never has more than 20 requests in flight across 50 users from 6 instances; settles free slots', async () => {
      const { limiters } = await instances({ requestsInFlight: 20, shards: 4 });
      const first = await burst(limiters);
      expect(admitted(first)).toHaveLength(20);
      expect(first.find((d) => !d.allowed)).toMatchObject({ limit: 'global.requestsInFlight' });
      expect(await totals(limiters[0]!)).toMatchObject({ 'global.requestsInFlight': 20 });
      // Five replies end: exactly five of the next 300 get in.
      await Promise.all(
        admitted(first)
          .slice(0, 5)
          .map((d, i) =>
            limiters[i]!.reconcile(d.reservation, { inputTokens: 10, outputTokens: 5 }, NOW + 1),
          ),
      );
      expect(admitted(await burst(limiters, NOW + 2))).toHaveLength(5);
      // A runner that never settles holds its slot only until its lease lapses.
      expect(admitted(await burst(limiters, NOW + 60_003))).toHaveLength(20);
    }, 60_000);

    it('admits exactly the hourly global limit, then the next hour again', async () => {
      // Each instance keeps its view of the line for the burst: the head of the line is 4 Queries
      // (one per bucket) read once a second per instance, and a loaded emulator stretches 300
      // decisions over several seconds; counted here once per instance, exactly.
      const { limiters, counter } = await instances({ hourlyMessages: 37, shards: 4 }, 6, 60_000);
      counter.reset();
      const decisions = await burst(limiters);
      expect(counter.byCommand().QueryCommand).toBe(6 * 4);
      expect(admitted(decisions)).toHaveLength(37);
      const refused = decisions.find((d): d is DeniedDecision => !d.allowed);
      expect(refused).toMatchObject({ limit: 'global.hourlyMessages', retryAfterMs: 3_600_000 });
      // Charged nothing: a refused user's own counters did not move.
      const user = refused ? decisions.indexOf(refused) % 50 : 0;
      const mine = admitted(decisions).filter((d) => d.reservation.userId === `u${user}`).length;
      const status = await limiters[0]!.status(`u${user}`, undefined, NOW);
      expect(status.limits.find((l) => l.name === 'messageRate')?.used).toBe(mine);
      expect(status.global?.find((g) => g.name === 'global.hourlyMessages')).toMatchObject({
        used: 37,
        limit: 37,
        remaining: 0,
      });
      // Cheap while refusing: once an instance has seen the shards full it refuses without a write.
      // (What the first burst costs depends on how many decisions were in flight before each
      // instance learned that, i.e. on the machine's load: `npm run bench -- global` measures it.)
      // A second later each instance looks at each shard once more (one read) and refuses the rest.
      counter.reset();
      const again = await burst(limiters, NOW + 1_000);
      expect(admitted(again)).toHaveLength(0);
      expect(counter.byCommand()).toEqual({ GetItemCommand: 6 * 4 });
      // The hour's replies end (a request still holding its share keeps its record, one of the 13
      // a shard may hold, until its settle or the sweep's repair gives it back).
      await Promise.all(
        admitted(decisions).map((d, i) =>
          limiters[i % 6]!.reconcile(d.reservation, { inputTokens: 10, outputTokens: 5 }, NOW + 1),
        ),
      );
      expect(admitted(await burst(limiters, NOW + 3_600_000))).toHaveLength(37);
    }, 60_000);

    it('never overdraws the global daily tokens or cost under 300 parallel reservations, and refunds flow back', async () => {
      // 100 tokens a request (10 in, 90 allowance), 10×0.2 + 90×0.6 = 56 µUSD.
      const { limiters } = await instances({ dailyTokens: 2_050, dailyCostUsd: 1, shards: 3 });
      const tokens = await burst(limiters);
      // Shares of 2,050 over 3 shards: 684 + 683 + 683: six requests fit each share (not seven).
      expect(admitted(tokens)).toHaveLength(18);
      expect((await totals(limiters[0]!))['global.dailyTokens']).toBe(1_800);
      // Each reply used 20 of its 100: 80 back each.
      await Promise.all(
        admitted(tokens).map((d, i) =>
          limiters[i % 6]!.reconcile(d.reservation, { inputTokens: 10, outputTokens: 10 }, NOW + 1),
        ),
      );
      expect((await totals(limiters[0]!))['global.dailyTokens']).toBe(360);

      const { limiters: costly } = await instances({ dailyCostUsd: 0.001, shards: 4 });
      const spent = await burst(costly);
      // 1,000 µUSD in shares of 250: four requests of 56 each fit a share.
      expect(admitted(spent)).toHaveLength(16);
      expect(spent.find((d) => !d.allowed)).toMatchObject({ limit: 'global.dailyCostUsd' });
      expect((await totals(costly[0]!))['global.dailyCostUsd']).toBeCloseTo(0.000896, 9);
    }, 60_000);

    it("keeps no settled charge in the user's item once each share is back: 40 replies, an item that does not grow", async () => {
      const { limiters, client, tableName } = await instances({
        requestsInFlight: 20,
        dailyTokens: 1_000_000,
        shards: 2,
      });
      const [limiter] = limiters;
      const user = `steady-${randomUUID().slice(0, 6)}`;
      for (let i = 0; i < 40; i++) {
        const d = await limiter!.decide(ask(user), NOW + i * 1000);
        expect(d.allowed).toBe(true);
        if (!d.allowed) return;
        await limiter!.reconcile(d.reservation, { inputTokens: 10, outputTokens: 5 }, NOW + i * 1000 + 500);
      }
      const { Item } = await client.send(
        new GetItemCommand({ TableName: tableName, Key: marshall({ pk: userKey(user) }) }),
      );
      const item = unmarshall(Item!);
      expect(Object.keys(item).filter((k) => k.startsWith(SETTLED_SHARE_PREFIX))).toEqual([]);
      expect(itemSizeBytes(item)).toBeLessThan(1024);
      expect(await totals(limiter!)).toMatchObject({
        'global.requestsInFlight': 0,
        'global.dailyTokens': 40 * 15,
      });
    });

    it("gives the global share back when the user's own write then refuses (stale belief): charged nothing", async () => {
      const { make } = await instances({ hourlyMessages: 100, shards: 2 }, 0);
      // Instance `a` saw the user with a full bucket (one message); `b` then spends it.
      const tight = { free: { messagesPerMinute: 1, burst: 0 } };
      const [a, b] = [make(tight), make(tight)];
      await a.view('solo', undefined, NOW);
      expect((await b.decide(ask('solo'), NOW)).allowed).toBe(true);
      // `a` plans from its belief (room), takes a global share, its user write fails, it reads,
      // refuses — and gives the share back.
      const refused = await a.decide(ask('solo'), NOW);
      expect(refused).toMatchObject({ allowed: false, limit: 'messageRate' });
      expect((await a.status('solo', undefined, NOW)).global?.[0]).toMatchObject({
        name: 'global.hourlyMessages',
        used: 1,
      });
    }, 30_000);

    it('admits waiting requests by tier, oldest first within a tier, and an urgent one before every tier', async () => {
      // Every look at who waits is fresh here (in service, a direct request trusts a second-old view).
      const { limiters } = await instances({ requestsInFlight: 1, shards: 1 }, 2, 0);
      const [l1, l2] = limiters as [DynamoLimiter, DynamoLimiter];
      const holder = await l1.decide(ask('holder'), NOW);
      expect(holder.allowed).toBe(true);
      /** The user's head request, queued for real, as the processor replays it. */
      const heads = new Map<string, string>();
      const replay = async (userId: string, enqueuedAtEpochMs: number, deadlineEpochMs: number) => {
        let requestId = heads.get(userId);
        if (!requestId) {
          requestId = `q-${userId}`;
          heads.set(userId, requestId);
          await l2.enqueue(
            {
              userId,
              requestId,
              connectionId: 'c',
              contentKey: 'k',
              claimTier: userId.startsWith('pro') ? 'pro' : 'free',
              estimatedInputTokens: 10,
              enqueuedAtEpochMs,
              expiresAtEpochMs: deadlineEpochMs,
            },
            10,
            NOW,
          );
        }
        return ask(userId, {
          requestId,
          claimTier: userId.startsWith('pro') ? 'pro' : 'free',
          queue: { mode: 'replay', leaseUntilEpochMs: NOW + 60_000, enqueuedAtEpochMs, deadlineEpochMs },
        });
      };
      // Three users wait for the one slot: a free one queued first, a pro one, another free one.
      const waiters = [
        {
          userId: 'free-old',
          tier: 'free' as const,
          enqueuedAtEpochMs: NOW - 3000,
          deadlineEpochMs: NOW + 900_000,
        },
        {
          userId: 'pro-new',
          tier: 'pro' as const,
          enqueuedAtEpochMs: NOW - 1000,
          deadlineEpochMs: NOW + 900_000,
        },
        {
          userId: 'free-new',
          tier: 'free' as const,
          enqueuedAtEpochMs: NOW - 2000,
          deadlineEpochMs: NOW + 900_000,
        },
      ];
      for (const w of waiters)
        await l2.joinGlobalLine({
          ...w,
          wakeUp: `h-${w.userId}`,
          seenAtEpochMs: NOW,
          limit: 'requestsInFlight',
        });
      // The slot frees: the settle names whom to wake — the pro one, whatever the order they came in.
      if (!holder.allowed) return;
      const settled = await l1.reconcile(holder.reservation, { inputTokens: 1, outputTokens: 1 }, NOW + 1);
      expect(settled.globalWakeUp).toBe('h-pro-new');
      // A free user's replay is not its turn even with the slot free; the pro one's is.
      const notYet = await l2.decide(await replay('free-old', NOW - 3000, NOW + 900_000), NOW + 2);
      expect(notYet).toMatchObject({ allowed: false, limit: 'global.requestsInFlight' });
      const pro = await l1.decide(await replay('pro-new', NOW - 1000, NOW + 900_000), NOW + 3);
      expect(pro.allowed).toBe(true);
      // Within the free tier the older one goes first.
      if (!pro.allowed) return;
      const next = await l2.reconcile(pro.reservation, { inputTokens: 1, outputTokens: 1 }, NOW + 4);
      expect(next.globalWakeUp).toBe('h-free-old');
      expect((await l1.decide(await replay('free-new', NOW - 2000, NOW + 900_000), NOW + 5)).allowed).toBe(
        false,
      );
      // No starvation: a free request within a minute of its deadline goes before a pro one.
      await l2.joinGlobalLine({
        userId: 'pro-2',
        tier: 'pro',
        enqueuedAtEpochMs: NOW,
        deadlineEpochMs: NOW + 900_000,
        wakeUp: 'h-pro-2',
        seenAtEpochMs: NOW + 5,
        limit: 'requestsInFlight',
      });
      await l2.joinGlobalLine({
        userId: 'free-new',
        tier: 'free',
        enqueuedAtEpochMs: NOW - 2000,
        deadlineEpochMs: NOW + 50_000,
        wakeUp: 'h-free-new',
        seenAtEpochMs: NOW + 5,
        limit: 'requestsInFlight',
      });
      expect((await l1.decide(await replay('free-old', NOW - 3000, NOW + 900_000), NOW + 6)).allowed).toBe(
        false,
      );
      expect((await l1.decide(await replay('free-new', NOW - 2000, NOW + 50_000), NOW + 7)).allowed).toBe(
        true,
      );
    }, 30_000);

    it('serves the line by tier when an hourly window opens: waiters deferred to it are not stale, and no direct request overtakes them', async () => {
      const { limiters } = await instances({ hourlyMessages: 2, shards: 1 }, 3, 0);
      const [l1, l2, l3] = limiters as [DynamoLimiter, DynamoLimiter, DynamoLimiter];
      const HOUR_END = Date.UTC(2026, 10, 24, 11, 0, 0);
      // 10:45: the hour's two messages are spent.
      for (const u of ['h1', 'h2']) expect((await l1.decide(ask(u), HOUR_END - 900_000)).allowed).toBe(true);
      /** A queued head, replayed as the processor does at `at`. */
      const replay = async (userId: string, tier: 'pro' | 'enterprise', enqueuedAt: number, at: number) => {
        const requestId = `q-${userId}`;
        const deadline = enqueuedAt + 900_000;
        await l2
          .enqueue(
            {
              userId,
              requestId,
              connectionId: 'c',
              contentKey: 'k',
              claimTier: tier,
              estimatedInputTokens: 10,
              enqueuedAtEpochMs: enqueuedAt,
              expiresAtEpochMs: deadline,
            },
            10,
            enqueuedAt,
          )
          .catch(() => undefined);
        return l2.decide(
          ask(userId, {
            requestId,
            claimTier: tier,
            queue: {
              mode: 'replay',
              leaseUntilEpochMs: at + 60_000,
              enqueuedAtEpochMs: enqueuedAt,
              deadlineEpochMs: deadline,
            },
          }),
          at,
        );
      };
      // 10:50 and 10:51: an enterprise and a pro request are held until 11:00 and wait in line,
      // their wake-ups deferred to the window's start (as the processor does).
      const waiting = [
        { userId: 'ent', tier: 'enterprise' as const, at: HOUR_END - 600_000 },
        { userId: 'pro', tier: 'pro' as const, at: HOUR_END - 540_000 },
      ];
      for (const w of waiting) {
        const held = await replay(w.userId, w.tier, w.at, w.at);
        expect(held).toMatchObject({ allowed: false, limit: 'global.hourlyMessages' });
        if (held.allowed) return;
        expect(w.at + held.retryAfterMs).toBe(HOUR_END);
        await l2.joinGlobalLine({
          userId: w.userId,
          tier: w.tier,
          enqueuedAtEpochMs: w.at,
          deadlineEpochMs: w.at + 900_000,
          wakeUp: `h-${w.userId}`,
          seenAtEpochMs: w.at,
          wakeAtEpochMs: w.at + held.retryAfterMs,
          limit: 'hourlyMessages',
        });
      }
      // 11:00:00.2: a free direct request does not overtake them; it is told to look again in a second.
      const direct = await l3.decide(ask('free-direct'), HOUR_END + 200);
      expect(direct).toMatchObject({ allowed: false, limit: 'global.hourlyMessages', retryAfterMs: 1000 });
      // The pro one's wake-up comes first: not its turn yet, and it waits a second, not an hour.
      const pro = await replay('pro', 'pro', HOUR_END - 540_000, HOUR_END + 400);
      expect(pro).toMatchObject({ allowed: false, retryAfterMs: 1000 });
      // The enterprise one goes, then the pro one; then the hour is full for the direct one.
      expect((await replay('ent', 'enterprise', HOUR_END - 600_000, HOUR_END + 600)).allowed).toBe(true);
      expect((await replay('pro', 'pro', HOUR_END - 540_000, HOUR_END + 5400)).allowed).toBe(true);
      expect(await l3.decide(ask('free-direct'), HOUR_END + 6000)).toMatchObject({
        allowed: false,
        limit: 'global.hourlyMessages',
        retryAfterMs: HOUR_MS - 6000,
      });
    }, 30_000);
  });
}

onEveryEmulator(describeGlobalContract);
