import { randomUUID } from 'node:crypto';
import { GetItemCommand, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  DynamoLimiter,
  LimiterBusyError,
  LimiterOutcomeUnknownError,
} from '../../lambda/adapters/dynamo-limiter';
import type { AllowedDecision, Decision } from '../../lambda/core/limiter/decision';
import { LIMIT_KINDS, type RegisteredKind } from '../../lambda/core/limiter/kinds/registry';
import { parseTierLimits } from '../../lambda/core/limiter/policy';
import { ECHO_MODEL } from '../../lambda/core/models';
import { localDynamoClient, localSqsClient } from '../../local/aws-clients';
import { createLocalResources } from '../../local/resources';
import { countCalls } from '../support/call-counter';
import { type DynamoFault, type DynamoProxy, startDynamoProxy } from '../support/dynamo-proxy';
import { onEveryEmulator } from '../support/dynamodb-local';
import { bare } from '../support/settle-outcome';

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
      const settled = await l.reconcile(
        decision.reservation,
        { inputTokens: 12, outputTokens: 88 },
        NOW + 10,
      );
      expect(bare(settled)).toEqual({ applied: true });
      // The limits the settle's own write left (its answer, ReturnValues ALL_NEW), exactly as a
      // status at the same instant gives them (SPEC §9.3).
      const atSettle = await l.status(user, undefined, NOW + 10);
      expect(settled.limitsAfter).toEqual({
        policy: atSettle.policy,
        limits: atSettle.limits,
        atMs: NOW + 10,
      });
      expect(settled.limitsAfter?.limits.find((x) => x.name === 'dailyTokens')?.used).toBe(100);
      expect(
        await l.reconcile(decision.reservation, { inputTokens: 12, outputTokens: 88 }, NOW + 20).then(bare),
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

    const waitingRequest = (userId: string, requestId: string) => ({
      userId,
      requestId,
      connectionId: 'conn-1',
      contentKey: `k-${requestId}`,
      estimatedInputTokens: 10,
      enqueuedAtEpochMs: NOW,
      expiresAtEpochMs: NOW + 960_000,
    });
    const replay = (leaseUntilEpochMs = NOW + 110_000) => ({ mode: 'replay' as const, leaseUntilEpochMs });

    it('keeps queued requests ahead of direct ones and admits a replay only at the head', async () => {
      const l = limiter();
      const user = `u-${randomUUID()}`;
      expect(await l.enqueue(waitingRequest(user, 'q1'), 10, NOW)).toMatchObject({
        kind: 'queued',
        position: 1,
      });
      expect(await l.enqueue(waitingRequest(user, 'q2'), 10, NOW)).toMatchObject({
        kind: 'queued',
        position: 2,
      });
      expect(await l.decide(ask(user), NOW)).toMatchObject({ allowed: false, limit: 'queue', queued: 2 });
      // Not the head: refused as `queue`, nothing moves.
      expect(await l.decide(ask(user, { requestId: 'q2', queue: replay() }), NOW)).toMatchObject({
        allowed: false,
        limit: 'queue',
      });
      const first = await l.decide(ask(user, { requestId: 'q1', queue: replay() }), NOW);
      expect(first).toMatchObject({ allowed: true, waiting: ['q2'] });
      // A second delivery of the same replay admits nothing: q1 is active, served by its lease.
      expect(await limiter().decide(ask(user, { requestId: 'q1', queue: replay() }), NOW + 1)).toMatchObject({
        allowed: false,
        limit: 'queue',
      });
      // While q1 is being answered, the next head waits for it.
      expect(await l.decide(ask(user, { requestId: 'q2', queue: replay() }), NOW + 2)).toMatchObject({
        allowed: false,
        limit: 'queue',
      });
      const view = await l.view(user, undefined, NOW + 2);
      expect(view.snap.active).toMatchObject({ requestId: 'q1', attempts: 1 });
      expect(view.limits.find((x) => x.name === 'messageRate')?.used).toBe(1);
      // The commit ends it; then q2 may run.
      if (!first.allowed) throw new Error('expected an admission');
      expect(
        await l
          .reconcile(first.reservation, { inputTokens: 10, outputTokens: 5 }, NOW + 3, {
            endsActive: true,
          })
          .then(bare),
      ).toEqual({ applied: true });
      const after = await l.view(user, undefined, NOW + 3);
      expect(after.snap.active).toBeUndefined();
      expect(after.snap.queued.q1).toBeUndefined();
      expect((await l.decide(ask(user, { requestId: 'q2', queue: replay() }), NOW + 4)).allowed).toBe(true);
    });

    it('caps the waiting list in the enqueue write itself, and removes entries by id', async () => {
      const l = limiter();
      const user = `u-${randomUUID()}`;
      for (const id of ['a', 'b', 'c']) await l.enqueue(waitingRequest(user, id), 3, NOW);
      expect(await l.enqueue(waitingRequest(user, 'd'), 3, NOW)).toEqual({ kind: 'full', queued: 3 });
      expect(await l.enqueue(waitingRequest(user, 'a'), 5, NOW)).toEqual({ kind: 'duplicate' });
      expect((await l.removeWaiting(user, 'b')).removed).toBe(true);
      const again = await l.removeWaiting(user, 'b');
      expect(again.removed).toBe(false);
      expect(again.snap.waiting).toEqual(['a', 'c']);
      expect(again.snap.queued.b).toBeUndefined();
    });

    it('never queues more than the cap, at positions 1..n, under 60 parallel enqueues from 4 instances', async () => {
      const user = `u-${randomUUID()}`;
      const instances = Array.from({ length: 4 }, () => limiter());
      const results = await Promise.all(
        Array.from({ length: 60 }, (_, i) =>
          instances[i % 4]!.enqueue(waitingRequest(user, `r${i}`), 10, NOW),
        ),
      );
      const queued = results.filter((r) => r.kind === 'queued');
      expect(queued).toHaveLength(10);
      expect(
        queued.map((r) => r.kind === 'queued' && r.position).sort((a, b) => Number(a) - Number(b)),
      ).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
      expect(results.filter((r) => r.kind === 'full')).toHaveLength(50);
    }, 30_000);

    it('refuses a second direct request with an id still in flight, and refunds nothing after a reset', async () => {
      const l = limiter();
      const user = `u-${randomUUID()}`;
      const first = (await l.decide(
        ask(user, { requestId: 'same', maxTokens: 1000 }),
        NOW,
      )) as AllowedDecision;
      expect(await l.decide(ask(user, { requestId: 'same' }), NOW + 1)).toMatchObject({
        allowed: false,
        limit: 'duplicate',
      });
      await l.reset(user, 'tokens', NOW + 2);
      const second = (await l.decide(ask(user, { maxTokens: 100 }), NOW + 3)) as AllowedDecision;
      // The first reservation was made before the reset: its refund must not come out of the new count.
      expect(
        await l.reconcile(first.reservation, { inputTokens: 10, outputTokens: 0 }, NOW + 4).then(bare),
      ).toEqual({
        applied: true,
      });
      const used = (await l.status(user, undefined, NOW + 5)).limits.find(
        (x) => x.name === 'dailyTokens',
      )?.used;
      expect(used).toBe(second.reservation.reservedTokens);
    });

    it('admits a request id reused after its request ended, though this instance last saw it in flight in the same millisecond (SPEC §3)', async () => {
      const frozen = () => NOW; // every call of both instances is sent in one millisecond
      const front = limiter({ clock: frozen });
      const runner = limiter({ clock: frozen });
      const user = `u-${randomUUID()}`;
      const first = (await front.decide(ask(user, { requestId: 'again' }), NOW)) as AllowedDecision;
      expect(first.allowed).toBe(true);
      // The reply ends on another instance: `front` still believes `again` is in flight.
      expect(
        await runner.reconcile(first.reservation, { inputTokens: 10, outputTokens: 5 }, NOW).then(bare),
      ).toEqual({
        applied: true,
      });
      expect(await front.decide(ask(user, { requestId: 'again' }), NOW)).toMatchObject({ allowed: true });
      // And one still in flight is refused as a duplicate, from the item as it is.
      expect(await front.decide(ask(user, { requestId: 'again' }), NOW)).toMatchObject({
        allowed: false,
        limit: 'duplicate',
      });
    });

    it('settles into the new count after a reset made by another instance (a stale belief is pinned, not trusted)', async () => {
      const runner = limiter(); // decides and later settles: its belief predates the reset
      const admin = limiter();
      const user = `u-${randomUUID()}`;
      const before = (await runner.decide(ask(user, { maxTokens: 1000 }), NOW)) as AllowedDecision;
      await admin.reset(user, 'all', NOW + 1);
      const after = (await runner.decide(ask(user, { maxTokens: 1000 }), NOW + 2)) as AllowedDecision;
      // The request reserved after the reset used 3 tokens: its settle gives back the rest.
      expect(
        await runner.reconcile(after.reservation, { inputTokens: 1, outputTokens: 2 }, NOW + 3).then(bare),
      ).toEqual({
        applied: true,
      });
      // The one reserved before it refunds nothing into the new count.
      expect(
        await runner.reconcile(before.reservation, { inputTokens: 1, outputTokens: 2 }, NOW + 4).then(bare),
      ).toEqual({
        applied: true,
      });
      const used = (await admin.status(user, undefined, NOW + 5)).limits.find(
        (x) => x.name === 'dailyTokens',
      )?.used;
      expect(used).toBe(3);
      // And a settle by an instance that saw nothing at all lands the same way.
      const other = (await admin.decide(ask(user, { maxTokens: 1000 }), NOW + 6)) as AllowedDecision;
      await admin.reset(user, 'tokens', NOW + 7);
      const fresh = (await admin.decide(ask(user, { maxTokens: 500 }), NOW + 8)) as AllowedDecision;
      expect(
        await limiter()
          .reconcile(fresh.reservation, { inputTokens: 10, outputTokens: 5 }, NOW + 9)
          .then(bare),
      ).toEqual({
        applied: true,
      });
      expect(
        await limiter()
          .reconcile(other.reservation, { inputTokens: 10, outputTokens: 5 }, NOW + 10)
          .then(bare),
      ).toEqual({
        applied: true,
      });
      expect(
        (await admin.status(user, undefined, NOW + 11)).limits.find((x) => x.name === 'dailyTokens')?.used,
      ).toBe(15);
    });

    it('never lets 200 parallel reservations past a tokens-per-minute bucket or a monthly budget, and refunds flow back', async () => {
      const user = `u-${randomUUID()}`;
      const tight = parseTierLimits({
        tiers: { free: { tokensPerMinute: 3_000, monthlyTokens: 50_000, messagesPerMinute: 10_000 } },
      });
      const instances = Array.from({ length: 4 }, () => limiter({ tiers: tight }));
      const decisions = await Promise.all(
        Array.from({ length: 200 }, (_, i) =>
          instances[i % 4]!.decide(ask(user, { estimatedInputTokens: 100, maxTokens: 100 }), NOW),
        ),
      );
      const admitted = decisions.filter((d): d is AllowedDecision => d.allowed);
      expect(admitted.reduce((sum, d) => sum + d.reservation.reservedTokens, 0)).toBeLessThanOrEqual(3_000);
      expect(admitted).toHaveLength(15);
      const refused = decisions.find((d) => !d.allowed);
      expect(refused).toMatchObject({ limit: 'tokensPerMinute' });
      const status = await instances[0]!.status(user, undefined, NOW);
      expect(status.limits.find((l) => l.name === 'monthlyTokens')).toMatchObject({
        used: 3_000,
        limit: 50_000,
      });
      // One reply used 20 of its 200: the 180 flow back into both (all of it still ahead of now).
      await instances[1]!.reconcile(admitted[0]!.reservation, { inputTokens: 10, outputTokens: 10 }, NOW);
      const after = await instances[2]!.status(user, undefined, NOW);
      expect(after.limits.find((l) => l.name === 'monthlyTokens')?.used).toBe(2_820);
      expect(after.limits.find((l) => l.name === 'tokensPerMinute')?.remaining).toBe(180);
      expect(
        (await instances[3]!.decide(ask(user, { estimatedInputTokens: 100, maxTokens: 80 }), NOW)).allowed,
      ).toBe(true);
    }, 30_000);

    it('evaluates and reports a shadow limit but never refuses by it, and a full shadow bucket stops counting', async () => {
      const shadowTiers = parseTierLimits({
        tiers: { free: { shadow: ['messageRate'], dailyMessages: 1000 } },
      });
      const user = `u-${randomUUID()}`;
      const instances = Array.from({ length: 3 }, () => limiter({ tiers: shadowTiers }));
      const decisions = await Promise.all(
        Array.from({ length: 40 }, (_, i) => instances[i % 3]!.decide(ask(user), NOW)),
      );
      expect(decisions.every((d) => d.allowed)).toBe(true);
      const exceeded = decisions.filter((d) => d.allowed && d.shadowExceeded?.includes('messageRate'));
      expect(exceeded).toHaveLength(15);
      const status = await instances[0]!.status(user, undefined, NOW);
      // The bucket holds 25 and is full; the daily count (enforced) saw all 40.
      expect(status.limits.find((l) => l.name === 'messageRate')).toMatchObject({ used: 25, remaining: 0 });
      expect(status.limits.find((l) => l.name === 'dailyMessages')?.used).toBe(40);
    }, 30_000);

    const filled = async (k: RegisteredKind) => {
      const l = limiter({ tiers: parseTierLimits({ tiers: { free: k.example.policy } }) });
      const user = `u-${randomUUID()}`;
      const request = () =>
        ask(user, { estimatedInputTokens: k.example.input, maxTokens: k.example.maxTokens });
      const admitted: AllowedDecision[] = [];
      for (let i = 0; i < k.example.fill; i++) {
        const decision = await l.decide(request(), NOW + i);
        expect(decision).toMatchObject({ allowed: true, failedOpen: false });
        admitted.push(decision as AllowedDecision);
      }
      const at = NOW + k.example.fill;
      expect(await l.decide(request(), at)).toMatchObject({ allowed: false, limit: k.name });
      return { l, user, request, admitted, at };
    };

    /**
     * Every registered kind, from its own `example`: a new kind runs here on both emulators with no
     * new test code. Each case fails if the kind does not limit (the refusal must name it).
     */
    describe.each(LIMIT_KINDS.map((kind) => [kind.name, kind] as const))('the %s kind', (_name, kind) => {
      it('refuses once its example is full, and status lists it as used', async () => {
        const { l, user, at } = await filled(kind);
        const listed = (await l.status(user, undefined, at)).limits.find((x) => x.name === kind.name);
        expect(listed?.used).toBeGreaterThan(0);
      });

      it('is cleared by a reset of its scope, unless it holds slots (only their settle frees them)', async () => {
        const { l, user, request, admitted, at } = await filled(kind);
        await l.reset(user, kind.attributes.length > 0 ? kind.resetScope : 'all', at);
        if (kind.attributes.length > 0) {
          expect((await l.decide(request(), at)).allowed).toBe(true);
        } else {
          expect(await l.decide(request(), at)).toMatchObject({ allowed: false, limit: kind.name });
          await l.reconcile(admitted[0]!.reservation, { inputTokens: 10, outputTokens: 5 }, at).then(bare);
          expect((await l.decide(request(), at)).allowed).toBe(true);
        }
      });
    });

    const settled = LIMIT_KINDS.filter((kind) => kind.settle !== undefined || kind.release !== undefined);
    describe.each(settled.map((kind) => [kind.name, kind] as const))(
      'the %s kind, settled',
      (_name, kind) => {
        it('takes back, at the settle, what an admitted request did not use', async () => {
          const { l, request, admitted, at } = await filled(kind);
          await l.reconcile(admitted[0]!.reservation, { inputTokens: 10, outputTokens: 5 }, at).then(bare);
          expect((await l.decide(request(), at)).allowed).toBe(true);
        });
      },
    );

    it('never has more than N requests in flight under 300 parallel decisions; settles and lapsed leases free slots', async () => {
      const user = `u-${randomUUID()}`;
      const inFlightTiers = parseTierLimits({
        tiers: { free: { requestsInFlight: 3, messagesPerMinute: 10_000, burst: 1_000 } },
      });
      const instances = Array.from({ length: 6 }, () =>
        limiter({ tiers: inFlightTiers, inFlightLeaseMs: 60_000 }),
      );
      const decisions = await Promise.all(
        Array.from({ length: 300 }, (_, i) => instances[i % 6]!.decide(ask(user), NOW)),
      );
      const admitted = decisions.filter((d): d is AllowedDecision => d.allowed);
      expect(admitted).toHaveLength(3);
      expect(admitted.every((d) => d.inFlightUntilEpochMs === NOW + 60_000)).toBe(true);
      expect(decisions.find((d) => !d.allowed)).toMatchObject({
        limit: 'requestsInFlight',
        retryAfterMs: 1000,
      });
      const status = await instances[0]!.status(user, undefined, NOW);
      expect(status.limits.find((l) => l.name === 'requestsInFlight')).toMatchObject({
        limit: 3,
        used: 3,
        remaining: 0,
        resetAtEpochMs: NOW + 60_000,
      });

      // A settled reply frees its slot: exactly one of 50 racing requests takes it.
      await instances[1]!.reconcile(admitted[0]!.reservation, { inputTokens: 10, outputTokens: 5 }, NOW + 10);
      const second = await Promise.all(
        Array.from({ length: 50 }, (_, i) => instances[i % 6]!.decide(ask(user), NOW + 20)),
      );
      expect(second.filter((d) => d.allowed)).toHaveLength(1);

      // A runner that never settles holds its slot only until its lease lapses: then all three
      // lapsed slots are taken again, by exactly three of 50.
      const later = NOW + 60_001;
      const third = await Promise.all(
        Array.from({ length: 50 }, (_, i) => instances[i % 6]!.decide(ask(user), later)),
      );
      // The one admitted at NOW + 20 still holds its slot (lease NOW + 60,020).
      expect(third.filter((d) => d.allowed)).toHaveLength(2);
      const after = await instances[0]!.status(user, undefined, later);
      expect(after.limits.find((l) => l.name === 'requestsInFlight')?.used).toBe(3);
    }, 60_000);

    it('rolls the day and the calendar month over at 00:00 UTC, and a settle after it refunds nothing into the new windows', async () => {
      const user = `u-${randomUUID()}`;
      const budgets = parseTierLimits({
        tiers: { free: { monthlyTokens: 1_000, dailyCostUsd: 0.0005, monthlyCostUsd: 0.001 } },
      });
      const instances = Array.from({ length: 3 }, () => limiter({ tiers: budgets }));
      const lastMs = Date.UTC(2026, 0, 31, 23, 59, 59, 900);
      const spend = (at: number) =>
        Promise.all(
          Array.from({ length: 60 }, (_, i) =>
            instances[i % 3]!.decide(ask(user, { estimatedInputTokens: 50, maxTokens: 50 }), at),
          ),
        );
      // 100 tokens each, 50 × $0.2 + 50 × $0.6 per million = 40 µUSD: 10 fit the month's tokens.
      const january = (await spend(lastMs)).filter((d): d is AllowedDecision => d.allowed);
      expect(january).toHaveLength(10);
      const used = async (at: number) =>
        Object.fromEntries(
          (await instances[0]!.status(user, undefined, at)).limits.map((l) => [l.name, l.used]),
        );
      expect(await used(lastMs)).toMatchObject({
        monthlyTokens: 1_000,
        dailyCostUsd: 0.0004,
        monthlyCostUsd: 0.0004,
      });
      // 100 ms later it is February: every window is new.
      const febMs = lastMs + 100;
      expect(await used(febMs)).toMatchObject({ monthlyTokens: 0, dailyCostUsd: 0, monthlyCostUsd: 0 });
      // January's reservations settle in February: nothing flows into February's counts.
      await Promise.all(
        january.map((d, i) =>
          instances[i % 3]!.reconcile(d.reservation, { inputTokens: 1, outputTokens: 1 }, febMs),
        ),
      );
      const february = (await spend(febMs)).filter((d) => d.allowed);
      // Refunds into February would have let more than 10 through.
      expect(february).toHaveLength(10);
      expect(await used(febMs)).toMatchObject({
        monthlyTokens: 1_000,
        dailyCostUsd: 0.0004,
        monthlyCostUsd: 0.0004,
      });
    }, 30_000);

    /** The user's item as stored. */
    const rawItem = async (user: string) => {
      const { Item } = await localDynamoClient(endpoint()).send(
        new GetItemCommand({
          TableName: tableName,
          Key: { pk: { S: `user#${user}` } },
          ConsistentRead: true,
        }),
      );
      return Item ? unmarshall(Item) : undefined;
    };
    const usedOf = async (l: DynamoLimiter, user: string, at: number) =>
      Object.fromEntries((await l.status(user, undefined, at)).limits.map((x) => [x.name, x.used]));

    it('rolls the weekly token budget over at Monday 00:00 UTC, and a settle after it refunds nothing into the new week', async () => {
      const user = `u-${randomUUID()}`;
      // LIMITS_CONFIG as the stack passes it: no tier has a weekly budget unless it is configured.
      const weekly = parseTierLimits('{"tiers":{"free":{"weeklyTokens":1000}}}');
      expect(tiers.free.weeklyTokens).toBeUndefined();
      const instances = Array.from({ length: 3 }, () => limiter({ tiers: weekly }));
      const sunday = Date.UTC(2026, 10, 29, 23, 59, 59, 900);
      const monday = sunday + 100;
      const nextMonday = Date.UTC(2026, 11, 7);
      const spend = (at: number) =>
        Promise.all(
          Array.from({ length: 60 }, (_, i) =>
            instances[i % 3]!.decide(ask(user, { estimatedInputTokens: 50, maxTokens: 50 }), at),
          ),
        );
      const weeklyOf = async (at: number) =>
        (await instances[0]!.status(user, undefined, at)).limits.find((l) => l.name === 'weeklyTokens');
      // 100 tokens each: 10 fit the week.
      const lastWeek = (await spend(sunday)).filter((d): d is AllowedDecision => d.allowed);
      expect(lastWeek).toHaveLength(10);
      expect(await weeklyOf(sunday)).toMatchObject({ used: 1_000, resetAtEpochMs: monday });
      // Each reservation's marker names the week it was counted in.
      const marker = (await rawItem(user))?.[`r_${lastWeek[0]!.reservation.requestId}`];
      expect(marker?.w).toBe(Math.floor((Math.floor(sunday / 86_400_000) + 3) / 7));
      expect(await weeklyOf(monday)).toMatchObject({ used: 0, resetAtEpochMs: nextMonday });
      // Last week's reservations settle this week: nothing flows into this week's count.
      await Promise.all(
        lastWeek.map((d, i) =>
          instances[i % 3]!.reconcile(d.reservation, { inputTokens: 1, outputTokens: 1 }, monday),
        ),
      );
      const thisWeek = await spend(monday);
      expect(thisWeek.filter((d) => d.allowed)).toHaveLength(10);
      expect(thisWeek.find((d) => !d.allowed)).toMatchObject({
        limit: 'weeklyTokens',
        resetAtEpochMs: nextMonday,
      });
      expect(await weeklyOf(monday)).toMatchObject({ used: 1_000 });
    }, 30_000);

    it('settles a queued reply that ran across 00:00 UTC after the new day opened: it ends, frees its slot, refunds into the month only', async () => {
      const user = `u-${randomUUID()}`;
      const budgets = parseTierLimits({ tiers: { free: { monthlyTokens: 100_000, requestsInFlight: 3 } } });
      const processor = limiter({ tiers: budgets, inFlightLeaseMs: 5_000 });
      const other = limiter({ tiers: budgets });
      const eve = Date.UTC(2026, 0, 15, 23, 59, 50);
      const after = Date.UTC(2026, 0, 16, 0, 0, 10);
      // A direct request whose runner crashed: its slot lapses at eve + 5 s, it never settles.
      const crashed = (await processor.decide(ask(user, { requestId: 'crashed' }), eve)) as AllowedDecision;
      expect(crashed.allowed).toBe(true);
      await processor.enqueue({ ...waitingRequest(user, 'late'), expiresAtEpochMs: eve + 60_000 }, 10, eve);
      const started = (await processor.decide(
        ask(user, { requestId: 'late', maxTokens: 1000, queue: replay(eve + 960_000) }),
        eve,
      )) as AllowedDecision;
      expect(started.allowed).toBe(true);
      // The new day's first admission, by another instance, while 'late' still streams.
      const next = (await other.decide(ask(user, { maxTokens: 100 }), after)) as AllowedDecision;
      expect(next.allowed).toBe(true);
      const between = await rawItem(user);
      // The streaming request keeps its marker; the crashed one (slot lapsed, not active) is dropped.
      expect(
        Object.keys(between!)
          .filter((k) => k.startsWith('r_'))
          .sort(),
      ).toEqual([`r_${next.reservation.requestId}`, 'r_late']);
      const settled = await processor
        .reconcile(started.reservation, { inputTokens: 10, outputTokens: 40 }, after + 1_000, {
          endsActive: true,
        })
        .then(bare);
      expect(settled.applied).toBe(true);
      const item = await rawItem(user);
      expect(item?.act).toBeUndefined();
      expect(item?.q_late).toBeUndefined();
      expect(item?.r_late).toBeUndefined();
      expect(Object.keys(item?.fl ?? {})).toEqual([next.reservation.requestId]);
      // Nothing of yesterday's reservation flows into today's count; the month still open gets it.
      expect(await usedOf(other, user, after + 2_000)).toMatchObject({
        dailyTokens: next.reservation.reservedTokens,
        monthlyTokens: crashed.reservation.reservedTokens + 50 + next.reservation.reservedTokens,
      });
    }, 30_000);

    it("refunds into the reservation's own day and month from a belief of the day before, and nowhere once they closed", async () => {
      const user = `u-${randomUUID()}`;
      const budgets = parseTierLimits({
        tiers: { free: { monthlyTokens: 100_000, dailyCostUsd: 1, monthlyCostUsd: 1 } },
      });
      const stale = limiter({ tiers: budgets });
      const fresh = limiter({ tiers: budgets });
      const lastJanuary = Date.UTC(2026, 0, 31, 23, 59, 50);
      const february = Date.UTC(2026, 1, 1, 0, 0, 10);
      // The stale instance last saw the item in January.
      const january = (await stale.decide(ask(user, { maxTokens: 100 }), lastJanuary)) as AllowedDecision;
      const reserved = (await fresh.decide(ask(user, { maxTokens: 1000 }), february)) as AllowedDecision;
      expect(reserved.allowed && january.allowed).toBe(true);
      // The runner on the stale instance settles February's reservation: 10 in, 40 out.
      await stale
        .reconcile(reserved.reservation, { inputTokens: 10, outputTokens: 40 }, february + 5_000)
        .then(bare);
      const cost = Math.ceil(10 * 0.2 + 40 * 0.6) / 1e6;
      const used = await usedOf(fresh, user, february + 6_000);
      expect(used).toMatchObject({ dailyTokens: 50, monthlyTokens: 50 });
      expect(used.dailyCostUsd).toBeCloseTo(cost, 9);
      expect(used.monthlyCostUsd).toBeCloseTo(cost, 9);
      // January's reservation settles in February: its windows closed, nothing flows into these.
      await fresh
        .reconcile(january.reservation, { inputTokens: 1, outputTokens: 1 }, february + 7_000)
        .then(bare);
      expect(await usedOf(stale, user, february + 8_000)).toEqual(used);
    }, 30_000);

    it('gives nothing back to a tokens-per-minute bucket that restarted since the reservation', async () => {
      const user = `u-${randomUUID()}`;
      const bucket = parseTierLimits({
        tiers: { free: { tokensPerMinute: 3_000, messagesPerMinute: 1_000 } },
      });
      const l = limiter({ tiers: bucket });
      const big = { estimatedInputTokens: 10, maxTokens: 990 };
      const first = (await l.decide(ask(user, big), NOW)) as AllowedDecision;
      // 70 s later the bucket is whole; the next reservation restarts it.
      const second = (await l.decide(ask(user, big), NOW + 70_000)) as AllowedDecision;
      expect(first.reservation.reservedTokens + second.reservation.reservedTokens).toBe(2_000);
      // The first reply used 10 of its 1,000: giving 990 back now would hand the new reservation's
      // room out a second time.
      await l.reconcile(first.reservation, { inputTokens: 10, outputTokens: 0 }, NOW + 70_001).then(bare);
      expect((await usedOf(l, user, NOW + 70_001)).tokensPerMinute).toBe(1_000);
      // The latest reservation's own unused part does flow back.
      await l.reconcile(second.reservation, { inputTokens: 10, outputTokens: 0 }, NOW + 70_001).then(bare);
      expect((await usedOf(l, user, NOW + 70_001)).tokensPerMinute).toBe(10);
    });

    it('gives back to a tokens-per-minute bucket at most what of the reservation is still ahead of now', async () => {
      const user = `u-${randomUUID()}`;
      const bucket = parseTierLimits({
        tiers: { free: { tokensPerMinute: 3_000, messagesPerMinute: 1_000 } },
      });
      const l = limiter({ tiers: bucket });
      const big = { estimatedInputTokens: 10, maxTokens: 990 };
      const start = NOW + 600_000;
      // 1,000 tokens at 20 ms each: the first reservation runs the bucket 20 s ahead.
      const first = (await l.decide(ask(user, big), start)) as AllowedDecision;
      expect(first.reservation.bucketAfterEpochMs).toBe(start + 20_000);
      // 15 s later, 750 of them have drained; the next one stacks on the 250 left.
      expect((await l.decide(ask(user, big), start + 15_000)).allowed).toBe(true);
      // The first reply used 10: had that been its reservation, the bucket would have been idle at
      // +15 s and now hold exactly the second reservation. Only the 250 still ahead flow back.
      await l.reconcile(first.reservation, { inputTokens: 10, outputTokens: 0 }, start + 15_000).then(bare);
      expect((await usedOf(l, user, start + 15_000)).tokensPerMinute).toBe(1_000);
    });

    it('keeps refunding cost after a reset of tokens, and tokens after a reset of cost', async () => {
      const user = `u-${randomUUID()}`;
      const budgets = parseTierLimits({ tiers: { free: { dailyCostUsd: 1 } } });
      const [l, admin] = [limiter({ tiers: budgets }), limiter({ tiers: budgets })];
      const cost = Math.ceil(10 * 0.2 + 40 * 0.6) / 1e6;
      const a = (await l.decide(ask(user, { maxTokens: 1000 }), NOW)) as AllowedDecision;
      await admin.reset(user, 'tokens', NOW + 1);
      await l.reconcile(a.reservation, { inputTokens: 10, outputTokens: 40 }, NOW + 2).then(bare);
      let used = await usedOf(admin, user, NOW + 3);
      expect(used.dailyTokens).toBe(0);
      expect(used.dailyCostUsd).toBeCloseTo(cost, 9);
      const b = (await l.decide(ask(user, { maxTokens: 1000 }), NOW + 4)) as AllowedDecision;
      await admin.reset(user, 'cost', NOW + 5);
      await l.reconcile(b.reservation, { inputTokens: 10, outputTokens: 40 }, NOW + 6).then(bare);
      used = await usedOf(admin, user, NOW + 7);
      expect(used.dailyTokens).toBe(50);
      expect(used.dailyCostUsd).toBe(0);
    });

    it('keeps a user item at least until the end of the month its counters count in, whatever write came last', async () => {
      const user = `u-${randomUUID()}`;
      const l = limiter();
      const early = Date.UTC(2026, 0, 3, 10, 0, 0);
      const endOfJanuary = Date.UTC(2026, 1, 1) / 1000;
      expect((await l.decide(ask(user), early)).allowed).toBe(true);
      expect((await rawItem(user))?.ttlEpochSeconds).toBeGreaterThanOrEqual(endOfJanuary);
      // A later enqueue (another kind of write) never lowers it below an open window's end.
      await l.enqueue({ ...waitingRequest(user, 'w'), expiresAtEpochMs: early + 60_000 }, 10, early + 1);
      expect((await rawItem(user))?.ttlEpochSeconds).toBeGreaterThanOrEqual(endOfJanuary);
      // A request admitted in the month's last minute keeps its item past its lease.
      const other = `u-${randomUUID()}`;
      const late = (await l.decide(ask(other), Date.UTC(2026, 0, 31, 23, 59, 0))) as AllowedDecision;
      expect(late.inFlightUntilEpochMs).toBeGreaterThan(endOfJanuary * 1000);
      expect((await rawItem(other))?.ttlEpochSeconds).toBeGreaterThan(late.inFlightUntilEpochMs! / 1000);
    });

    it('ends an active request that can no longer settle (purge-queue, reset), and never one that can', async () => {
      const user = `u-${randomUUID()}`;
      const l = limiter();
      await l.enqueue(waitingRequest(user, 'stuck'), 10, NOW);
      const started = await l.decide(ask(user, { requestId: 'stuck', queue: replay() }), NOW);
      expect(started.allowed).toBe(true);
      // It can still settle: left alone.
      expect(await l.endStuckActive(user)).toBeUndefined();
      expect((await rawItem(user))?.act).toMatchObject({ id: 'stuck' });
      // Its marker gone (as the first admission of a new day used to do): nothing can end it but this.
      await localDynamoClient(endpoint()).send(
        new UpdateItemCommand({
          TableName: tableName,
          Key: { pk: { S: `user#${user}` } },
          UpdateExpression: 'REMOVE r_stuck',
        }),
      );
      expect(await l.endStuckActive(user)).toBe('stuck');
      const item = await rawItem(user);
      expect(item?.act).toBeUndefined();
      expect(item?.q_stuck).toBeUndefined();
      expect(item?.fl?.stuck).toBeUndefined();
      expect(await l.endStuckActive(user)).toBeUndefined();
    });

    describe('when a write lands but its answer is lost', () => {
      let proxy: DynamoProxy;
      beforeAll(async () => {
        proxy = await startDynamoProxy(endpoint());
      });
      afterEach(() => proxy.clear());
      afterAll(async () => {
        await proxy.stop();
      });
      /** A limiter whose calls go through the proxy, with a short timeout (a lost answer is a timeout). */
      const behindProxy = (options: Partial<ConstructorParameters<typeof DynamoLimiter>[0]> = {}) =>
        limiter({ client: localDynamoClient(proxy.endpoint), timeoutMs: 300, ...options });
      /** The first write about `user` lands unanswered; `then` decides what happens to its later calls. */
      const loseFirstWrite = (user: string, then: (operation: string) => DynamoFault | undefined) => {
        let writes = 0;
        proxy.inject(
          (_operation, body) => body.includes(`user#${user}`),
          (operation) => {
            if (operation === 'UpdateItem' && writes++ === 0) return { kind: 'lose-answer' };
            return then(operation);
          },
        );
      };

      it('admits once, and says so, when the admission landed and every retry timed out', async () => {
        const user = `u-${randomUUID()}`;
        loseFirstWrite(user, (operation) => (operation === 'UpdateItem' ? { kind: 'hang' } : undefined));
        const decision = await behindProxy().decide(ask(user, { requestId: 'r1' }), NOW);
        expect(decision).toMatchObject({
          allowed: true,
          reservation: { requestId: 'r1', reservedTokens: 1034 },
        });
        const item = await rawItem(user);
        expect(item).toMatchObject({ tat: NOW + 3000, r_r1: { i: 10, o: 1024 } });
        expect(Object.keys(item?.fl ?? {})).toEqual(['r1']);
      }, 30_000);

      it('reports a queued request as queued, at its position, when the enqueue landed and every retry timed out', async () => {
        const user = `u-${randomUUID()}`;
        const l = behindProxy();
        await l.enqueue(waitingRequest(user, 'w1'), 10, NOW);
        loseFirstWrite(user, (operation) => (operation === 'UpdateItem' ? { kind: 'hang' } : undefined));
        expect(await l.enqueue(waitingRequest(user, 'w2'), 10, NOW)).toMatchObject({
          kind: 'queued',
          position: 2,
        });
        expect((await rawItem(user))?.waiting).toEqual(['w1', 'w2']);
      }, 30_000);

      it('never tells "nothing was counted" when the item cannot be read to tell', async () => {
        const user = `u-${randomUUID()}`;
        loseFirstWrite(user, () => ({ kind: 'hang' }));
        const l = behindProxy();
        const first = l.decide(ask(user, { requestId: 'r1' }), NOW);
        const behind = l.decide(ask(user, { requestId: 'r2' }), NOW); // waits in the lane behind r1
        await expect(first).rejects.toBeInstanceOf(LimiterOutcomeUnknownError);
        // The frame that waited behind it is refused as busy at once, without a call: for it,
        // nothing was counted.
        proxy.reset();
        expect(await behind).toMatchObject({ allowed: false, limit: 'busy' });
        expect(proxy.total()).toBe(0);
      }, 30_000);

      it('asks the store again for a frame that arrives after an item was found busy, once it answers (SPEC §6)', async () => {
        const user = `u-${randomUUID()}`;
        loseFirstWrite(user, () => ({ kind: 'hang' }));
        const l = behindProxy();
        await expect(l.decide(ask(user, { requestId: 'r1' }), NOW)).rejects.toBeInstanceOf(
          LimiterOutcomeUnknownError,
        );
        // The store answers again: the next frame is decided by it, not by a memory of the fault
        // (which is still within its retryAfter on this clock).
        proxy.clear();
        expect(await l.decide(ask(user, { requestId: 'r2' }), NOW)).toMatchObject({ allowed: true });
      }, 30_000);

      it('hands a replay whose admission landed unanswered to the same delivery, not to its lease', async () => {
        const user = `u-${randomUUID()}`;
        const l = behindProxy();
        await l.enqueue(waitingRequest(user, 'q1'), 10, NOW);
        loseFirstWrite(user, () => undefined);
        const decision = await l.decide(ask(user, { requestId: 'q1', queue: replay() }), NOW);
        expect(decision).toMatchObject({ allowed: true, waiting: [], reservation: { requestId: 'q1' } });
        expect((await rawItem(user))?.act).toMatchObject({ id: 'q1', att: 1 });
        // The same when every retry timed out too: one more read tells.
        await l.enqueue(waitingRequest(user, 'q2'), 10, NOW);
        await l
          .reconcile((decision as AllowedDecision).reservation, { inputTokens: 1, outputTokens: 1 }, NOW, {
            endsActive: true,
          })
          .then(bare);
        loseFirstWrite(user, (operation) => (operation === 'UpdateItem' ? { kind: 'hang' } : undefined));
        expect(await l.decide(ask(user, { requestId: 'q2', queue: replay() }), NOW + 1)).toMatchObject({
          allowed: true,
          reservation: { requestId: 'q2' },
        });
      }, 30_000);

      it('still hands back the parked wake-up when a settle landed unanswered', async () => {
        const user = `u-${randomUUID()}`;
        const one = parseTierLimits({ tiers: { free: { requestsInFlight: 1 } } });
        const l = behindProxy({ tiers: one });
        const first = (await l.decide(ask(user), NOW)) as AllowedDecision;
        expect(await l.park(user, 'receipt-1')).toEqual({ ok: true });
        loseFirstWrite(user, () => undefined);
        const settled = await l
          .reconcile(first.reservation, { inputTokens: 10, outputTokens: 1 }, NOW + 1)
          .then(bare);
        expect(settled).toEqual({ applied: true, wakeUp: 'receipt-1' });
        const item = await rawItem(user);
        expect(item?.wk).toBeUndefined();
        expect(item?.fl).toEqual({});
        expect((await usedOf(l, user, NOW + 2)).dailyTokens).toBe(11);
      }, 30_000);

      it('still hands back the parked wake-up when the settle is tried again after every retry timed out', async () => {
        const user = `u-${randomUUID()}`;
        const one = parseTierLimits({ tiers: { free: { requestsInFlight: 1 } } });
        const l = behindProxy({ tiers: one });
        const first = (await l.decide(ask(user), NOW)) as AllowedDecision;
        expect(await l.park(user, 'receipt-1')).toEqual({ ok: true });
        loseFirstWrite(user, () => ({ kind: 'hang' }));
        await expect(
          l.reconcile(first.reservation, { inputTokens: 10, outputTokens: 1 }, NOW + 1),
        ).rejects.toBeInstanceOf(LimiterBusyError);
        proxy.clear();
        // The runner tries the settle again: the marker is gone, so the first try landed.
        expect(
          await l.reconcile(first.reservation, { inputTokens: 10, outputTokens: 1 }, NOW + 2).then(bare),
        ).toEqual({
          applied: true,
          wakeUp: 'receipt-1',
        });
        // And only once.
        expect(
          await l.reconcile(first.reservation, { inputTokens: 10, outputTokens: 1 }, NOW + 3).then(bare),
        ).toEqual({
          applied: false,
        });
      }, 30_000);
    });

    it('carries a day that ended into the history with the first admission of the next day, exactly, across instances', async () => {
      const user = `u-${randomUUID()}`;
      const [a, b] = [limiter(), limiter()];
      const dayOne = NOW;
      // Day one: 3 admitted (a, a, b), 2 queued; instance a last saw the item before b's admission.
      for (const l of [a, a, b])
        expect((await l.decide(ask(user, { maxTokens: 40 }), dayOne)).allowed).toBe(true);
      for (const id of ['w1', 'w2']) {
        await b.enqueue(
          {
            userId: user,
            requestId: id,
            connectionId: 'c',
            contentKey: 'k',
            estimatedInputTokens: 10,
            enqueuedAtEpochMs: dayOne,
            expiresAtEpochMs: dayOne + 60_000,
          },
          10,
          dayOne,
        );
        await b.removeWaiting(user, id);
      }
      // Day two: the first admission (planned by a, from its older view) rolls the day over.
      const dayTwo = dayOne + 86_400_000;
      expect((await a.decide(ask(user, { maxTokens: 40 }), dayTwo)).allowed).toBe(true);
      const history = (await b.status(user, undefined, dayTwo)).history ?? [];
      const [yesterday, today] = history.slice(-2);
      expect(yesterday).toMatchObject({ date: '2026-11-24', messages: 3, tokens: 150, queued: 2 });
      expect(yesterday!.costUsd).toBeCloseTo((3 * Math.ceil(10 * 0.2 + 40 * 0.6)) / 1e6, 9);
      expect(today).toMatchObject({ date: '2026-11-25', messages: 1, tokens: 50, queued: 0 });
      expect(history).toHaveLength(35);
      expect(history.slice(0, -2).every((d) => d.tokens === 0 && d.messages === 0)).toBe(true);
    }, 30_000);

    it('counts a request on a weighted model as that many messages in the bucket and the quotas', async () => {
      const user = `u-${randomUUID()}`;
      const heavy = { ...ECHO_MODEL, id: 'heavy', messageWeight: 5 };
      const models = [ECHO_MODEL, heavy];
      const weighted = parseTierLimits({ tiers: { free: { hourlyMessages: 40 } } });
      const instances = Array.from({ length: 4 }, () => limiter({ tiers: weighted, models }));
      const decisions = await Promise.all(
        Array.from({ length: 100 }, (_, i) => instances[i % 4]!.decide(ask(user, { model: 'heavy' }), NOW)),
      );
      // 25 messages of capacity: five requests of weight 5.
      expect(decisions.filter((d) => d.allowed)).toHaveLength(5);
      expect(decisions.find((d) => !d.allowed)).toMatchObject({ limit: 'messageRate', retryAfterMs: 15_000 });
      const status = await instances[0]!.status(user, undefined, NOW);
      expect(status.limits.find((l) => l.name === 'hourlyMessages')).toMatchObject({
        used: 25,
        remaining: 15,
      });
      // 75 s later the bucket is whole again, but the hour has room for three more: 15 of 40.
      const later = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          instances[i % 4]!.decide(ask(user, { model: 'heavy' }), NOW + 75_000),
        ),
      );
      expect(later.filter((d) => d.allowed)).toHaveLength(3);
      expect(later.find((d) => !d.allowed)).toMatchObject({ limit: 'hourlyMessages' });
    }, 30_000);

    it("parks the queue's wake-up while every slot is taken, and the settle that frees one hands it back once", async () => {
      const user = `u-${randomUUID()}`;
      const one = parseTierLimits({ tiers: { free: { requestsInFlight: 1 } } });
      const [a, b] = [limiter({ tiers: one }), limiter({ tiers: one })];
      const first = await a.decide(ask(user), NOW);
      expect(first.allowed).toBe(true);
      if (!first.allowed) return;
      expect((await a.decide(ask(user), NOW + 1)).allowed).toBe(false);
      // The processor parks its wake-up; a park planned from a stale view fails instead.
      expect(await b.park(user, 'receipt-1')).toEqual({ ok: true });
      const settled = await b
        .reconcile(first.reservation, { inputTokens: 10, outputTokens: 1 }, NOW + 2)
        .then(bare);
      expect(settled).toEqual({ applied: true, wakeUp: 'receipt-1' });
      // The wake-up is handed back once: a second settle (a retry) has nothing to release.
      expect(
        await a.reconcile(first.reservation, { inputTokens: 10, outputTokens: 1 }, NOW + 3).then(bare),
      ).toEqual({
        applied: false,
      });
      const next = await b.decide(ask(user), NOW + 4);
      expect(next.allowed).toBe(true);
      // Parked against a set of in-flight requests that changed meanwhile: refused, look again.
      const stale = limiter({ tiers: one });
      await stale.view(user, undefined, NOW + 5);
      if (next.allowed)
        await a.reconcile(next.reservation, { inputTokens: 1, outputTokens: 1 }, NOW + 6).then(bare);
      expect(await stale.park(user, 'receipt-2')).toEqual({ ok: false });
    }, 30_000);

    it('warns once per limit and window, at the admission that leaves ≤ 20 %, however many race', async () => {
      const warnTiers = parseTierLimits({
        tiers: { free: { messagesPerMinute: 600, burst: 100, dailyMessages: 20 } },
      });
      const user = `u-${randomUUID()}`;
      const instances = Array.from({ length: 4 }, () => limiter({ tiers: warnTiers }));
      const decisions = await Promise.all(
        Array.from({ length: 30 }, (_, i) => instances[i % 4]!.decide(ask(user), NOW)),
      );
      const admitted = decisions.filter((d): d is AllowedDecision => d.allowed);
      expect(admitted).toHaveLength(20);
      const warned = admitted.flatMap((d) => d.warnings ?? []);
      expect(warned).toHaveLength(1);
      expect(warned[0]).toMatchObject({ limit: 'dailyMessages', limitValue: 20, unit: 'messages' });
      expect(warned[0]!.remaining).toBeLessThanOrEqual(4);
      // `Budget Threshold Crossed` (SPEC §9.5): 80 % once, and 100 % — a second mark in the same
      // write's window (`wf_`) — once, at the admission that left nothing, however many raced.
      const crossings = admitted.flatMap((d) => d.budgetCrossings ?? []);
      expect(crossings.map((c) => [c.limit, c.thresholdPercent]).sort()).toEqual([
        ['dailyMessages', 100],
        ['dailyMessages', 80],
      ]);
      expect(crossings.find((c) => c.thresholdPercent === 100)).toMatchObject({
        remaining: 0,
        limitValue: 20,
      });
      // The same window is not warned about again; the next day's is.
      const later = await instances[0]!.decide(ask(user), NOW + 1000);
      expect(later.allowed).toBe(false);
      const tomorrow = await instances[1]!.decide(ask(user), NOW + 86_400_000);
      expect(tomorrow.allowed && tomorrow.warnings).toEqual([]);
      expect(tomorrow.allowed && tomorrow.budgetCrossings).toEqual([]);
    }, 30_000);

    it('fails open by default and closed when configured, once the store stopped answering', async () => {
      let nowMs = NOW;
      const broken = (failPolicy: 'open' | 'closed') =>
        new DynamoLimiter({
          client: localDynamoClient('http://127.0.0.1:9'),
          tableName,
          tiers,
          failPolicy,
          timeoutMs: 300,
          breakerSilenceMs: 1000,
          clock: () => nowMs,
        });
      const open = broken('open');
      const closed = broken('closed');
      // The first decisions see faults but no silence yet long enough: refused busy, never admitted.
      expect(await open.decide(ask('someone'), nowMs)).toMatchObject({ allowed: false, limit: 'busy' });
      expect(await closed.decide(ask('someone'), nowMs)).toMatchObject({ allowed: false, limit: 'busy' });
      expect([open.breaker.state, closed.breaker.state]).toEqual(['closed', 'closed']);
      // A second later (the busy refusal's wait over), the silence has lasted: the breaker opens.
      nowMs += 1000;
      expect(await open.decide(ask('someone'), nowMs)).toMatchObject({ allowed: true, failedOpen: true });
      expect(open.breaker.state).toBe('open');
      expect(await closed.decide(ask('someone'), nowMs)).toMatchObject({
        allowed: false,
        limit: 'unavailable',
      });
    });

    it('refuses as busy, and never admits uncounted, while a store that still answers others fails one user', async () => {
      const client = localDynamoClient(endpoint());
      const l = new DynamoLimiter({ client, tableName, tiers, timeoutMs: 200, breakerSilenceMs: 100 });
      const hot = `hot-${randomUUID()}`;
      // Every call about the hot user is throttled; the store answers everyone else.
      client.middlewareStack.add(
        (next) => async (args) => {
          const key = JSON.stringify((args.input as { Key?: unknown }).Key ?? '');
          if (key.includes(hot)) {
            const err = Object.assign(new Error('Rate of requests exceeds the allowed throughput.'), {
              name: 'ThrottlingException',
              $fault: 'client',
              $metadata: { httpStatusCode: 400 },
            });
            throw err;
          }
          return next(args);
        },
        { step: 'initialize', name: 'throttleHotUser' },
      );
      const decisions = await Promise.all(Array.from({ length: 20 }, () => l.decide(ask(hot), NOW)));
      expect(decisions.every((d) => !d.allowed && d.limit === 'busy')).toBe(true);
      expect(decisions.every((d) => !d.allowed && d.retryAfterMs >= 1000)).toBe(true);
      expect(l.breaker.state).toBe('closed');
      expect((await l.decide(ask(`calm-${randomUUID()}`), NOW)).allowed).toBe(true);
    });
  });
}

onEveryEmulator(describeLimiterContract);
