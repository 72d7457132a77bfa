import { randomUUID } from 'node:crypto';
import { type DynamoDBClient, GetItemCommand, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { marshall, unmarshall } from '@aws-sdk/util-dynamodb';
import { describe, expect, inject, it } from 'vitest';
import { itemSize } from '../../bench/capacity-units';
import { DynamoLimiter } from '../../lambda/adapters/dynamo-limiter';
import { ORPHAN_MARGIN_MS } from '../../lambda/adapters/limiter/global-counters';
import type {
  AllowedDecision,
  DecideInput,
  Decision,
  DeniedDecision,
} from '../../lambda/core/limiter/decision';
import type { GlobalLimits } from '../../lambda/core/limiter/global/limits';
import { recordedShares, SHARE_RECORDS_PER_SHARD } from '../../lambda/core/limiter/global/share-record';
import {
  GLOBAL_SHARE_FIELDS,
  GLOBAL_SHARES_ATTR,
  IN_FLIGHT_ATTR,
  RESERVATION_PREFIX,
  userKey,
} from '../../lambda/core/limiter/item/attributes';
import { parseLimitsConfig } from '../../lambda/core/limiter/policy';
import { localDynamoClient, localSqsClient } from '../../local/aws-clients';
import { createLocalResources } from '../../local/resources';
import { onEveryEmulator } from '../support/dynamodb-local';

/** A realistic clock (no round milliseconds: the leases have their usual 13 digits). */
const NOW = Date.UTC(2026, 10, 24, 10, 0, 0) + 123_457;
const LEASE_MS = 60_000;
/**
 * Past the lease and the sweep's margin: nothing else will give a share back now (a record keeps
 * its lease in whole seconds, rounded up).
 */
const AFTER_LEASE = NOW + LEASE_MS + ORPHAN_MARGIN_MS + 1000;
/** Users' own limits out of the way: only the global ones (and the shards' cap) bind. */
const OPEN_TIERS = {
  free: { messagesPerMinute: 60_000, burst: 0, dailyTokens: 100_000_000 },
  pro: { messagesPerMinute: 60_000, burst: 0, dailyTokens: 100_000_000 },
  enterprise: { messagesPerMinute: 60_000, burst: 0, dailyTokens: 100_000_000 },
};
/** Every global limit but requests in flight on, none binding. */
const WIDE = { hourlyMessages: 100_000, dailyTokens: 100_000_000, dailyCostUsd: 1_000 };

const admitted = (ds: Decision[]) => ds.filter((d): d is AllowedDecision => d.allowed);
const refused = (ds: Decision[]) => ds.filter((d): d is DeniedDecision => !d.allowed);

function describeShardCap(backend: string, endpoint: () => string) {
  describe(`global shard record cap on ${backend}`, () => {
    async function table(global: Partial<GlobalLimits>, n = 4) {
      const { tables } = await createLocalResources(
        localDynamoClient(endpoint()),
        localSqsClient(inject('sqsEndpoint')),
        `gcap-${randomUUID().slice(0, 8)}`,
      );
      const client = localDynamoClient(endpoint());
      const config = parseLimitsConfig({ tiers: OPEN_TIERS, global });
      const limiters = Array.from(
        { length: n },
        () =>
          new DynamoLimiter({
            client,
            tableName: tables.limits,
            tiers: config.tiers,
            global: config.global,
            timeoutMs: 30_000,
            inFlightLeaseMs: LEASE_MS,
          }),
      );
      const raw = async (key: string) => {
        const { Item } = await client.send(
          new GetItemCommand({ TableName: tables.limits, Key: marshall({ pk: key }), ConsistentRead: true }),
        );
        return Item;
      };
      return { limiters, raw, client, table: tables.limits, shards: config.global!.shards };
    }
    const ask = (userId: string, over: Partial<DecideInput> = {}): DecideInput => ({
      userId,
      requestId: randomUUID(),
      estimatedInputTokens: 10,
      maxTokens: 90,
      ...over,
    });
    /** `n` decisions at once, each of its own user (36-character ids), over every instance. */
    const burst = (limiters: DynamoLimiter[], n = 300, at = NOW) =>
      Promise.all(
        Array.from({ length: n }, (_, i) => limiters[i % limiters.length]!.decide(ask(randomUUID()), at)),
      );
    const totals = async (limiter: DynamoLimiter, nowMs = NOW) =>
      Object.fromEntries(
        ((await limiter.status('anyone', undefined, nowMs)).global ?? []).map((g) => [g.name, g.used]),
      );

    it('holds at most 13 shares a shard under a burst from 4 instances, whatever requestsInFlight is: exactly 26 of 300 over 2 shards; a release frees a record', async () => {
      const { limiters, raw } = await table({ ...WIDE, shards: 2 });
      const first = await burst(limiters);
      expect(admitted(first)).toHaveLength(2 * SHARE_RECORDS_PER_SHARD);
      // Full as for a global in-flight limit: the refusal the queue waits on (retry in a second).
      expect(refused(first)).toHaveLength(274);
      for (const d of refused(first))
        expect(d).toMatchObject({ limit: 'global.requestsInFlight', retryAfterMs: 1000 });
      for (const key of ['global#0', 'global#1']) {
        const item = unmarshall((await raw(key))!);
        expect(Object.keys(item[GLOBAL_SHARES_ATTR])).toHaveLength(13);
        expect(Object.keys(item[IN_FLIGHT_ATTR])).toHaveLength(13);
      }
      // Refused requests took nothing from the shards.
      expect(await totals(limiters[0]!)).toMatchObject({
        'global.hourlyMessages': 26,
        'global.dailyTokens': 2_600,
      });
      // Five replies end: exactly five of the next 300 get in, and the shards hold 26 records again.
      await Promise.all(
        admitted(first)
          .slice(0, 5)
          .map((d, i) =>
            limiters[i % 4]!.reconcile(d.reservation, { inputTokens: 10, outputTokens: 5 }, NOW + 1),
          ),
      );
      expect(admitted(await burst(limiters, 300, NOW + 2))).toHaveLength(5);
      const held = await Promise.all(
        ['global#0', 'global#1'].map(async (k) => recordedShares(unmarshall((await raw(k))!))),
      );
      expect(held.map((r) => r.length)).toEqual([13, 13]);
      // A record outlives its lapsed lease (the in-flight slot frees, the record waits for its
      // release or the sweep): the cap still holds.
      expect(admitted(await burst(limiters, 100, NOW + LEASE_MS + 10))).toHaveLength(0);
    }, 90_000);

    it('keeps a full shard within 2 KB with 36-character ids, every global limit on; bounded with 256-character user ids', async () => {
      // requestsInFlight 26 asks for ceil(26 / 13) = 2 shards, as configured.
      const sized = async (userId: () => string, requestId: () => string) => {
        const { limiters, raw, shards } = await table({ ...WIDE, requestsInFlight: 26, shards: 1 }, 1);
        expect(shards).toBe(2);
        for (let i = 0; i < 26; i++) {
          const d = await limiters[0]!.decide(ask(userId(), { requestId: requestId() }), NOW);
          expect(d.allowed).toBe(true);
        }
        expect((await limiters[0]!.decide(ask(userId()), NOW)).allowed).toBe(false);
        return Math.max(
          ...(await Promise.all(['global#0', 'global#1'].map(async (k) => itemSize((await raw(k))!)))),
        );
      };
      const realistic = await sized(randomUUID, randomUUID);
      expect(realistic).toBeLessThanOrEqual(2048);
      expect(realistic).toBe(1_910);
      const long = await sized(
        () => `u${randomUUID().replaceAll('-', '')}`.padEnd(256, 'x'),
        () => randomUUID().replaceAll('-', '').padEnd(64, 'r'),
      );
      expect(long).toBe(5_498);
    }, 90_000);

    it('releases and sweeps shares recorded before the compact records (ga_<id>), and records new ones compactly beside them', async () => {
      const {
        limiters,
        raw,
        client,
        table: tableName,
      } = await table({ hourlyMessages: 100, dailyTokens: 10_000, shards: 1 }, 1);
      const limiter = limiters[0]!;
      const a = await limiter.decide(ask('u-a'), NOW);
      const b = await limiter.decide(ask('u-b'), NOW);
      if (!a.allowed || !b.allowed) throw new Error('both are admitted');
      await toFirstFormat(client, tableName, unmarshall((await raw('global#0'))!));
      const old = recordedShares(unmarshall((await raw('global#0'))!));
      expect(old.map((s) => [s.userId, s.legacy]).sort()).toEqual([
        ['u-a', true],
        ['u-b', true],
      ]);
      // A's settle: its 70 unused tokens go back once, its record goes.
      await limiter.reconcile(a.reservation, { inputTokens: 10, outputTokens: 20 }, NOW + 1);
      expect(await totals(limiter)).toMatchObject({ 'global.hourlyMessages': 2, 'global.dailyTokens': 130 });
      // B's user write is lost (a crash between the shard write and the user's): the sweep gives
      // its whole share back, message too, once.
      await client.send(
        new UpdateItemCommand({
          TableName: tableName,
          Key: marshall({ pk: userKey('u-b') }),
          UpdateExpression: 'REMOVE #r',
          ExpressionAttributeNames: { '#r': `${RESERVATION_PREFIX}${b.reservation.requestId}` },
        }),
      );
      expect((await limiter.releaseOrphanedGlobalShares(AFTER_LEASE)).released).toEqual([
        { userId: 'u-b', requestId: b.reservation.requestId },
      ]);
      expect((await limiter.releaseOrphanedGlobalShares(AFTER_LEASE + 60_000)).released).toEqual([]);
      expect(await totals(limiter, AFTER_LEASE)).toMatchObject({
        'global.hourlyMessages': 1,
        'global.dailyTokens': 30,
      });
      expect(recordedShares(unmarshall((await raw('global#0'))!))).toEqual([]);
      // A new share is recorded in the compact map.
      const c = await limiter.decide(ask('u-c'), AFTER_LEASE);
      expect(c.allowed).toBe(true);
      const item = unmarshall((await raw('global#0'))!);
      expect(Object.keys(item[GLOBAL_SHARES_ATTR])).toEqual([(c as AllowedDecision).reservation.requestId]);
    }, 60_000);
  });
}

/** Rewrites a shard's compact records as the first format wrote them: one `ga_<id>` attribute each. */
async function toFirstFormat(client: DynamoDBClient, table: string, item: Record<string, unknown>) {
  const f = GLOBAL_SHARE_FIELDS;
  const names: Record<string, string> = { '#gr': GLOBAL_SHARES_ATTR };
  const values: Record<string, unknown> = {};
  const sets = recordedShares(item).map((s, i) => {
    names[`#a${i}`] = `ga_${s.requestId}`;
    values[`:a${i}`] = {
      [f.userId]: s.userId,
      [f.tokens]: s.tokens,
      [f.costMicroUsd]: s.costMicroUsd,
      [f.weight]: s.weight,
      [f.hour]: s.hour,
      [f.day]: s.day,
      [f.leaseUntilEpochMs]: s.leaseUntilEpochMs,
    };
    return `#a${i} = :a${i}`;
  });
  await client.send(
    new UpdateItemCommand({
      TableName: table,
      Key: marshall({ pk: item.pk }),
      UpdateExpression: `SET ${sets.join(', ')} REMOVE #gr`,
      ExpressionAttributeNames: names,
      ExpressionAttributeValues: marshall(values),
    }),
  );
}

onEveryEmulator(describeShardCap);
