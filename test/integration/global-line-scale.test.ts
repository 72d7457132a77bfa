import {
  type AttributeValue,
  BatchWriteItemCommand,
  type DynamoDBClient,
  ScanCommand,
} from '@aws-sdk/client-dynamodb';
import { marshall, unmarshall } from '@aws-sdk/util-dynamodb';
import { beforeAll, describe, expect, it } from 'vitest';
import { DynamoLimiter } from '../../lambda/adapters/dynamo-limiter';
import type { DecideInput } from '../../lambda/core/limiter/decision';
import {
  LINE_BUCKETS,
  LINE_READ_LIMIT,
  lineEntryFields,
  lineKey,
} from '../../lambda/core/limiter/global/line';
import {
  type GlobalWaiter,
  isLiveWaiter,
  NEAR_HEAD,
  priorityOrder,
} from '../../lambda/core/limiter/global/priority';
import { LINE_PARTITION_ATTR } from '../../lambda/core/limiter/item/attributes';
import { parseLimitsConfig } from '../../lambda/core/limiter/policy';
import type { Tier } from '../../lambda/core/limiter/tiers';
import { localDynamoClient } from '../../local/aws-clients';
import { createTestResources, type TestResources } from '../support/emulators';
import { itemSizeBytes } from '../support/item-size';

/**
 * Issue 22 item 5: 10,000 users waiting for global capacity, against the emulator. Each waiter
 * writes only its own line item; the items stay one size whoever waits; the line is read through
 * the index by four limiter instances (as four Lambda instances would) and served in tier order,
 * oldest first, a request near its deadline first.
 *
 * Every fifth waiter (2,000, the urgent ones among them) joins through the instances' own
 * `joinGlobalLine`, one write each; the other 8,000 are written in batches of 25 with the very item
 * a join writes (lineEntryFields; checked equal to the joined ones' below): on a loaded 2-core
 * machine 10,000 joins one by one took 31 s of dynalite, the batches ~7 s.
 */
const WAITERS = 10_000;
const INSTANCES = 4;
/** Joins in flight at once, and batches of 25 (the emulator's throughput, not a limit of the design). */
const AT_ONCE = 64;
const BATCHES_AT_ONCE = 8;
const joinsItself = (i: number) => i % 5 === 4;
const NOW = Date.UTC(2026, 10, 24, 10, 0, 0);
const URGENT_MS = 60_000;
const TIERS: readonly Tier[] = ['free', 'pro', 'enterprise'];
/** An SQS receipt handle on AWS is a few hundred characters (here 400). */
const HANDLE = 'h'.repeat(400);
/** Users' own limits out of the way: only the global one binds. */
const OPEN_TIERS = {
  free: { messagesPerMinute: 60_000, burst: 0, dailyTokens: 100_000_000 },
  pro: { messagesPerMinute: 60_000, burst: 0, dailyTokens: 100_000_000 },
  enterprise: { messagesPerMinute: 60_000, burst: 0, dailyTokens: 100_000_000 },
};

/**
 * Waiter i: a third of each tier, queued over the last 10 minutes (the newest last); every 2,500th
 * a free one queued 14.5 minutes ago (about 30 s from its deadline: urgent). Far-back waiters look again
 * in a minute, the rest in 5 s — as the processor writes them.
 */
function waiterOf(i: number): GlobalWaiter {
  const userId = `w-${String(i).padStart(5, '0')}`;
  const urgent = i % 2500 === 2499;
  const enqueuedAtEpochMs = urgent ? NOW - 870_000 - i : NOW - 600_000 + i * 60;
  return {
    userId,
    tier: urgent ? 'free' : TIERS[i % 3]!,
    enqueuedAtEpochMs,
    deadlineEpochMs: enqueuedAtEpochMs + 900_000,
    wakeUp: `${HANDLE}-${i}`,
    seenAtEpochMs: NOW,
    wakeAtEpochMs: NOW + (i % 7 === 0 ? 5_000 : 60_000),
    limit: 'requestsInFlight',
  };
}

/** A waiter's item as its own join at NOW writes it. */
const entryOf = (w: GlobalWaiter) =>
  marshall({ pk: lineKey(w.userId), ...lineEntryFields(w, NOW, URGENT_MS) }, { removeUndefinedValues: true });

