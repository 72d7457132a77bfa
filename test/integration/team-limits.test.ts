import { randomUUID } from 'node:crypto';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { DynamoLimiter, LimiterOutcomeUnknownError } from '../../lambda/adapters/dynamo-limiter';
import { ORPHAN_MARGIN_MS } from '../../lambda/adapters/limiter/global-counters';
import type {
  AllowedDecision,
  DecideInput,
  Decision,
  DeniedDecision,
} from '../../lambda/core/limiter/decision';
import { parseLimitsConfig } from '../../lambda/core/limiter/policy';
import { LOCAL_CREDENTIALS, LOCAL_REGION, localSqsClient } from '../../local/aws-clients';
import { createLocalResources } from '../../local/resources';
import { countCalls } from '../support/call-counter';
import { type DynamoProxy, startDynamoProxy } from '../support/dynamo-proxy';
import { onEveryEmulator } from '../support/dynamodb-local';

const NOW = Date.UTC(2026, 10, 24, 10, 0, 0);
/** Users' own limits out of the way (one message a millisecond): only the team's bind. */
const OPEN_TIERS = {
  free: { messagesPerMinute: 60_000, burst: 0, dailyTokens: 100_000_000 },
  pro: { messagesPerMinute: 60_000, burst: 0, dailyTokens: 100_000_000 },
  enterprise: { messagesPerMinute: 60_000, burst: 0, dailyTokens: 100_000_000 },
};
/** Past the lease (60 s here) and the sweep's margin: nothing else will give a share back now. */
const AFTER_LEASE = NOW + 60_000 + ORPHAN_MARGIN_MS + 1;

/** As the limiter's client is in service: one attempt per call (the limiter retries itself). */
const limiterClient = (endpoint: string) =>
  new DynamoDBClient({ endpoint, region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS, maxAttempts: 1 });
const admitted = (ds: Decision[]) => ds.filter((d): d is AllowedDecision => d.allowed);
const refused = (ds: Decision[]) => ds.filter((d): d is DeniedDecision => !d.allowed);

