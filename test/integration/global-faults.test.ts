import { randomUUID } from 'node:crypto';
import { DynamoDBClient, GetItemCommand } from '@aws-sdk/client-dynamodb';
import { marshall, unmarshall } from '@aws-sdk/util-dynamodb';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  DynamoLimiter,
  LimiterBusyError,
  LimiterOutcomeUnknownError,
} from '../../lambda/adapters/dynamo-limiter';
import { ORPHAN_MARGIN_MS } from '../../lambda/adapters/limiter/global-counters';
import { ReplyStore } from '../../lambda/adapters/reply-store';
import type {
  AllowedDecision,
  DecideInput,
  Decision,
  DeniedDecision,
} from '../../lambda/core/limiter/decision';
import type { GlobalLimits } from '../../lambda/core/limiter/global/limits';
import { LINE_INDEX, lineBucket, lineKey } from '../../lambda/core/limiter/global/line';
import { type GlobalWaiter, priorityOrder } from '../../lambda/core/limiter/global/priority';
import { LINE_KEY_PREFIX, LINE_PARTITION_ATTR } from '../../lambda/core/limiter/item/attributes';
import { parseLimitsConfig } from '../../lambda/core/limiter/policy';
import { HOUR_MS } from '../../lambda/core/limiter/windows';
import type { ReplyJob } from '../../lambda/core/reply-job';
import type { ModelEvent, ModelPort, OutgoingMessage } from '../../lambda/services/ports';
import { DEFAULT_RUNNER_SETTINGS, ReplyRunner } from '../../lambda/services/reply-runner';
import { LOCAL_CREDENTIALS, LOCAL_REGION, localSqsClient } from '../../local/aws-clients';
import { createLocalResources } from '../../local/resources';
import { countCalls } from '../support/call-counter';
import { type DynamoProxy, startDynamoProxy } from '../support/dynamo-proxy';
import { onEveryEmulator } from '../support/dynamodb-local';
import { itemSizeBytes } from '../support/item-size';

/** 11:00 UTC; the tests start 20 minutes before it. */
const HOUR_END = Date.UTC(2026, 10, 24, 11, 0, 0);
const NOW = HOUR_END - 20 * 60_000;
/** Users' own limits out of the way: only the global ones bind. */
const OPEN_TIERS = {
  free: { messagesPerMinute: 60_000, burst: 0, dailyTokens: 100_000_000 },
  pro: { messagesPerMinute: 60_000, burst: 0, dailyTokens: 100_000_000 },
  enterprise: { messagesPerMinute: 60_000, burst: 0, dailyTokens: 100_000_000 },
};

/** As the limiter's client is in service: one attempt per call (the limiter retries itself). */
const limiterClient = (endpoint: string) =>
  new DynamoDBClient({ endpoint, region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS, maxAttempts: 1 });

const admitted = (ds: Decision[]) => ds.filter((d): d is AllowedDecision => d.allowed);
const priorityOrderOf = (waiters: readonly GlobalWaiter[]) =>
  priorityOrder(waiters, NOW, 60_000).map((w) => w.userId);

