import { randomUUID } from 'node:crypto';
import { type ConsumedCapacity, GetItemCommand } from '@aws-sdk/client-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { DynamoLimiter } from '../../lambda/adapters/dynamo-limiter';
import { USAGE_INDEX } from '../../lambda/adapters/limiter/usage-index';
import type { AllowedDecision } from '../../lambda/core/limiter/decision';
import {
  KEY_ATTR,
  USAGE_DAY_ATTR,
  USAGE_INDEX_PROJECTION,
  userKey,
} from '../../lambda/core/limiter/item/attributes';
import { USAGE_BUCKETS } from '../../lambda/core/limiter/plan/usage-key';
import { parseTierLimits } from '../../lambda/core/limiter/policy';
import { localDynamoClient, localSqsClient } from '../../local/aws-clients';
import { createLocalResources } from '../../local/resources';
import { countCalls } from '../support/call-counter';
import { onEveryEmulator } from '../support/dynamodb-local';
import { bare } from '../support/settle-outcome';

const NOW = Date.UTC(2026, 11, 3, 10, 0, 0);
const tiers = parseTierLimits({ tiers: { pro: { dailyTokens: 1_000_000, defaultMaxOutputTokens: 500 } } });

type Item = Record<string, unknown>;

/** The item's entry in `byDayUsage` as DynamoDB would hold it, or undefined when it is not in it. */
function indexEntry(item: Item | undefined) {
  if (!item || typeof item[USAGE_DAY_ATTR] !== 'string') return undefined;
  return {
    keys: JSON.stringify([item[USAGE_DAY_ATTR]]),
    projected: JSON.stringify([item[KEY_ATTR], ...USAGE_INDEX_PROJECTION.map((a) => item[a] ?? null)]),
  };
}

/**
 * Index writes DynamoDB makes for one change of a table item (AWS, "Provisioned throughput
 * considerations for Global Secondary Indexes"): entering or leaving the index 1; a change of the
 * index's partition or sort key a delete and a put, 2; a change of a projected attribute only 1.
 */
function indexWrites(before: Item | undefined, after: Item | undefined): number {
  const [b, a] = [indexEntry(before), indexEntry(after)];
  if (!b && !a) return 0;
  if (!b || !a) return 1;
  if (b.keys !== a.keys) return 2;
  return b.projected !== a.projected ? 1 : 0;
}

