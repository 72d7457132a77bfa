import { randomUUID } from 'node:crypto';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { DynamoLimiter, LimiterOutcomeUnknownError } from '../../lambda/adapters/dynamo-limiter';
import { UserItems } from '../../lambda/adapters/limiter/user-items';
import { StoreBreaker } from '../../lambda/core/limiter/breaker';
import { parseTierLimits } from '../../lambda/core/limiter/policy';
import { LOCAL_CREDENTIALS, LOCAL_REGION, localDynamoClient, localSqsClient } from '../../local/aws-clients';
import { createLocalResources } from '../../local/resources';
import { countCalls } from '../support/call-counter';
import { type DynamoProxy, startDynamoProxy } from '../support/dynamo-proxy';
import { onEveryEmulator } from '../support/dynamodb-local';

/**
 * Guarantees a mutation check once showed no test would notice losing (issue 20, "Tests that
 * cannot fail where they must"): each test here fails when the line that keeps its guarantee is
 * broken — the breaker's silence rule, the probe before it opens, and never-overtake against a
 * second instance that decides from an older view.
 */
const NOW = Date.UTC(2026, 10, 24, 10, 0, 0);

function describeGuarantees(backend: string, endpoint: () => string) {
  describe(`limiter guarantees on ${backend}`, () => {
    let tableName: string;
    let proxy: DynamoProxy;
    beforeAll(async () => {
      proxy = await startDynamoProxy(endpoint());
      const resources = await createLocalResources(
        localDynamoClient(endpoint()),
        localSqsClient(inject('sqsEndpoint')),
        `guarantees-${randomUUID().slice(0, 8)}`,
      );
      tableName = resources.tables.limits;
    });
    afterAll(async () => {
      await proxy?.stop();
    });
    const ask = (userId: string, requestId: string = randomUUID()) => ({
      userId,
      requestId,
      estimatedInputTokens: 10,
    });

    it('never admits a direct request ahead of one another instance queued after this one last read the item', async () => {
      // One message a minute, no burst: the refusal below is the bucket's, and a minute later the
      // bucket alone would admit again.
      const oneAMinute = parseTierLimits({ tiers: { free: { messagesPerMinute: 1, burst: 0 } } });
      const [a, b] = [0, 1].map(
        () => new DynamoLimiter({ client: localDynamoClient(endpoint()), tableName, tiers: oneAMinute }),
      ) as [DynamoLimiter, DynamoLimiter];
      const user = `u-${randomUUID()}`;
      // B admits the first request: its belief is the item right after that write.
      expect((await b.decide(ask(user, 'r1'), NOW)).allowed).toBe(true);
      // A refuses the second (the bucket is empty) and queues it: the item now holds a waiting
      // list B has never seen; nothing else in it changed.
      const { decision, slot } = await a.decideOrQueue(ask(user, 'r2'), NOW + 10, () => ({
        request: {
          userId: user,
          requestId: 'r2',
          connectionId: 'conn-a',
          contentKey: 'k',
          estimatedInputTokens: 10,
          enqueuedAtEpochMs: NOW + 10,
          expiresAtEpochMs: NOW + 960_000,
        },
        maxQueued: 10,
      }));
      expect(decision).toMatchObject({ allowed: false, limit: 'messageRate' });
      expect(slot).toMatchObject({ kind: 'queued', position: 1 });
      // A minute on, the bucket would admit; B decides a direct request from its older view.
      const third = await b.decide(ask(user, 'r3'), NOW + 60_000);
      expect(third).toMatchObject({ allowed: false, limit: 'queue', queued: 1 });
      const view = await a.view(user, undefined, NOW + 60_000);
      expect(view.snap.waiting).toEqual(['r2']);
      expect(Object.keys(view.snap.reservations)).toEqual(['r1']);
      // The queued request is the one that goes next.
      expect(
        (
          await b.decide(
            { ...ask(user, 'r2'), queue: { mode: 'replay', leaseUntilEpochMs: NOW + 120_000 } },
            NOW + 60_001,
          )
        ).allowed,
      ).toBe(true);
    });

    it('refuses as busy, and never fails open, while one user’s item hangs and the store answers others (the probe tells them apart)', async () => {
      const l = new DynamoLimiter({
        client: localDynamoClient(proxy.endpoint),
        tableName,
        tiers: parseTierLimits({}),
        timeoutMs: 250,
        breakerSilenceMs: 400,
      });
      const hot = `hot-${randomUUID()}`;
      proxy.reset();
      proxy.inject((_op, body) => body.includes(`user#${hot}`), { kind: 'hang' });
      try {
        // Four frames at once: the first decision retries until it gives up, and the silence
        // passes the breaker's threshold on the way.
        const decisions = await Promise.allSettled(
          Array.from({ length: 4 }, (_, i) => l.decide(ask(hot, `h${i}`), NOW)),
        );
        // The first one's writes got no answer and may have landed (a timeout), and its
        // confirming read hung too: its outcome is unknown, never "busy, nothing counted" (SPEC
        // §9.1). The frames waiting behind it are refused as busy, and none is admitted uncounted.
        expect(
          decisions.map((d) =>
            d.status === 'rejected'
              ? (d.reason as Error).name
              : d.value.allowed
                ? `admitted${d.value.failedOpen ? ' uncounted' : ''}`
                : d.value.limit,
          ),
        ).toEqual(['LimiterOutcomeUnknownError', 'busy', 'busy', 'busy']);
        expect((decisions[0] as PromiseRejectedResult).reason).toBeInstanceOf(LimiterOutcomeUnknownError);
        // The hang reached the store: one decision's tries and its confirming read, every one
        // unanswered (the others were refused without a call while the item was known busy).
        expect(proxy.faulted().hang).toBe(5);
        // ... and once the silence passed 400 ms the breaker asked the store about another item
        // (its one GetItem), which answered: a slow item, not a store that is down.
        expect(proxy.calls()).toEqual({ UpdateItem: 4, GetItem: 2 });
        expect(l.breaker.state).toBe('closed');
      } finally {
        proxy.clear();
      }
      // Another user is served by the same instance at once.
      expect((await l.decide(ask(`calm-${randomUUID()}`), NOW)).allowed).toBe(true);
    });

    it('refuses while the silence is shorter than the breaker’s, and fails open only once it has lasted that long', async () => {
      let nowMs = NOW;
      const deadClient = localDynamoClient('http://127.0.0.1:9'); // nothing listens: every call is a fault
      const calls = countCalls(deadClient);
      const broken = new DynamoLimiter({
        client: deadClient,
        tableName,
        tiers: parseTierLimits({}),
        timeoutMs: 300,
        breakerSilenceMs: 3000,
        clock: () => nowMs,
      });
      // Every try of the first decision faults, but within 0 ms of silence: busy, never admitted.
      expect(await broken.decide(ask('someone'), nowMs)).toMatchObject({ allowed: false, limit: 'busy' });
      expect(broken.breaker.state).toBe('closed');
      // Later tries (each after the busy refusal's second), still short of 3 s of silence: busy.
      for (const atMs of [NOW + 1500, NOW + 2999]) {
        nowMs = atMs;
        expect(await broken.decide(ask('someone'), nowMs)).toMatchObject({ allowed: false, limit: 'busy' });
        expect(broken.breaker.state).toBe('closed');
      }
      nowMs = NOW + 4000;
      // 4 s with no answer at all, and the probe of another item unanswered too: the store is down.
      const failed = await broken.decide(ask('someone'), nowMs);
      expect(failed).toMatchObject({ allowed: true, failedOpen: true });
      expect(broken.breaker.state).toBe('open');
      // While open, the store is left alone: no call at all, then one probe per 500 ms.
      calls.reset();
      expect(await broken.decide(ask('someone else'), nowMs + 499)).toMatchObject({ failedOpen: true });
      expect(calls.total()).toBe(0);
      nowMs += 500;
      expect(await broken.decide(ask('someone else'), nowMs)).toMatchObject({ failedOpen: true });
      expect(calls.total()).toBe(1);
    });

    it('gives an answer it did not expect (a validation error) straight back, with no retry, and counts nothing', async () => {
      const client = localDynamoClient(endpoint());
      const calls = countCalls(client);
      const odd = `odd-${randomUUID()}`;
      client.middlewareStack.add(
        (next) => async (args) => {
          if (JSON.stringify((args.input as { Key?: unknown }).Key ?? '').includes(odd)) {
            throw Object.assign(new Error('Item size has exceeded the maximum allowed size'), {
              name: 'ValidationException',
              $fault: 'client',
              $metadata: { httpStatusCode: 400 },
            });
          }
          return next(args);
        },
        { step: 'initialize', name: 'refuseOddUser' },
      );
      const l = new DynamoLimiter({ client, tableName, tiers: parseTierLimits({}) });
      await expect(l.decide(ask(odd), NOW)).rejects.toMatchObject({ name: 'ValidationException' });
      expect(calls.total()).toBe(1);
      expect(l.breaker.state).toBe('closed');
    });

    it('ends a decision while the store hangs for everyone: its probe times out too, and the breaker opens', async () => {
      const l = new DynamoLimiter({
        client: localDynamoClient(proxy.endpoint),
        tableName,
        tiers: parseTierLimits({}),
        timeoutMs: 250,
        breakerSilenceMs: 400,
      });
      proxy.reset();
      proxy.inject(() => true, { kind: 'hang' });
      try {
        // The probe carries the per-call timeout like every call: it cannot hang the decision.
        const decision = await l.decide(ask(`u-${randomUUID()}`), NOW);
        expect(decision).toMatchObject({ allowed: true, failedOpen: true });
        expect(l.breaker.state).toBe('open');
        expect(proxy.calls().GetItem).toBe(1);
      } finally {
        proxy.clear();
      }
    }, 10_000);

    it('opens only when the probe gets no answer: a throttled probe is an answer, and a later outage is probed again', async () => {
      let nowMs = NOW;
      let down = false;
      const client = localDynamoClient(endpoint());
      const hot = `hot-${randomUUID()}`;
      const probes: string[] = [];
      // Calls about the hot user time out (300 ms each on the injected clock); the probe item is
      // throttled; once `down`, every call times out.
      client.middlewareStack.add(
        (next) => async (args) => {
          const key = JSON.stringify((args.input as { Key?: unknown }).Key ?? '');
          const timeout = Object.assign(new Error('no answer'), { name: 'TimeoutError' });
          if (key.includes('breaker#probe')) {
            probes.push(down ? 'timeout' : 'throttled');
            if (down) throw timeout;
            throw Object.assign(new Error('slow down'), {
              name: 'ThrottlingException',
              $fault: 'client',
              $metadata: { httpStatusCode: 400 },
            });
          }
          if (down || key.includes(hot)) {
            nowMs += 300;
            throw timeout;
          }
          return next(args);
        },
        { step: 'initialize', name: 'hotUserThenOutage' },
      );
      const l = new DynamoLimiter({
        client,
        tableName,
        tiers: parseTierLimits({}),
        breakerSilenceMs: 400,
        clock: () => nowMs,
      });
      // The hot user's writes time out (they may have landed) and so does the read that would tell:
      // the outcome is unknown, not a fail-open — the probe was answered, the breaker stays closed.
      await expect(l.decide(ask(hot), nowMs)).rejects.toBeInstanceOf(LimiterOutcomeUnknownError);
      expect(probes).toEqual(['throttled']);
      expect(l.breaker.state).toBe('closed');
      // Now the store goes away for everyone: a new probe is sent, gets no answer, and only then
      // does the breaker open.
      down = true;
      expect(await l.decide(ask(`calm-${randomUUID()}`), nowMs)).toMatchObject({
        allowed: true,
        failedOpen: true,
      });
      expect(probes).toEqual(['throttled', 'timeout']);
      expect(l.breaker.state).toBe('open');
    });

    for (const failPolicy of ['open', 'closed'] as const) {
      it(`lets the fail policy (${failPolicy}) decide, not "outcome unknown", when the store goes down for everyone while a decision reads whether its write landed`, async () => {
        let nowMs = NOW;
        let down = false;
        const client = localDynamoClient(endpoint());
        const hot = `hot-${randomUUID()}`;
        const probes: string[] = [];
        // The hot user's writes time out quickly (50 ms each on the injected clock: too short a
        // silence to probe). The read that would tell whether they landed is when the store goes
        // away for everyone: it takes 500 ms to time out, and the probe it sets off times out too.
        client.middlewareStack.add(
          (next, context) => async (args) => {
            const key = JSON.stringify((args.input as { Key?: unknown }).Key ?? '');
            const timeout = Object.assign(new Error('no answer'), { name: 'TimeoutError' });
            if (key.includes('breaker#probe')) {
              probes.push(down ? 'timeout' : 'throttled');
              if (down) throw timeout;
              throw Object.assign(new Error('slow down'), {
                name: 'ThrottlingException',
                $fault: 'client',
                $metadata: { httpStatusCode: 400 },
              });
            }
            if (key.includes(hot)) {
              if (context.commandName === 'GetItemCommand') down = true;
              nowMs += down ? 500 : 50;
              throw timeout;
            }
            return next(args);
          },
          { step: 'initialize', name: 'hotUserThenOutage' },
        );
        const failedOpen: string[] = [];
        const l = new DynamoLimiter({
          client,
          tableName,
          tiers: parseTierLimits({}),
          breakerSilenceMs: 400,
          failPolicy,
          onFailOpen: (cause) => failedOpen.push(cause),
          clock: () => nowMs,
        });
        const decision = await l.decide(ask(hot), nowMs);
        expect(probes).toEqual(['timeout']);
        expect(l.breaker.state).toBe('open');
        // The store is out for everyone (SPEC §6): the configured policy applies, as for every
        // decision while the breaker is open — fail open admits uncounted, and says so.
        if (failPolicy === 'open') {
          expect(decision).toMatchObject({ allowed: true, failedOpen: true });
          expect(failedOpen).toHaveLength(1);
        } else {
          expect(decision).toMatchObject({ allowed: false, limit: 'unavailable' });
          expect(failedOpen).toHaveLength(0);
        }
      });
    }

    it('never lets a slow read sent before a write undo what the write taught', async () => {
      let nowMs = NOW;
      let slowReads = false;
      const client = localDynamoClient(endpoint());
      client.middlewareStack.add(
        (next, context) => async (args) => {
          const answer = await next(args);
          // The read's answer (the item before the write) arrives after the write's.
          if (slowReads && context.commandName === 'GetItemCommand')
            await new Promise((resolve) => setTimeout(resolve, 200));
          return answer;
        },
        { step: 'initialize', name: 'slowReads' },
      );
      const l = new DynamoLimiter({ client, tableName, tiers: parseTierLimits({}), clock: () => nowMs });
      const user = `u-${randomUUID()}`;
      expect((await l.decide(ask(user, 'w1'), NOW)).allowed).toBe(true);
      slowReads = true;
      const read = l.view(user, undefined, NOW + 1); // sent at NOW, answered late
      await new Promise((resolve) => setTimeout(resolve, 50));
      nowMs = NOW + 1;
      expect((await l.decide(ask(user, 'w2'), NOW + 1)).allowed).toBe(true);
      // The late read answers with the item before w2; what it returns is the latest seen here.
      expect(Object.keys((await read).snap.reservations).sort()).toEqual(['w1', 'w2']);
      slowReads = false;
      // What this instance plans from is the item after w2, not the late read of before.
      const seen = await l.view(user, undefined, NOW + 2, { fresh: false });
      expect(Object.keys(seen.snap.reservations).sort()).toEqual(['w1', 'w2']);
    });

    for (const { fault, how } of [
      { fault: 'lose-answer', how: 'no answer at all: a timeout, which may have landed' },
      { fault: 'drop-answer', how: 'a connection reset, retried as never landed' },
    ] as const) {
      it(`counts a write that landed but whose answer was lost once, and admits it (its own marker tells): ${how}`, async () => {
        // One attempt per call, as the limiter's client is built in lambda/adapters/runtime/user-facing.ts: the
        // limiter sees the fault itself (the SDK's own retry would hide it).
        const client = new DynamoDBClient({
          endpoint: proxy.endpoint,
          region: LOCAL_REGION,
          credentials: LOCAL_CREDENTIALS,
          maxAttempts: 1,
        });
        const l = new DynamoLimiter({ client, tableName, tiers: parseTierLimits({}), timeoutMs: 500 });
        const user = `u-${randomUUID()}`;
        let lost = 0;
        proxy.reset();
        // The first write about this user lands in the store; its answer never comes back.
        proxy.inject((op, body) => op === 'UpdateItem' && body.includes(`user#${user}`) && lost++ === 0, {
          kind: fault,
        });
        try {
          const decision = await l.decide(ask(user, 'once'), NOW);
          expect(proxy.faulted()[fault]).toBe(1);
          // Admitted, never "refused as a duplicate" of itself while counted.
          expect(decision).toMatchObject({ allowed: true });
          expect(decision.allowed && decision.failedOpen).toBeFalsy();
        } finally {
          proxy.clear();
        }
        const view = await l.view(user, undefined, NOW);
        expect(Object.keys(view.snap.reservations)).toEqual(['once']);
        expect(view.limits.find((x) => x.name === 'messageRate')?.used).toBe(1);
        // The client resending the same request is a duplicate, not a second admission.
        expect(await l.decide(ask(user, 'once'), NOW + 1)).toMatchObject({
          allowed: false,
          limit: 'duplicate',
        });
      });
    }

    it('warns at the admission that leaves exactly 20 % of a quota, not one before', async () => {
      const l = new DynamoLimiter({
        client: localDynamoClient(endpoint()),
        tableName,
        tiers: parseTierLimits({
          tiers: { free: { messagesPerMinute: 600, burst: 100, dailyMessages: 20 } },
        }),
      });
      const user = `u-${randomUUID()}`;
      const warnedAt: number[] = [];
      for (let i = 1; i <= 20; i++) {
        const d = await l.decide(ask(user), NOW + i);
        expect(d.allowed).toBe(true);
        if (d.allowed && d.warnings?.length) warnedAt.push(i);
      }
      // The 16th leaves 4 of 20 (20 %): it warns, and only it.
      expect(warnedAt).toEqual([16]);
    });

    it('keeps at most cacheSize users’ items in mind, forgetting the least recently seen', async () => {
      const items = new UserItems({
        client: localDynamoClient(endpoint()),
        tableName,
        breaker: new StoreBreaker(),
        cacheSize: 2,
      });
      const [k1, k2, k3] = [1, 2, 3].map((i) => `user#cache-${i}-${randomUUID()}`) as [
        string,
        string,
        string,
      ];
      await items.read(k1);
      await items.read(k2);
      expect([items.belief(k1), items.belief(k2)].every(Boolean)).toBe(true);
      await items.read(k1); // seen again: now the most recent
      await items.read(k3);
      expect(items.belief(k2)).toBeUndefined();
      expect(items.belief(k1)).toBeDefined();
      expect(items.belief(k3)).toBeDefined();
    });
  });
}

onEveryEmulator(describeGuarantees);