function describeGlobalFaults(backend: string, endpoint: () => string) {
  describe(`global shards and line under faults and skew on ${backend}`, () => {
    let proxy: DynamoProxy;
    beforeAll(async () => {
      proxy = await startDynamoProxy(endpoint());
    });
    afterAll(async () => {
      await proxy.stop();
    });

    /** A fresh table; `make` builds limiter instances on it (through the proxy), each with its clock. */
    async function table(global: Partial<GlobalLimits>) {
      const { tables } = await createLocalResources(
        limiterClient(endpoint()),
        localSqsClient(inject('sqsEndpoint')),
        `gf-${randomUUID().slice(0, 8)}`,
      );
      const config = parseLimitsConfig({ tiers: OPEN_TIERS, global });
      const make = (
        options: { clock?: () => number; timeoutMs?: number; globalWaitersTtlMs?: number } = {},
      ) => {
        const client = limiterClient(proxy.endpoint);
        const calls = countCalls(client);
        const limiter = new DynamoLimiter({
          client,
          tableName: tables.limits,
          tiers: config.tiers,
          global: config.global,
          timeoutMs: options.timeoutMs ?? 30_000,
          inFlightLeaseMs: 60_000,
          globalWaitersTtlMs: options.globalWaitersTtlMs,
          clock: options.clock,
        });
        return { limiter, calls };
      };
      /** A waiter's own line item, as stored. */
      const line = async (userId: string) => {
        const { Item } = await limiterClient(endpoint()).send(
          new GetItemCommand({
            TableName: tables.limits,
            Key: marshall({ pk: lineKey(userId) }),
            ConsistentRead: true,
          }),
        );
        return Item ? { item: unmarshall(Item), bytes: itemSizeBytes(Item) } : undefined;
      };
      return { make, line, tables };
    }
    const ask = (userId: string, over: Partial<DecideInput> = {}): DecideInput => ({
      userId,
      requestId: randomUUID(),
      estimatedInputTokens: 10,
      maxTokens: 90,
      ...over,
    });
    const totals = async (limiter: DynamoLimiter, nowMs: number) =>
      Object.fromEntries(
        ((await limiter.status('anyone', undefined, nowMs)).global ?? []).map((g) => [g.name, g.used]),
      );
    /**
     * Drops the answer of the next UpdateItem whose body contains `marker` (once): the write lands
     * and the caller's timeout is all it sees, so these tests give the limiter a short one.
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

    it('takes a shard share once when the answer of the shard write is lost, and gives it back once', async () => {
      const { make } = await table({
        requestsInFlight: 4,
        hourlyMessages: 100,
        dailyTokens: 10_000,
        shards: 2,
      });
      // A lost answer costs the caller its timeout: short here, as in service.
      const { limiter } = make({ timeoutMs: 1000 });
      loseNextAnswer('"global#');
      const decision = await limiter.decide(ask('u1'), NOW);
      proxy.clear();
      expect(decision.allowed).toBe(true);
      if (!decision.allowed) return;
      expect(decision.reservation.global).toBeDefined();
      // One share, on one shard — not one lost and a second taken.
      expect(await totals(limiter, NOW)).toMatchObject({
        'global.requestsInFlight': 1,
        'global.hourlyMessages': 1,
        'global.dailyTokens': 100,
      });
      // The release's answer is lost too: it is applied once (80 back, not 160).
      loseNextAnswer('"global#');
      await limiter.reconcile(decision.reservation, { inputTokens: 10, outputTokens: 10 }, NOW + 1);
      proxy.clear();
      expect(await totals(limiter, NOW + 2)).toMatchObject({
        'global.requestsInFlight': 0,
        'global.hourlyMessages': 1,
        'global.dailyTokens': 20,
      });
      // A second settle of the same request (a duplicate event) gives back nothing more.
      await limiter.reconcile(decision.reservation, { inputTokens: 0, outputTokens: 0 }, NOW + 3);
      expect(await totals(limiter, NOW + 4)).toMatchObject({ 'global.dailyTokens': 20 });
    }, 60_000);

    it('confirms a share whose write and re-read both lost their answers instead of taking a second one', async () => {
      const { make } = await table({ requestsInFlight: 4, hourlyMessages: 100, shards: 2 });
      // A lost answer costs the caller its timeout: short here, as in service.
      const { limiter } = make({ timeoutMs: 1000 });
      // The shard write lands and its answer is lost; the read that follows is lost too.
      let lost = 0;
      proxy.inject(
        (operation, body) => {
          if (lost >= 2 || !body.includes('"global#')) return false;
          if ((lost === 0 && operation === 'UpdateItem') || (lost === 1 && operation === 'GetItem')) {
            lost++;
            return true;
          }
          return false;
        },
        { kind: 'lose-answer' },
      );
      const decision = await limiter.decide(ask('u4'), NOW);
      proxy.clear();
      expect(lost).toBe(2);
      expect(decision.allowed).toBe(true);
      expect(await totals(limiter, NOW)).toMatchObject({
        'global.requestsInFlight': 1,
        'global.hourlyMessages': 1,
      });
      if (!decision.allowed) return;
      await limiter.reconcile(decision.reservation, { inputTokens: 10, outputTokens: 10 }, NOW + 1);
      expect(await totals(limiter, NOW + 2)).toMatchObject({ 'global.requestsInFlight': 0 });
    }, 60_000);

    it('takes the share again when a shard write that timed out did not land and the re-read timed out too', async () => {
      const { make } = await table({ requestsInFlight: 4, hourlyMessages: 100, shards: 2 });
      const { limiter } = make({ timeoutMs: 400 });
      // The shard write never reaches the store; the read that follows gets no answer either.
      let hung = 0;
      proxy.inject(
        (operation, body) => {
          if (hung >= 2 || !body.includes('"global#')) return false;
          if ((hung === 0 && operation === 'UpdateItem') || (hung === 1 && operation === 'GetItem')) {
            hung++;
            return true;
          }
          return false;
        },
        { kind: 'hang' },
      );
      const decision = await limiter.decide(ask('u5'), NOW);
      proxy.clear();
      expect(hung).toBe(2);
      // Admitted, and counted: never admitted on a share that was only maybe taken.
      expect(decision.allowed).toBe(true);
      expect(await totals(limiter, NOW)).toMatchObject({
        'global.requestsInFlight': 1,
        'global.hourlyMessages': 1,
      });
    }, 60_000);

    it("keeps the global share with the reservation when the user's own write lands but its answer is lost", async () => {
      const { make } = await table({ requestsInFlight: 4, dailyTokens: 10_000, shards: 1 });
      const { limiter } = make({ timeoutMs: 400 });
      loseNextAnswer('"user#u2"');
      const decision = await limiter.decide(ask('u2'), NOW);
      proxy.clear();
      expect(decision.allowed).toBe(true);
      if (!decision.allowed) return;
      expect(decision.reservation.global).toBeDefined();
      expect(await totals(limiter, NOW)).toMatchObject({
        'global.requestsInFlight': 1,
        'global.dailyTokens': 100,
      });
      await limiter.reconcile(decision.reservation, { inputTokens: 10, outputTokens: 10 }, NOW + 1);
      expect(await totals(limiter, NOW + 2)).toMatchObject({
        'global.requestsInFlight': 0,
        'global.dailyTokens': 20,
      });
    }, 60_000);

    it('does not tell "busy, nothing counted" when a share whose answer was lost cannot be given back (the shard throttled)', async () => {
      const { make } = await table({
        requestsInFlight: 4,
        hourlyMessages: 100,
        dailyTokens: 10_000,
        shards: 1,
      });
      const { limiter } = make({ timeoutMs: 1000 });
      // The shard write lands and its answer is lost; every later call about the shard is throttled
      // past the retries: neither the confirming read nor the give-back gets through.
      let lost = false;
      proxy.inject(
        (_operation, body) => body.includes('"global#0"'),
        (operation) => {
          if (!lost && operation === 'UpdateItem') {
            lost = true;
            return { kind: 'lose-answer' };
          }
          return lost ? { kind: 'throttle' } : undefined;
        },
      );
      const decision = limiter.decide(ask('u5'), NOW);
      await expect(decision).rejects.toBeInstanceOf(LimiterOutcomeUnknownError);
      proxy.clear();
      expect(lost).toBe(true);
      // What the client was not told "nothing" about: the share the lost write took (its lease ends it).
      expect(await totals(limiter, NOW)).toMatchObject({ 'global.requestsInFlight': 1 });
    }, 60_000);

    it("does not hold a throttled shard against the user's next request: it is decided on the store", async () => {
      const { make } = await table({
        requestsInFlight: 4,
        hourlyMessages: 100,
        dailyTokens: 10_000,
        shards: 1,
      });
      const { limiter } = make();
      proxy.inject((operation, body) => operation === 'UpdateItem' && body.includes('"global#0"'), {
        kind: 'throttle',
      });
      const first = await limiter.decide(ask('u6'), NOW);
      proxy.clear();
      expect(first).toMatchObject({ allowed: false, limit: 'busy' });
      // The user's item was never throttled: the next request (the shard answers again) is admitted.
      expect((await limiter.decide(ask('u6'), NOW)).allowed).toBe(true);
    }, 60_000);

    it("releases the shard when the user's settle lands but its answer is lost", async () => {
      const { make } = await table({ requestsInFlight: 4, dailyTokens: 10_000, shards: 1 });
      const { limiter } = make({ timeoutMs: 400 });
      const decision = await limiter.decide(ask('u3'), NOW);
      if (!decision.allowed) throw new Error('not admitted');
      loseNextAnswer('"user#u3"');
      await limiter.reconcile(decision.reservation, { inputTokens: 10, outputTokens: 10 }, NOW + 1);
      proxy.clear();
      expect(await totals(limiter, NOW + 2)).toMatchObject({
        'global.requestsInFlight': 0,
        'global.dailyTokens': 20,
      });
    }, 60_000);

    it('gives the global share back before message_complete when the shard does not answer the settle’s release', async () => {
      const limits = { requestsInFlight: 4, hourlyMessages: 100, dailyTokens: 10_000, shards: 2 };
      const { make, tables } = await table(limits);
      let clock = NOW;
      const { limiter } = make({ clock: () => clock });
      // Another instance's view of the shards, straight to the emulator (not through the proxy).
      const config = parseLimitsConfig({ tiers: OPEN_TIERS, global: limits });
      const watcher = new DynamoLimiter({
        client: limiterClient(endpoint()),
        tableName: tables.limits,
        tiers: config.tiers,
        global: config.global,
      });
      const request = ask('u1');
      const decision = await limiter.decide(request, NOW);
      expect(decision.allowed).toBe(true);
      if (!decision.allowed) return;
      const job: ReplyJob = {
        v: 1,
        userId: 'u1',
        requestId: request.requestId,
        connectionId: 'c1',
        prompt: 'hello',
        reservation: decision.reservation,
        source: 'direct',
        inFlightUntilEpochMs: decision.inFlightUntilEpochMs,
      };
      const model: ModelPort = {
        async *stream(): AsyncIterable<ModelEvent> {
          yield { type: 'chunk', text: 'hi' };
          // The store blip starts as the reply is done: the user's settle lands, every call about
          // a global item (the shard's release, the line) is throttled until the runner waits 2 s.
          proxy.inject((_operation, body) => body.includes('"global#'), { kind: 'throttle' });
          yield { type: 'done', usage: { inputTokens: 10, outputTokens: 10 } };
        },
      };
      const blipEndsAt = NOW + 2000;
      /** Slots held across the shards when each message_complete went out. */
      const heldAtComplete: number[] = [];
      const runner = new ReplyRunner({
        limiter,
        store: new ReplyStore(limiterClient(endpoint()), tables.requests),
        queue: { defer: async () => undefined, moveToDeadLetterQueue: async () => undefined },
        sender: {
          async send(_connectionId: string, message: OutgoingMessage) {
            if (message.type === 'message_complete') {
              heldAtComplete.push((await totals(watcher, clock))['global.requestsInFlight'] ?? -1);
            }
            return 'sent' as const;
          },
        },
        directory: { listByUser: async () => [] },
        model,
        metrics: { count: () => undefined, milliseconds: () => undefined },
        log: { info: () => undefined, warn: () => undefined, error: () => undefined },
        settings: DEFAULT_RUNNER_SETTINGS,
        now: () => clock,
        sleep: async (ms: number) => {
          clock += ms;
          if (clock >= blipEndsAt) proxy.clear();
        },
        random: () => 0.5,
      });
      await runner.run(job, () => 600_000);
      proxy.clear();
      // Sent once, and only after the shard gave the slot and the unused tokens back.
      expect(heldAtComplete).toEqual([0]);
      expect(await totals(limiter, clock)).toMatchObject({
        'global.requestsInFlight': 0,
        'global.hourlyMessages': 1,
        'global.dailyTokens': 20,
      });
    });

    it('gives back the share of a request whose reservation was rebuilt without it (a taken-over queued request)', async () => {
      const { make } = await table({ requestsInFlight: 4, dailyTokens: 10_000, shards: 2 });
      const { limiter } = make();
      await limiter.enqueue(
        {
          userId: 'u6',
          requestId: 'q6',
          connectionId: 'c',
          contentKey: 'k',
          estimatedInputTokens: 10,
          maxTokens: 90,
          enqueuedAtEpochMs: NOW,
          expiresAtEpochMs: NOW + 900_000,
        },
        10,
        NOW,
      );
      const decision = await limiter.decide(
        ask('u6', {
          requestId: 'q6',
          queue: {
            mode: 'replay',
            leaseUntilEpochMs: NOW + 60_000,
            enqueuedAtEpochMs: NOW,
            deadlineEpochMs: NOW + 900_000,
          },
        }),
        NOW,
      );
      if (!decision.allowed) throw new Error('not admitted');
      expect(await totals(limiter, NOW)).toMatchObject({
        'global.requestsInFlight': 1,
        'global.dailyTokens': 100,
      });
      // As the processor rebuilds it from the user's item after a crash: no shard in it.
      const { global: _shard, ...rebuilt } = decision.reservation;
      await limiter.reconcile(rebuilt, { inputTokens: 0, outputTokens: 0 }, NOW + 1, { endsActive: true });
      expect(await totals(limiter, NOW + 2)).toMatchObject({
        'global.requestsInFlight': 0,
        'global.dailyTokens': 0,
      });
    }, 60_000);

    it('counts exactly across an hour’s end with two instances whose clocks are 2 s apart: bounded calls, no error', async () => {
      // 8 messages an hour in 4 shards of 2. Instance `ahead` is on time; `behind` is 2 s late.
      const { make } = await table({ hourlyMessages: 8, shards: 4 });
      let real = HOUR_END - 5000;
      const ahead = make({ clock: () => real });
      const behind = make({ clock: () => real - 2000 });
      const run = async (n: number) => {
        const outcomes = await Promise.allSettled(
          Array.from({ length: n }, (_, i) => {
            const { limiter } = i % 2 ? behind : ahead;
            const nowMs = i % 2 ? real - 2000 : real;
            return limiter.decide(ask(`s${i % 10}`), nowMs).then((d) => ({ d, nowMs, behind: i % 2 === 1 }));
          }),
        );
        const failed = outcomes.filter((o) => o.status === 'rejected');
        expect(failed.map((o) => String((o as PromiseRejectedResult).reason))).toEqual([]);
        return outcomes.map(
          (o) => (o as PromiseFulfilledResult<{ d: Decision; nowMs: number; behind: boolean }>).value,
        );
      };
      // The last seconds of the hour: exactly 8.
      expect(admitted((await run(30)).map((o) => o.d))).toHaveLength(8);
      // The hour ends: `ahead` is in the next hour, `behind` still 2 s before it. It counts in the
      // shards' window (the next hour) once they are in it; exactly 8 in the new hour over both.
      real = HOUR_END + 1000;
      for (let i = 0; i < 3; i++) await ahead.limiter.decide(ask(`a${i}`), real);
      ahead.calls.reset();
      behind.calls.reset();
      const next = await run(40);
      expect(admitted(next.map((o) => o.d)).length + 3).toBe(8);
      expect(await totals(ahead.limiter, real)).toMatchObject({ 'global.hourlyMessages': 8 });
      // Refused by the window they were counted against: the new hour's end (or, for a shard
      // still in the old hour as `behind` sees it, that hour's end).
      for (const { d, nowMs, behind: late } of next) {
        if (d.allowed) continue;
        expect((d as DeniedDecision).limit).toBe('global.hourlyMessages');
        const ends = late ? [HOUR_END - nowMs, HOUR_END + HOUR_MS - nowMs] : [HOUR_END + HOUR_MS - nowMs];
        expect(ends).toContain(d.retryAfterMs);
      }
      // Bounded: a few calls a decision (a failed write, a read on emulators, the write), not 21.
      expect(behind.calls.total() / 20).toBeLessThan(4);
      expect(ahead.calls.total() / 20).toBeLessThan(4);
    }, 60_000);

    it("lists every waiter past the first design's cap of 150, each in its own item (1,145 bytes with a 1,024-byte receipt handle), and serves the line by tier", async () => {
      const { make, line } = await table({ requestsInFlight: 1, shards: 1 });
      const { limiter } = make({ globalWaitersTtlMs: 0 });
      const waiter = (userId: string, tier: GlobalWaiter['tier'], at: number): GlobalWaiter => ({
        userId,
        tier,
        enqueuedAtEpochMs: at,
        deadlineEpochMs: NOW + 900_000,
        // As long as SQS receipt handles get.
        wakeUp: 'h'.repeat(1024),
        seenAtEpochMs: NOW,
        wakeAtEpochMs: NOW + 5000,
        limit: 'requestsInFlight',
      });
      for (let i = 0; i < 170; i++) {
        await limiter.joinGlobalLine(waiter(`free-${String(i).padStart(3, '0')}`, 'free', NOW - 10_000 + i));
      }
      await limiter.joinGlobalLine(waiter('ent', 'enterprise', NOW));
      // The newest free one is listed too (there is no cap), in an item of its own: pk
      // 'gline#free-169' (2 + 14) + lb '<bucket>' (2 + 1) + lo '3#<15 digits>#free-169' (2 + 26) +
      // t 'free' (1 + 4) + at (2 + 8)
      // + dl (2 + 5) + l 'requestsInFlight' (1 + 16) + h (1 + 1,024) + s (1 + 5) + wa (2 + 6) +
      // ttlEpochSeconds (15 + 5) = 1,145 bytes (numbers: 1 byte per 2 significant digits, + 1).
      const newest = await line('free-169');
      expect(newest?.item[LINE_PARTITION_ATTR]).toBe(String(lineBucket('free-169')));
      expect(newest?.bytes).toBe(1145);
      // Read through the index, the enterprise one goes first, then the oldest free ones.
      const waiters = await limiter.global!.waiters({ fresh: true, nowMs: NOW });
      const order = priorityOrderOf(waiters);
      expect(order.slice(0, 3)).toEqual(['ent', 'free-000', 'free-001']);
    }, 120_000);

    it('prunes entries overdue on their own schedule, keeps those deferred to a later wake-up, and sets a TTL', async () => {
      const { make, line } = await table({ requestsInFlight: 1, shards: 1 });
      const { limiter } = make({ globalWaitersTtlMs: 0 });
      for (let i = 0; i < 5; i++) {
        await limiter.joinGlobalLine({
          userId: `gone-${i}`,
          tier: 'free',
          enqueuedAtEpochMs: NOW,
          deadlineEpochMs: NOW + 900_000,
          seenAtEpochMs: NOW,
          wakeAtEpochMs: NOW + 5000,
          limit: 'requestsInFlight',
        });
      }
      // Held until the hour's start, 20 minutes on: not stale before then.
      await limiter.joinGlobalLine({
        userId: 'deferred',
        tier: 'enterprise',
        enqueuedAtEpochMs: NOW,
        deadlineEpochMs: HOUR_END + 600_000,
        seenAtEpochMs: NOW,
        wakeAtEpochMs: HOUR_END,
        limit: 'hourlyMessages',
      });
      expect((await limiter.pruneGlobalLine(NOW + 19_000)).removed).toEqual([]);
      expect([...(await limiter.pruneGlobalLine(NOW + 21_000)).removed].sort()).toEqual([
        'gone-0',
        'gone-1',
        'gone-2',
        'gone-3',
        'gone-4',
      ]);
      // A pruned entry is out of the index (its keys removed) and expires now; the deferred one
      // stays, with a TTL past its deadline.
      const gone = (await line('gone-0'))!.item;
      expect(gone[LINE_PARTITION_ATTR]).toBeUndefined();
      expect(gone.ttlEpochSeconds).toBe(Math.floor((NOW + 21_000) / 1000));
      const { item } = (await line('deferred'))!;
      expect(item[LINE_PARTITION_ATTR]).toBe(String(lineBucket('deferred')));
      expect(item.ttlEpochSeconds).toBe((HOUR_END + 600_000) / 1000 + 300);
      // Past its deadline, the deferred one goes too; nothing is pruned twice.
      expect((await limiter.pruneGlobalLine(HOUR_END + 600_001)).removed).toEqual(['deferred']);
      expect((await limiter.pruneGlobalLine(HOUR_END + 600_002)).removed).toEqual([]);
    }, 60_000);

    it('wakes the next in line for each slot one instance frees, not the same waiter twice within 5 s', async () => {
      const { make } = await table({ requestsInFlight: 1, shards: 1 });
      let clock = NOW;
      const { limiter } = make({ clock: () => clock });
      for (const [i, userId] of ['first', 'second', 'third'].entries()) {
        await limiter.joinGlobalLine({
          userId,
          tier: 'pro',
          enqueuedAtEpochMs: NOW - 3000 + i,
          deadlineEpochMs: NOW + 900_000,
          wakeUp: `h-${userId}`,
          seenAtEpochMs: NOW,
          wakeAtEpochMs: NOW + 5000,
          limit: 'requestsInFlight',
        });
      }
      const next = async () => (await limiter.global!.nextInLine(clock, 60_000))?.wakeUp;
      expect([await next(), await next(), await next(), await next()]).toEqual([
        'h-first',
        'h-second',
        'h-third',
        undefined,
      ]);
      // 5 s on, a woken waiter that is still in line (it looked and was refused) is woken again.
      clock += 5000;
      expect(await next()).toBe('h-first');
    }, 60_000);

    it('reads past entries no longer live at the head of a partition to the live waiter behind them', async () => {
      const { make } = await table({ requestsInFlight: 1, shards: 1 });
      const { limiter } = make({ globalWaitersTtlMs: 0 });
      // Twelve users of one bucket (one index partition): the oldest eleven stopped looking.
      const ids: string[] = [];
      for (let i = 0; ids.length < 12; i++) if (lineBucket(`b-${i}`) === 0) ids.push(`b-${i}`);
      for (const [i, userId] of ids.entries()) {
        const at = i < 11 ? NOW : NOW + 60_000;
        await limiter.joinGlobalLine({
          userId,
          tier: 'free',
          enqueuedAtEpochMs: at + i,
          deadlineEpochMs: at + 900_000,
          seenAtEpochMs: at,
          wakeAtEpochMs: at + 5000,
          limit: 'requestsInFlight',
        });
      }
      const waiters = await limiter.global!.waiters({ fresh: true, nowMs: NOW + 60_000 });
      expect(waiters.map((w) => w.userId)).toEqual([ids[11]]);
    }, 60_000);

    it('decides a direct request without the line when the line item is throttled or hangs: counted, never an error, breaker closed', async () => {
      const { make } = await table({ requestsInFlight: 10, shards: 2 });
      const { limiter } = make({ timeoutMs: 400, globalWaitersTtlMs: 0 });
      for (const fault of [{ kind: 'throttle' }, { kind: 'hang' }] as const) {
        // A queued request, as the processor replays it.
        const queued = `q-${fault.kind}`;
        await limiter.enqueue(
          {
            userId: `r-${fault.kind}`,
            requestId: queued,
            connectionId: 'c',
            contentKey: 'k',
            estimatedInputTokens: 10,
            enqueuedAtEpochMs: NOW,
            expiresAtEpochMs: NOW + 900_000,
          },
          10,
          NOW,
        );
        proxy.inject(
          (_operation, body) => body.includes(LINE_INDEX) || body.includes(LINE_KEY_PREFIX),
          fault,
        );
        const direct = await Promise.all(
          [1, 2, 3].map((i) => limiter.decide(ask(`d-${fault.kind}-${i}`), NOW)),
        );
        expect(direct.every((d) => d.allowed && !d.failedOpen)).toBe(true);
        // A queued request's turn needs the line: refused as busy (the processor tries again).
        await expect(
          limiter.decide(
            ask(`r-${fault.kind}`, {
              requestId: queued,
              queue: {
                mode: 'replay',
                leaseUntilEpochMs: NOW + 60_000,
                enqueuedAtEpochMs: NOW,
                deadlineEpochMs: NOW + 900_000,
              },
            }),
            NOW,
          ),
        ).rejects.toBeInstanceOf(LimiterBusyError);
        // Joining the line does not throw either: the waiter is just not listed this time.
        await limiter.joinGlobalLine({
          userId: `w-${fault.kind}`,
          tier: 'free',
          enqueuedAtEpochMs: NOW,
          deadlineEpochMs: NOW + 900_000,
          seenAtEpochMs: NOW,
          limit: 'requestsInFlight',
        });
        proxy.clear();
        expect(limiter.breaker.state).toBe('closed');
      }
      expect(await totals(limiter, NOW)).toMatchObject({ 'global.requestsInFlight': 6 });
    }, 60_000);

    /** Past the lease (60 s here) and the sweep's margin: nothing else will give a share back now. */
    const AFTER_LEASE = NOW + 60_000 + ORPHAN_MARGIN_MS + 1;

    it('gives back once a share its decision could neither make its own nor undo (the outcome unknown)', async () => {
      const { make } = await table({ hourlyMessages: 100, dailyTokens: 10_000, shards: 1 });
      const { limiter } = make({ timeoutMs: 1000 });
      // The shard write lands and is answered; every call after it (the user's own write, then the
      // give-back) is throttled past the retries.
      let landed = false;
      proxy.inject(
        (operation, body) => {
          if (landed) return true;
          if (operation === 'UpdateItem' && body.includes('"global#0"')) landed = true;
          return false;
        },
        { kind: 'throttle' },
      );
      await expect(limiter.decide(ask('u-orphan'), NOW)).rejects.toBeInstanceOf(LimiterOutcomeUnknownError);
      proxy.clear();
      expect(landed).toBe(true);
      // The share is held by nothing: no reservation on the user's item, only the shard's counts.
      expect(await totals(limiter, NOW)).toMatchObject({
        'global.hourlyMessages': 1,
        'global.dailyTokens': 100,
      });
      // Not before its lease and the margin are over.
      expect((await limiter.releaseOrphanedGlobalShares(NOW + 60_000)).released).toEqual([]);
      const first = await limiter.releaseOrphanedGlobalShares(AFTER_LEASE);
      expect(first.released.map((r) => r.userId)).toEqual(['u-orphan']);
      expect(await totals(limiter, AFTER_LEASE)).toMatchObject({
        'global.hourlyMessages': 0,
        'global.dailyTokens': 0,
      });
      // Once: a second run finds nothing to give back, and changes nothing.
      expect((await limiter.releaseOrphanedGlobalShares(AFTER_LEASE + 60_000)).released).toEqual([]);
      expect(await totals(limiter, AFTER_LEASE)).toMatchObject({
        'global.hourlyMessages': 0,
        'global.dailyTokens': 0,
      });
    }, 60_000);

    it('gives back only the unused part of a settled share whose release never landed, and leaves a pending one to its user', async () => {
      const { make } = await table({ hourlyMessages: 100, dailyTokens: 10_000, shards: 1 });
      const { limiter } = make({ timeoutMs: 1000 });
      const settled = await limiter.decide(ask('u-settled'), NOW);
      const pending = await limiter.decide(ask('u-pending'), NOW);
      if (!settled.allowed || !pending.allowed) throw new Error('both are admitted');
      // The settle lands on the user's item; every call to the shard is throttled: its release does not.
      proxy.inject((_operation, body) => body.includes('"global#0"'), { kind: 'throttle' });
      const outcome = await limiter.reconcile(
        settled.reservation,
        { inputTokens: 10, outputTokens: 20 },
        NOW + 1,
      );
      proxy.clear();
      expect(outcome).toMatchObject({ applied: true, globalUnreleased: true });
      expect(await totals(limiter, NOW + 2)).toMatchObject({
        'global.hourlyMessages': 2,
        'global.dailyTokens': 200,
      });
      const first = await limiter.releaseOrphanedGlobalShares(AFTER_LEASE);
      // The settled one's 70 unused tokens go back (its 30 charged and its message stay); the
      // pending one is its user's (its settle, or the sweep's repair of the user, releases it).
      expect(first.released.map((r) => r.userId)).toEqual(['u-settled']);
      expect(await totals(limiter, AFTER_LEASE)).toMatchObject({
        'global.hourlyMessages': 2,
        'global.dailyTokens': 130,
      });
      expect((await limiter.releaseOrphanedGlobalShares(AFTER_LEASE + 60_000)).released).toEqual([]);
      expect(await totals(limiter, AFTER_LEASE)).toMatchObject({ 'global.dailyTokens': 130 });
      // The pending one settles later, as usual: its own release gives back its unused part, once.
      await limiter.reconcile(pending.reservation, { inputTokens: 10, outputTokens: 10 }, AFTER_LEASE);
      expect(await totals(limiter, AFTER_LEASE)).toMatchObject({ 'global.dailyTokens': 50 });
      expect((await limiter.releaseOrphanedGlobalShares(AFTER_LEASE + 120_000)).released).toEqual([]);
      expect(await totals(limiter, AFTER_LEASE)).toMatchObject({ 'global.dailyTokens': 50 });
    }, 60_000);
  });
}

onEveryEmulator(describeGlobalFaults);