function describeUsageIndex(backend: string, endpoint: () => string) {
  describe(`the usage index on ${backend}`, () => {
    let tableName: string;
    const client = () => localDynamoClient(endpoint());
    const limiter = (on = client()) => new DynamoLimiter({ client: on, tableName, tiers, timeoutMs: 30_000 });
    const ask = (userId: string, requestId: string = randomUUID()) => ({
      userId,
      requestId,
      claimTier: 'pro' as const,
      estimatedInputTokens: 10,
      maxTokens: 100,
    });
    const read = async (userId: string): Promise<Item | undefined> => {
      const out = await client().send(
        new GetItemCommand({
          TableName: tableName,
          Key: { [KEY_ATTR]: { S: userKey(userId) } },
          ConsistentRead: true,
        }),
      );
      return out.Item ? unmarshall(out.Item) : undefined;
    };
    /**
     * The index's units as DynamoDB reports them (`ReturnConsumedCapacity: 'INDEXES'`) on the
     * limiter's client: DynamoDB Local counts each index write as AWS bills it; dynalite leaves
     * index writes out, so there only the item-based count below is checked.
     */
    let reportedUnits = 0;
    const metered = () => {
      const c = client();
      c.middlewareStack.add(
        (next) => async (args) => {
          const out = await next({
            ...args,
            input: { ...(args.input as object), ReturnConsumedCapacity: 'INDEXES' },
          });
          const consumed = (out.output as { ConsumedCapacity?: ConsumedCapacity }).ConsumedCapacity;
          reportedUnits += consumed?.GlobalSecondaryIndexes?.[USAGE_INDEX]?.CapacityUnits ?? 0;
          return out;
        },
        { step: 'initialize', name: 'indexUnits' },
      );
      return c;
    };
    /** Runs `step` and counts the index writes its change of the user's item costs. */
    const counted = async <T>(
      userId: string,
      step: () => Promise<T>,
    ): Promise<{ result: T; writes: number }> => {
      const before = await read(userId);
      reportedUnits = 0;
      const result = await step();
      const writes = indexWrites(before, await read(userId));
      // Each entry is under 1 KB: one unit per index write, as DynamoDB Local reports them.
      if (backend === 'DynamoDB Local') expect(reportedUnits).toBe(writes);
      return { result, writes };
    };

    beforeAll(async () => {
      const resources = await createLocalResources(
        client(),
        localSqsClient(inject('sqsEndpoint')),
        `usage-${randomUUID().slice(0, 8)}`,
      );
      tableName = resources.tables.limits;
    });

    it('costs the index no write for a decision and 1 for each settle (its entry updated in place)', async () => {
      const store = limiter(metered());
      const user = `u-${randomUUID()}`;
      const first = await counted(user, () => store.decide(ask(user), NOW));
      expect(first.result.allowed).toBe(true);
      expect(first.writes).toBe(0); // an admission moves `tu`, which is not in the index
      const second = await counted(user, () => store.decide(ask(user), NOW + 1));
      expect(second.result.allowed).toBe(true);
      expect(second.writes).toBe(0);
      const a = (first.result as AllowedDecision).reservation;
      const b = (second.result as AllowedDecision).reservation;
      // The day's first settle puts the entry (`ud`, `st`): it enters the index.
      const settle = await counted(user, () =>
        store.reconcile(a, { inputTokens: 10, outputTokens: 5 }, NOW + 2).then(bare),
      );
      expect(settle.result).toEqual({ applied: true });
      expect(settle.writes).toBe(1);
      // Every later settle that used tokens changes projected numbers only: 1 write, in place.
      const exact = await counted(user, () =>
        store
          .reconcile(b, { inputTokens: b.inputTokens, outputTokens: b.outputAllowance }, NOW + 3)
          .then(bare),
      );
      expect(exact.result).toEqual({ applied: true });
      expect(exact.writes).toBe(1);
      expect(await read(user)).toMatchObject({ st: 15 + 110, sc: 67, sm: 2 });
      // An admission after it, and a refusal (a duplicate of a request in flight): none.
      const third = await counted(user, () => store.decide(ask(user, 'same'), NOW + 4));
      expect(third.writes).toBe(0);
      const refused = await counted(user, () => store.decide(ask(user, 'same'), NOW + 5));
      expect(refused.result).toMatchObject({ allowed: false, limit: 'duplicate' });
      expect(refused.writes).toBe(0);
      // A reply that used nothing (a failed one) is no reply: the entry stays.
      const unused = (third.result as AllowedDecision).reservation;
      const failed = await counted(user, () =>
        store.reconcile(unused, { inputTokens: 0, outputTokens: 0 }, NOW + 6),
      );
      expect(failed.writes).toBe(0);
      // The next day's first settle moves the entry to that day's key: a delete and a put.
      const tomorrow = NOW + 86_400_000;
      const next = await counted(user, () => store.decide(ask(user), tomorrow));
      expect(next.writes).toBe(0);
      const moved = await counted(user, () =>
        store.reconcile(
          (next.result as AllowedDecision).reservation,
          { inputTokens: 10, outputTokens: 5 },
          tomorrow,
        ),
      );
      expect(moved.writes).toBe(2);
      expect(await read(user)).toMatchObject({ st: 15, sm: 1 });
    });

    it('top orders users exactly by tokens and by messages, across buckets', async () => {
      const store = limiter();
      const day = NOW + 10_000;
      // 12 users, user i sends i + 1 messages that each use 7 × (i + 1) + 3 tokens: distinct totals.
      const users = Array.from({ length: 12 }, (_, i) => ({ id: `top-${i}-${randomUUID()}`, n: i + 1 }));
      for (const { id, n } of users) {
        for (let m = 0; m < n; m++) {
          const d = (await store.decide(ask(id), day + m)) as AllowedDecision;
          expect(d.allowed).toBe(true);
          await store.reconcile(d.reservation, { inputTokens: 3, outputTokens: 7 * n }, day + m);
        }
      }
      const tokens = (n: number) => n * (7 * n + 3);
      const admin = client();
      const calls = countCalls(admin);
      const byTokens = await limiter(admin).top('tokens', 5, day + 60_000);
      // One Query per bucket of today, no scan, nothing else.
      expect(calls.byCommand()).toEqual({ QueryCommand: USAGE_BUCKETS });
      expect(byTokens.users.map((u) => [u.userId, u.tokens])).toEqual(
        [...users]
          .reverse()
          .slice(0, 5)
          .map((u) => [u.id, tokens(u.n)]),
      );
      const byMessages = await store.top('messages', 3, day + 60_000);
      expect(byMessages.users.map((u) => [u.userId, u.messages])).toEqual(
        [...users]
          .reverse()
          .slice(0, 3)
          .map((u) => [u.id, u.n]),
      );
      // The users' usage keys are spread over several of today's buckets, all of which `top` read.
      const keys = new Set(await Promise.all(users.map(async (u) => (await read(u.id))?.[USAGE_DAY_ATTR])));
      expect(keys.size).toBeGreaterThan(1);
    }, 60_000);
  });
}

onEveryEmulator(describeUsageIndex);