function describeTeams(backend: string, endpoint: () => string) {
  describe(`team limits on ${backend}`, () => {
    let proxy: DynamoProxy;
    beforeAll(async () => {
      proxy = await startDynamoProxy(endpoint());
    });
    afterAll(async () => {
      await proxy.stop();
    });

    /** A fresh table and `n` limiter instances on it (through the fault proxy), with these limits. */
    async function instances(limits: object, n = 6, timeoutMs = 30_000, clients: DynamoDBClient[] = []) {
      const { tables } = await createLocalResources(
        limiterClient(endpoint()),
        localSqsClient(inject('sqsEndpoint')),
        `team-${randomUUID().slice(0, 8)}`,
      );
      const config = parseLimitsConfig({ tiers: OPEN_TIERS, ...limits });
      const make = () =>
        new DynamoLimiter({
          client: clients[0] ?? limiterClient(proxy.endpoint),
          tableName: tables.limits,
          tiers: config.tiers,
          global: config.global,
          teams: config.teams,
          teamDefaults: config.teamDefaults,
          timeoutMs,
          inFlightLeaseMs: 60_000,
          // The line's view is trusted for the test (its reads are counted once, not per second).
          globalWaitersTtlMs: 600_000,
        });
      return Array.from({ length: n }, make);
    }
    const ask = (userId: string, over: Partial<DecideInput> = {}): DecideInput => ({
      userId,
      requestId: randomUUID(),
      estimatedInputTokens: 10,
      maxTokens: 90,
      ...over,
    });
    /** 300 decisions at once over the 4 members of team `T` and every instance. */
    const burst = (limiters: DynamoLimiter[], at = NOW, team = 'T', n = 300) =>
      Promise.all(
        Array.from({ length: n }, (_, i) =>
          limiters[i % limiters.length]!.decide(ask(`${team}-u${i % 4}`, { claimTeam: team }), at),
        ),
      );
    /** The team's totals by limit, as `admin team-usage` gives them. */
    const teamUsed = async (limiter: DynamoLimiter, team: string, at = NOW) =>
      Object.fromEntries((await limiter.teamUsage(team, at)).limits.map((l) => [l.name, l.used]));
    /** Messages counted on the user's own item. */
    const ownMessages = async (limiter: DynamoLimiter, userId: string) =>
      (await limiter.status(userId, undefined, NOW)).limits.find((l) => l.name === 'messageRate')?.used ?? 0;

    it('admits exactly 2 of 300 from a team of 4 with 2 in flight, charges the refused nothing, and a settle frees one', async () => {
      const limiters = await instances({ teams: { T: { requestsInFlight: 2 } } });
      // Counts the writes to the index of teams seen (the rule never faults anything).
      let indexWrites = 0;
      proxy.inject(
        (operation, body) => {
          if (operation === 'UpdateItem' && body.includes('"teams#index"')) indexWrites++;
          return false;
        },
        { kind: 'throttle' },
      );
      const decisions = await burst(limiters);
      proxy.clear();
      // One per instance that met the team, not one per decision.
      expect(indexWrites).toBe(6);
      expect(admitted(decisions)).toHaveLength(2);
      expect(refused(decisions)).toHaveLength(298);
      for (const d of refused(decisions))
        expect(d).toMatchObject({ limit: 'team.requestsInFlight', team: 'T' });
      // Users' own counters: only the 2 admissions moved them (a team refusal charges nothing).
      const own = await Promise.all([0, 1, 2, 3].map((u) => ownMessages(limiters[0]!, `T-u${u}`)));
      expect(own.reduce((a, b) => a + b, 0)).toBe(2);
      expect(await teamUsed(limiters[0]!, 'T')).toEqual({ 'team.requestsInFlight': 2 });
      const status = await limiters[1]!.status('T-u0', undefined, NOW, { claimTeam: 'T' });
      expect(status.team).toMatchObject({ name: 'T', source: 'token' });
      expect(status.team?.limits).toEqual([
        expect.objectContaining({ name: 'team.requestsInFlight', used: 2 }),
      ]);
      // One reply ends: exactly one of the next 300 gets in.
      const [first] = admitted(decisions);
      await limiters[2]!.reconcile(first!.reservation, { inputTokens: 10, outputTokens: 5 }, NOW + 1);
      expect(await teamUsed(limiters[0]!, 'T', NOW + 2)).toEqual({ 'team.requestsInFlight': 1 });
      expect(admitted(await burst(limiters, NOW + 2))).toHaveLength(1);
    }, 120_000);

    it('costs a team member one more write per decision than the user alone: 2 UpdateItems, no read', async () => {
      const client = limiterClient(proxy.endpoint);
      const counter = countCalls(client);
      const [limiter] = await instances({ teams: { T: { hourlyMessages: 1000, shards: 1 } } }, 1, 30_000, [
        client,
      ]);
      // Warm: the team's index entry (once per instance), the line's view, the shard's belief.
      await limiter!.decide(ask('w', { claimTeam: 'T' }), NOW);
      counter.reset();
      for (let i = 0; i < 10; i++) {
        expect((await limiter!.decide(ask(`m${i}`, { claimTeam: 'T' }), NOW + i)).allowed).toBe(true);
      }
      expect(counter.byCommand()).toEqual({ UpdateItemCommand: 20 });
      // A user in no team: the one write, as without teams.
      counter.reset();
      await limiter!.decide(ask('solo'), NOW + 20);
      expect(counter.byCommand()).toEqual({ UpdateItemCommand: 1 });
    }, 60_000);

    it('admits exactly the team hourly messages, and exactly the team daily tokens, under a burst', async () => {
      const hourly = await instances({ teams: { T: { hourlyMessages: 7 } } });
      const byHour = await burst(hourly);
      expect(admitted(byHour)).toHaveLength(7);
      expect(refused(byHour)[0]).toMatchObject({ limit: 'team.hourlyMessages', retryAfterMs: 3_600_000 });
      expect(await teamUsed(hourly[0]!, 'T')).toEqual({ 'team.hourlyMessages': 7 });
      // 100 tokens a request (10 in, 90 allowance), 4 shards of 200: exactly 8.
      const daily = await instances({ teamDefaults: { dailyTokens: 800 } });
      const byDay = await burst(daily, NOW, 'D');
      expect(admitted(byDay)).toHaveLength(8);
      expect(refused(byDay)[0]).toMatchObject({ limit: 'team.dailyTokens', team: 'D' });
      expect(await teamUsed(daily[0]!, 'D')).toEqual({ 'team.dailyTokens': 800 });
    }, 120_000);

    it("does not let team A's waiters or full limit hold back team B, nor a user in no team", async () => {
      const [limiter] = await instances({ teamDefaults: { requestsInFlight: 1 } }, 1);
      expect((await limiter!.decide(ask('a1', { claimTeam: 'A' }), NOW)).allowed).toBe(true);
      // A member of A waits in the line for A's capacity.
      await limiter!.joinGlobalLine({
        userId: 'a2',
        tier: 'enterprise',
        enqueuedAtEpochMs: NOW - 1000,
        deadlineEpochMs: NOW + 600_000,
        seenAtEpochMs: NOW,
        limit: 'requestsInFlight',
        scope: 'team:A',
      });
      const a3 = await limiter!.decide(ask('a3', { claimTeam: 'A' }), NOW + 1);
      expect(a3).toMatchObject({ allowed: false, limit: 'team.requestsInFlight', team: 'A' });
      expect((await limiter!.decide(ask('b1', { claimTeam: 'B' }), NOW + 2)).allowed).toBe(true);
      expect((await limiter!.decide(ask('nobody'), NOW + 3)).allowed).toBe(true);
      expect(await teamUsed(limiter!, 'A')).toEqual({ 'team.requestsInFlight': 1 });
      expect(await teamUsed(limiter!, 'B')).toEqual({ 'team.requestsInFlight': 1 });
    }, 60_000);

    it("counts a user in its record's team, not the token's claim; --clear gives the claim back", async () => {
      const [limiter] = await instances({ teamDefaults: { hourlyMessages: 10 } }, 1);
      await limiter!.setTeam('u1', 'R');
      const d = await limiter!.decide(ask('u1', { claimTeam: 'C' }), NOW);
      expect(d.allowed && d.reservation.team?.name).toBe('R');
      expect(await teamUsed(limiter!, 'R')).toEqual({ 'team.hourlyMessages': 1 });
      expect(await teamUsed(limiter!, 'C')).toEqual({ 'team.hourlyMessages': 0 });
      expect((await limiter!.status('u1', undefined, NOW, { claimTeam: 'C' })).team).toMatchObject({
        name: 'R',
        source: 'record',
      });
      await limiter!.setTeam('u1', null);
      await limiter!.decide(ask('u1', { claimTeam: 'C' }), NOW + 1);
      expect(await teamUsed(limiter!, 'C')).toEqual({ 'team.hourlyMessages': 1 });
      await expect(limiter!.setTeam('u1', 'no spaces')).rejects.toThrow(/not a team name/);
    }, 60_000);

    it("without a token (admin usage), the team in effect is the last admitted token's claim, then the record", async () => {
      const [limiter] = await instances({ teamDefaults: { hourlyMessages: 10 } }, 1);
      const usage = async () =>
        (await limiter!.status('u1', undefined, NOW + 10, { claimFromLastToken: true })).team;
      expect(await usage()).toBeUndefined();
      await limiter!.decide(ask('u1', { claimTeam: 'C' }), NOW);
      expect(await usage()).toEqual({
        name: 'C',
        source: 'last token',
        limits: [expect.objectContaining({ name: 'team.hourlyMessages', used: 1, limit: 10 })],
      });
      // A token with no team claim, admitted: the last token claimed none.
      await limiter!.decide(ask('u1'), NOW + 1);
      expect(await usage()).toBeUndefined();
      await limiter!.decide(ask('u1', { claimTeam: 'C' }), NOW + 2);
      await limiter!.setTeam('u1', 'R');
      expect(await usage()).toMatchObject({ name: 'R', source: 'record' });
      // With a token, its own claim is the one in effect, as before.
      await limiter!.setTeam('u1', null);
      expect((await limiter!.status('u1', undefined, NOW + 10, { claimTeam: 'D' })).team).toMatchObject({
        name: 'D',
        source: 'token',
      });
    }, 60_000);

    it("lists only the team's members in top --team and team-usage, from the team its settles recorded", async () => {
      const [limiter] = await instances({ teamDefaults: { dailyTokens: 100_000 } }, 1);
      const settle = async (userId: string, claimTeam: string | undefined, outputTokens: number) => {
        const d = await limiter!.decide(ask(userId, claimTeam ? { claimTeam } : {}), NOW);
        if (!d.allowed) throw new Error(`refused: ${d.limit}`);
        await limiter!.reconcile(d.reservation, { inputTokens: 10, outputTokens }, NOW + 1);
      };
      await settle('m1', 'T', 30);
      await settle('m2', 'T', 50);
      await settle('outsider', undefined, 90);
      await settle('other', 'U', 70);
      const top = await limiter!.top('tokens', 10, NOW + 2, 'T');
      expect(top.users.map((u) => [u.userId, u.tokens])).toEqual([
        ['m2', 60],
        ['m1', 40],
      ]);
      expect(await limiter!.teamUsage('T', NOW + 2, { members: true })).toMatchObject({
        team: 'T',
        limits: [expect.objectContaining({ name: 'team.dailyTokens', used: 100, limit: 100_000 })],
        members: [expect.objectContaining({ userId: 'm2' }), expect.objectContaining({ userId: 'm1' })],
      });
      // A member who leaves the team: its next settle records none.
      await settle('m1', undefined, 10);
      expect((await limiter!.top('tokens', 10, NOW + 3, 'T')).users.map((u) => u.userId)).toEqual(['m2']);
    }, 60_000);

    it("gives back the team share of a reservation rebuilt without it, found on the record's team's shards", async () => {
      // The second instance has never seen the user (a reply runner elsewhere).
      const [limiter, other] = await instances(
        { teams: { R: { requestsInFlight: 3, dailyTokens: 1_000 } } },
        2,
      );
      await limiter!.setTeam('r1', 'R');
      const d = await limiter!.decide(ask('r1'), NOW);
      if (!d.allowed) throw new Error(`refused: ${d.limit}`);
      expect(d.reservation.team?.share).toBeDefined();
      expect(await teamUsed(limiter!, 'R')).toEqual({ 'team.requestsInFlight': 1, 'team.dailyTokens': 100 });
      const { team: _, ...rebuilt } = d.reservation;
      await other!.reconcile(rebuilt, { inputTokens: 10, outputTokens: 20 }, NOW + 1);
      expect(await teamUsed(limiter!, 'R', NOW + 2)).toEqual({
        'team.requestsInFlight': 0,
        'team.dailyTokens': 30,
      });
    }, 60_000);

    /**
     * Drops the answer of the next UpdateItem whose body contains `marker` (once): the write lands
     * and the caller's timeout is all it sees.
     */
    const loseNextAnswer = (marker: string) => {
      let armed = true;
      proxy.inject(
        (operation, body) => {
          if (!armed || operation !== 'UpdateItem' || !body.includes(marker)) return false;
          armed = false;
          return true;
        },
        { kind: 'lose-answer' },
      );
    };

    it('takes a team share once when the shard write loses its answer, and gives it back once', async () => {
      const [limiter] = await instances(
        { teams: { L: { requestsInFlight: 4, hourlyMessages: 100, dailyTokens: 10_000, shards: 2 } } },
        1,
        1000,
      );
      loseNextAnswer('"team#L#');
      const decision = await limiter!.decide(ask('l1', { claimTeam: 'L' }), NOW);
      proxy.clear();
      if (!decision.allowed) throw new Error(`refused: ${decision.limit}`);
      expect(decision.reservation.team?.share).toBeDefined();
      expect(await teamUsed(limiter!, 'L')).toEqual({
        'team.requestsInFlight': 1,
        'team.hourlyMessages': 1,
        'team.dailyTokens': 100,
      });
      // The release's answer is lost too: applied once (80 back, not 160).
      loseNextAnswer('"team#L#');
      await limiter!.reconcile(decision.reservation, { inputTokens: 10, outputTokens: 10 }, NOW + 1);
      proxy.clear();
      await limiter!.reconcile(decision.reservation, { inputTokens: 0, outputTokens: 0 }, NOW + 2);
      expect(await teamUsed(limiter!, 'L', NOW + 3)).toEqual({
        'team.requestsInFlight': 0,
        'team.hourlyMessages': 1,
        'team.dailyTokens': 20,
      });
    }, 60_000);

    it('gives back, once, a team share its decision could neither make its own nor undo', async () => {
      // The second instance stands for the sweep's Lambda: it never decided for team O.
      const [limiter, sweep] = await instances(
        { teamDefaults: { hourlyMessages: 100, dailyTokens: 10_000, shards: 1 } },
        2,
        1000,
      );
      // The team shard's write lands and is answered; every call after it is throttled.
      let landed = false;
      proxy.inject(
        (operation, body) => {
          if (landed) return true;
          if (operation === 'UpdateItem' && body.includes('"team#O#0"')) landed = true;
          return false;
        },
        { kind: 'throttle' },
      );
      await expect(limiter!.decide(ask('o1', { claimTeam: 'O' }), NOW)).rejects.toBeInstanceOf(
        LimiterOutcomeUnknownError,
      );
      proxy.clear();
      expect(landed).toBe(true);
      expect(await teamUsed(limiter!, 'O')).toEqual({ 'team.hourlyMessages': 1, 'team.dailyTokens': 100 });
      // The sweep's instance knows team O from the index of teams seen (not from the configuration).
      expect((await sweep!.releaseOrphanedGlobalShares(NOW + 60_000)).released).toEqual([]);
      const first = await sweep!.releaseOrphanedGlobalShares(AFTER_LEASE);
      expect(first.released.map((r) => r.userId)).toEqual(['o1']);
      expect(await teamUsed(sweep!, 'O', AFTER_LEASE)).toEqual({
        'team.hourlyMessages': 0,
        'team.dailyTokens': 0,
      });
      expect((await sweep!.releaseOrphanedGlobalShares(AFTER_LEASE + 60_000)).released).toEqual([]);
    }, 60_000);
  });
}

onEveryEmulator(describeTeams);