/** Records the key of every write a client sends (SDK middleware; nothing is mocked). */
function recordWrites(client: DynamoDBClient, into: Map<string, number>): void {
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const input = args.input as { Key?: Record<string, AttributeValue> };
      if (/^(Update|Put|Delete)Item/.test(context.commandName ?? '')) {
        const pk = input.Key?.pk?.S ?? '?';
        into.set(pk, (into.get(pk) ?? 0) + 1);
      }
      return next(args);
    },
    { step: 'initialize', name: `recordWrites-${Math.random()}` },
  );
}

async function scanAll(client: DynamoDBClient, table: string): Promise<Record<string, AttributeValue>[]> {
  const items: Record<string, AttributeValue>[] = [];
  let start: Record<string, AttributeValue> | undefined;
  do {
    const page = await client.send(new ScanCommand({ TableName: table, ExclusiveStartKey: start }));
    items.push(...(page.Items ?? []));
    start = page.LastEvaluatedKey;
  } while (start);
  return items;
}

describe('the global line with 10,000 users waiting', () => {
  let res: TestResources;
  const writes = new Map<string, number>();
  let limiters: DynamoLimiter[];
  const all = Array.from({ length: WAITERS }, (_, i) => waiterOf(i));

  beforeAll(async () => {
    res = await createTestResources('gline');
    const config = parseLimitsConfig({ tiers: OPEN_TIERS, global: { requestsInFlight: 1, shards: 1 } });
    limiters = Array.from({ length: INSTANCES }, () => {
      const client = localDynamoClient(res.dynamodbEndpoint);
      recordWrites(client, writes);
      return new DynamoLimiter({
        client,
        tableName: res.tables.limits,
        tiers: config.tiers,
        global: config.global,
        timeoutMs: 30_000,
        inFlightLeaseMs: 60_000,
        globalWaitersTtlMs: 0,
        priorityUrgentMs: URGENT_MS,
      });
    });
    const joined = all.filter((_, i) => joinsItself(i));
    for (let i = 0; i < joined.length; i += AT_ONCE) {
      await Promise.all(
        joined.slice(i, i + AT_ONCE).map((w, k) => limiters[(i + k) % INSTANCES]!.joinGlobalLine(w)),
      );
    }
    const seeded = all.filter((_, i) => !joinsItself(i)).map(entryOf);
    const batches = Array.from({ length: Math.ceil(seeded.length / 25) }, (_, b) =>
      seeded.slice(b * 25, b * 25 + 25),
    );
    for (let b = 0; b < batches.length; b += BATCHES_AT_ONCE) {
      await Promise.all(
        batches.slice(b, b + BATCHES_AT_ONCE).map((batch) =>
          res.dynamo.send(
            new BatchWriteItemCommand({
              RequestItems: { [res.tables.limits]: batch.map((Item) => ({ PutRequest: { Item } })) },
            }),
          ),
        ),
      );
    }
  }, 240_000);

  it('writes each waiter only its own item, once: no item is written by every waiter', async () => {
    const joined = all.filter((_, i) => joinsItself(i));
    expect(writes.size).toBe(joined.length);
    expect([...writes.keys()].sort()).toEqual(joined.map((w) => lineKey(w.userId)).sort());
    expect(Math.max(...writes.values())).toBe(1);
    // What a join wrote is the item the others were seeded with.
    const items = new Map(
      (await scanAll(res.dynamo, res.tables.limits)).map((item) => [item.pk?.S, item] as const),
    );
    for (const w of joined) expect(unmarshall(items.get(lineKey(w.userId))!)).toEqual(unmarshall(entryOf(w)));
  });

  it('keeps every line item at most 546 bytes, spread over the 4 index partitions', async () => {
    const items = await scanAll(res.dynamo, res.tables.limits);
    expect(items).toHaveLength(WAITERS);
    // The largest, an urgent waiter's (its place holds its deadline too): pk 'gline#w-02499'
    // (2 + 13) + lb (2 + 1) + lo '0#<deadline>#2#<enqueued>#w-02499' (2 + 43) + t 'free' (1 + 4) +
    // at (2 + 8) + dl (2 + 8) + l 'requestsInFlight' (1 + 16) + h (1 + 405) + s (1 + 5) + wa
    // (2 + 6) + ttlEpochSeconds (15 + 6) = 546 bytes; numbers 1 byte per 2 significant digits,
    // + 1. Whatever the crowd: no attribute grows with it.
    const sizes = items.map((item) => itemSizeBytes(item));
    expect(Math.max(...sizes)).toBe(546);
    const perPartition = new Map<string, number>();
    for (const item of items) {
      const p = unmarshall(item)[LINE_PARTITION_ATTR] as string;
      perPartition.set(p, (perPartition.get(p) ?? 0) + 1);
    }
    expect(perPartition.size).toBe(LINE_BUCKETS);
    // 2,500 each if even: every bucket within 10 % of it.
    for (const n of perPartition.values()) expect(Math.abs(n - WAITERS / LINE_BUCKETS)).toBeLessThan(250);
  });

  it('reads the head of the line exactly: the first in priority order of all 10,000', async () => {
    const expected = priorityOrder(
      all.filter((w) => isLiveWaiter(w, NOW)),
      NOW,
      URGENT_MS,
    ).slice(0, NEAR_HEAD);
    // The urgent free ones first (earliest deadline first), then the oldest enterprise ones.
    expect(expected.slice(0, 5).map((w) => w.userId)).toEqual([
      'w-09999',
      'w-07499',
      'w-04999',
      'w-02499',
      'w-00002',
    ]);
    expect(expected[expected.length - 1]?.tier).toBe('enterprise');
    for (const limiter of limiters) {
      const seen = await limiter.global!.waiters({ fresh: true, nowMs: NOW });
      // The head of every bucket (10 live entries each), never the whole line.
      expect(seen).toHaveLength(LINE_BUCKETS * LINE_READ_LIMIT);
      const head = priorityOrder(seen, NOW, URGENT_MS).slice(0, NEAR_HEAD);
      expect(head.map((w) => w.userId)).toEqual(expected.map((w) => w.userId));
    }
  });

  it('serves the line in order: urgent first, then enterprise before pro before free, oldest first', async () => {
    const byId = new Map(all.map((w) => [w.userId, w]));
    /** A waiter's queued head, replayed as the processor does at `at`. */
    const replay = async (userId: string, at: number) => {
      const w = byId.get(userId)!;
      const requestId = `q-${userId}`;
      await limiters[0]!.enqueue(
        {
          userId,
          requestId,
          connectionId: 'c',
          contentKey: 'k',
          claimTier: w.tier,
          estimatedInputTokens: 10,
          enqueuedAtEpochMs: w.enqueuedAtEpochMs,
          expiresAtEpochMs: w.deadlineEpochMs,
        },
        10,
        w.enqueuedAtEpochMs,
      );
      const input: DecideInput = {
        userId,
        requestId,
        estimatedInputTokens: 10,
        maxTokens: 90,
        claimTier: w.tier,
        queue: {
          mode: 'replay',
          leaseUntilEpochMs: at + 60_000,
          enqueuedAtEpochMs: w.enqueuedAtEpochMs,
          deadlineEpochMs: w.deadlineEpochMs,
        },
      };
      return limiters[1]!.decide(input, at);
    };
    const live = all.filter((w) => isLiveWaiter(w, NOW));
    const order = priorityOrder(live, NOW, URGENT_MS).map((w) => w.userId);
    // The oldest pro one: not its turn, though a slot is free; far back, it looks again in a minute.
    const firstPro = order.find((u) => byId.get(u)!.tier === 'pro')!;
    const notYet = await replay(firstPro, NOW);
    expect(notYet).toMatchObject({ allowed: false, limit: 'global.requestsInFlight', retryAfterMs: 60_000 });
    // The first six in order go one after the other; each settle wakes the next.
    let at = NOW + 1;
    for (const [k, userId] of order.slice(0, 6).entries()) {
      const d = await replay(userId, at);
      expect(d.allowed).toBe(true);
      if (!d.allowed) return;
      const settled = await limiters[k % INSTANCES]!.reconcile(
        d.reservation,
        { inputTokens: 1, outputTokens: 1 },
        at + 1,
      );
      expect(settled.globalWakeUp).toBe(byId.get(order[k + 1]!)!.wakeUp);
      at += 2;
    }
    expect(order.slice(0, 6)).toEqual(['w-09999', 'w-07499', 'w-04999', 'w-02499', 'w-00002', 'w-00005']);
  }, 60_000);
});
