import { randomUUID } from 'node:crypto';
import { GetItemCommand } from '@aws-sdk/client-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { DynamoLimiter } from '../../lambda/adapters/dynamo-limiter';
import { parseTierLimits } from '../../lambda/core/limiter/policy';
import type { AllowedDecision, Decision } from '../../lambda/core/limiter/types';
import { localDynamoClient, localSqsClient } from '../../local/aws-clients';
import { createLocalResources } from '../../local/resources';
import { countCalls } from '../support/call-counter';
import { type DynamoDbLocal, isJavaAvailable, startDynamoDbLocal } from '../support/dynamodb-local';

const NOW = Date.UTC(2026, 10, 24, 10, 0, 0);
const tiers = parseTierLimits({ tiers: { pro: { dailyTokens: 10_000, defaultMaxOutputTokens: 500 } } });

/**
 * The limiter's contract, run on every DynamoDB we have: dynalite always, AWS's DynamoDB Local
 * when Java is installed.
 */
function describeLimiterContract(backend: string, endpoint: () => string) {
  describe(`DynamoLimiter on ${backend}`, () => {
    let tableName: string;
    const limiter = (options: Partial<ConstructorParameters<typeof DynamoLimiter>[0]> = {}) =>
      // A generous timeout: 300 writers at once queue up inside an emulator, and a timeout would
      // (correctly) fail open, which is not what these tests are about.
      new DynamoLimiter({
        client: localDynamoClient(endpoint()),
        tableName,
        tiers,
        timeoutMs: 30_000,
        ...options,
      });
    const ask = (userId: string, over: Partial<Parameters<DynamoLimiter['decide']>[0]> = {}) => ({
      userId,
      requestId: randomUUID(),
      estimatedInputTokens: 10,
      ...over,
    });

    beforeAll(async () => {
      const resources = await createLocalResources(
        localDynamoClient(endpoint()),
        localSqsClient(inject('sqsEndpoint')),
        `limiter-${randomUUID().slice(0, 8)}`,
      );
      tableName = resources.tables.limits;
    });

    it('admits exactly 25 of 300 parallel decisions for one fresh user', async () => {
      const user = `u-${randomUUID()}`;
      // Several instances with cold caches, as several Lambda instances would be.
      const instances = Array.from({ length: 6 }, () => limiter());
      const decisions = await Promise.all(
        Array.from({ length: 300 }, (_, i) => instances[i % instances.length]!.decide(ask(user), NOW)),
      );
      expect(decisions.filter((d) => d.allowed && d.failedOpen)).toHaveLength(0);
      expect(decisions.filter((d) => d.allowed)).toHaveLength(25);
      const refused = decisions.find((d): d is Extract<Decision, { allowed: false }> => !d.allowed);
      expect(refused?.limit).toBe('messageRate');
      expect(refused?.retryAfterMs).toBe(3000);
    }, 30_000);

    it('never overdraws a 10,000-token budget under 100 parallel reservations', async () => {
      const user = `u-${randomUUID()}`;
      const instances = Array.from({ length: 4 }, () => limiter());
      const decisions = await Promise.all(
        Array.from({ length: 100 }, (_, i) =>
          instances[i % 4]!.decide(
            ask(user, { claimTier: 'pro', estimatedInputTokens: 100, maxTokens: 400 }),
            NOW + i,
          ),
        ),
      );
      const admitted = decisions.filter((d): d is AllowedDecision => d.allowed);
      const reserved = admitted.reduce((sum, d) => sum + d.reservation.reservedTokens, 0);
      expect(reserved).toBeLessThanOrEqual(10_000);
      expect(admitted.length).toBe(20);
      const status = await limiter().status(user, 'pro', NOW + 200);
      expect(status.limits.find((l) => l.name === 'dailyTokens')?.used).toBe(reserved);
    }, 30_000);

    it('creates a fresh user item with the first decision, in one call', async () => {
      const client = localDynamoClient(endpoint());
      const calls = countCalls(client);
      const user = `u-${randomUUID()}`;
      const decision = await new DynamoLimiter({ client, tableName, tiers }).decide(ask(user), NOW);
      expect(decision.allowed).toBe(true);
      expect(calls.total()).toBe(1);
      const { Item } = await client.send(
        new GetItemCommand({ TableName: tableName, Key: { pk: { S: `user#${user}` } } }),
      );
      expect(unmarshall(Item!)).toMatchObject({ tat: NOW + 3000, tu: expect.any(Number) });
    });

    it('makes one call per decision in the steady state, admitted or refused', async () => {
      const client = localDynamoClient(endpoint());
      const l = new DynamoLimiter({ client, tableName, tiers });
      const user = `u-${randomUUID()}`;
      await l.decide(ask(user), NOW);
      const calls = countCalls(client);
      for (let i = 1; i <= 40; i++) await l.decide(ask(user), NOW + i * 100);
      // Admitted: the write. Refused: the read that confirms the cached state. One call either way.
      expect(calls.total()).toBe(40);
    });

    it('refunds unused tokens on reconcile, once', async () => {
      const l = limiter();
      const user = `u-${randomUUID()}`;
      const decision = (await l.decide(ask(user, { maxTokens: 1000 }), NOW)) as AllowedDecision;
      expect(decision.reservation.reservedTokens).toBe(1010);
      expect(
        await l.reconcile(decision.reservation, { inputTokens: 12, outputTokens: 88 }, NOW + 10),
      ).toEqual({ applied: true });
      expect(
        await l.reconcile(decision.reservation, { inputTokens: 12, outputTokens: 88 }, NOW + 20),
      ).toEqual({ applied: false });
      const status = await l.status(user, undefined, NOW + 30);
      expect(status.limits.find((l) => l.name === 'dailyTokens')?.used).toBe(100);
    });

    it('caps the output allowance at what is left and refuses below the minimum', async () => {
      const l = limiter();
      const user = `u-${randomUUID()}`;
      await l.setOverride(user, { limits: { dailyTokens: 120 } });
      const first = (await l.decide(ask(user, { maxTokens: 1000 }), NOW)) as AllowedDecision;
      expect(first.reservation).toMatchObject({ inputTokens: 10, outputAllowance: 110, reservedTokens: 120 });
      const second = await l.decide(ask(user), NOW + 5000);
      expect(second).toMatchObject({ allowed: false, limit: 'dailyTokens' });
      expect(second.allowed === false && second.retryAfterMs).toBe(Date.UTC(2026, 10, 25) - NOW - 5000);
    });

    it('applies an admin override on the next decision even with a warm cache elsewhere', async () => {
      const warm = limiter();
      const admin = limiter();
      const user = `u-${randomUUID()}`;
      await warm.decide(ask(user), NOW);
      await admin.setOverride(user, { limits: { messagesPerMinute: 1, burst: 0 } });
      const next = await warm.decide(ask(user), NOW + 10);
      expect(next).toMatchObject({ allowed: false, limit: 'messageRate' });
      await admin.clearOverride(user);
      expect((await warm.decide(ask(user), NOW + 20)).allowed).toBe(true);
    });

    it('stops applying an expired override by itself', async () => {
      const l = limiter();
      const user = `u-${randomUUID()}`;
      await l.setOverride(user, {
        limits: { messagesPerMinute: 1, burst: 0 },
        expiresAtEpochMs: NOW + 60_000,
      });
      expect((await l.decide(ask(user), NOW)).allowed).toBe(true);
      expect((await l.decide(ask(user), NOW + 1000)).allowed).toBe(false);
      expect((await l.decide(ask(user), NOW + 61_000)).allowed).toBe(true);
      expect((await l.decide(ask(user), NOW + 61_001)).allowed).toBe(true);
    });

    it('lets the record tier win over the token claim', async () => {
      const l = limiter();
      const user = `u-${randomUUID()}`;
      await l.setTier(user, 'enterprise');
      const status = await l.status(user, 'free', NOW);
      expect(status.tier).toBe('enterprise');
      expect(status.limits.find((x) => x.name === 'messageRate')?.limit).toBe(400);
    });

    it('resets messages or tokens or both, and status consumes nothing', async () => {
      const l = limiter();
      const user = `u-${randomUUID()}`;
      for (let i = 0; i < 25; i++) await l.decide(ask(user), NOW);
      expect((await l.decide(ask(user), NOW)).allowed).toBe(false);
      const before = await l.status(user, undefined, NOW);
      expect(await l.status(user, undefined, NOW)).toEqual(before);
      await l.reset(user, 'messages', NOW);
      expect((await l.decide(ask(user), NOW)).allowed).toBe(true);
      await l.reset(user, 'tokens', NOW);
      const after = await l.status(user, undefined, NOW);
      expect(after.limits.find((x) => x.name === 'dailyTokens')?.used).toBe(0);
      expect(after.limits.find((x) => x.name === 'messageRate')?.used).toBe(1);
    });

    it('keeps queued requests ahead of direct ones and admits a replay only at its place', async () => {
      const l = limiter();
      const user = `u-${randomUUID()}`;
      const slot = await l.enqueue(user, 'q1', '1', 10);
      expect(slot).toMatchObject({ accepted: true, position: 1 });
      expect(await l.decide(ask(user), NOW)).toMatchObject({ allowed: false, limit: 'queue', queued: 1 });
      const replay = await l.decide(ask(user, { requestId: 'q1', queue: { mode: 'replay' } }), NOW);
      expect(replay).toMatchObject({ allowed: true, waiting: [] });
      // A second delivery of the same replay gets the same reservation, not a second admission.
      const again = await limiter().decide(
        ask(user, { requestId: 'q1', queue: { mode: 'replay' } }),
        NOW + 1,
      );
      expect(again.allowed && again.reservation.reservedTokens).toBe(
        replay.allowed && replay.reservation.reservedTokens,
      );
      expect(
        (await l.status(user, undefined, NOW + 2)).limits.find((x) => x.name === 'messageRate')?.used,
      ).toBe(1);
    });

    it('caps the waiting list and removes entries by id', async () => {
      const l = limiter();
      const user = `u-${randomUUID()}`;
      for (const [i, id] of ['a', 'b', 'c'].entries()) await l.enqueue(user, id, String(i + 1), 3);
      expect(await l.enqueue(user, 'd', '4', 3)).toEqual({ accepted: false, queued: 3 });
      expect(await l.removeQueued(user, 'b')).toEqual({ removed: true, queued: ['a', 'c'] });
      expect(await l.removeQueued(user, 'b')).toEqual({ removed: false, queued: ['a', 'c'] });
    });

    it('orders the waiting list by SQS sequence number, whatever order the writes land in', async () => {
      const l = limiter();
      const user = `u-${randomUUID()}`;
      expect(await l.enqueue(user, 'second', '00000000000000000012', 10)).toMatchObject({ position: 1 });
      expect(await l.enqueue(user, 'first', '00000000000000000009', 10)).toMatchObject({
        position: 1,
        queued: ['first', 'second'],
      });
      const both = await Promise.all([
        l.enqueue(user, 'fourth', '00000000000000000040', 10),
        limiter().enqueue(user, 'third', '00000000000000000030', 10),
      ]);
      expect(both.every((b) => b.accepted)).toBe(true);
      expect((await l.status(user, undefined, NOW)).queued).toEqual(['first', 'second', 'third', 'fourth']);
    });

    it('limits connection attempts per address', async () => {
      const l = limiter();
      const ip = `10.0.${Math.floor(Math.random() * 255)}.${Math.floor(Math.random() * 255)}`;
      const results = [];
      for (let i = 0; i < 6; i++) results.push(await l.consumeConnectAttempt(ip, 5, NOW));
      expect(results.map((r) => r.allowed)).toEqual([true, true, true, true, true, false]);
      expect(results[5]?.retryAfterMs).toBe(12_000);
    });

    it('fails open by default and closed when configured, when the store is unreachable', async () => {
      const broken = (failPolicy: 'open' | 'closed') =>
        new DynamoLimiter({
          client: localDynamoClient('http://127.0.0.1:9'),
          tableName,
          tiers,
          failPolicy,
          timeoutMs: 300,
        });
      const open = await broken('open').decide(ask('someone'), NOW);
      expect(open).toMatchObject({ allowed: true, failedOpen: true });
      const closed = await broken('closed').decide(ask('someone'), NOW);
      expect(closed).toMatchObject({ allowed: false, limit: 'unavailable' });
    });
  });
}

describeLimiterContract('dynalite', () => inject('dynamodbEndpoint'));

let dynamoDbLocal: DynamoDbLocal | undefined;
describe.skipIf(!isJavaAvailable())('with DynamoDB Local (needs java on PATH)', () => {
  beforeAll(async () => {
    dynamoDbLocal = await startDynamoDbLocal();
  }, 60_000);
  afterAll(async () => {
    await dynamoDbLocal?.stop();
  });
  describeLimiterContract('DynamoDB Local', () => dynamoDbLocal!.endpoint);
});
