import { describe, expect, it } from 'vitest';
import { GLOBAL_LIMITS, GLOBAL_PARTS, globalPart } from '../../../lambda/core/limiter/global/limits';
import { waiterFromItem, waiterValue } from '../../../lambda/core/limiter/global/line';
import { recordedShares, shareRecordValue } from '../../../lambda/core/limiter/global/share-record';
import {
  QUEUED_FIELDS,
  RESERVATION_FIELDS,
  USAGE_DAY_ATTR,
  USAGE_INDEX_PROJECTION,
  WAITER_FIELDS,
} from '../../../lambda/core/limiter/item/attributes';
import { queuedItemValue, reservationValue, snapshotFromItem } from '../../../lambda/core/limiter/item/codec';
import { settledUsageOf } from '../../../lambda/core/limiter/item/day-codec';
import type { PendingReservation } from '../../../lambda/core/limiter/item/state';
import { DAY_COUNTERS } from '../../../lambda/core/limiter/kinds/daily-usage';
import { LIMIT_KINDS } from '../../../lambda/core/limiter/kinds/registry';

describe('the item codec', () => {
  it("keeps a waiting request's place under short names, without its content, and reads it back", () => {
    const request = {
      requestId: 'req',
      connectionId: 'L0SM9cOFvHcCIhw=',
      contentKey: 'k1',
      maxTokens: 500,
      model: 'echo',
      claimTier: 'pro' as const,
      claimTeam: 'eng',
      estimatedInputTokens: 2_000,
      enqueuedAtEpochMs: 1_764_000_000_000,
      expiresAtEpochMs: 1_764_000_960_000,
      notBeforeEpochMs: 1_764_000_060_000,
    };
    const stored = queuedItemValue(request);
    // Every stored name is a declared one: no long name, no text.
    expect(Object.keys(stored).sort()).toEqual(Object.values(QUEUED_FIELDS).sort());
    expect(JSON.stringify(stored).length).toBeLessThan(140);
    expect(snapshotFromItem({ pk: 'user#u', q_req: stored }).queued.req).toEqual(request);
    // A record without its content key (or connection) is not a waiting request's place.
    const { [QUEUED_FIELDS.contentKey]: _key, ...keyless } = stored;
    expect(snapshotFromItem({ pk: 'user#u', q_old: keyless }).queued).toEqual({});
    // A team claim that could not name a team is not read as one; the place is still read.
    const badTeam = { ...stored, [QUEUED_FIELDS.claimTeam]: 'no team#1' };
    const { claimTeam: _team, ...teamless } = request;
    expect(snapshotFromItem({ pk: 'user#u', q_req: badTeam }).queued.req).toEqual(teamless);
  });

  it('reads a reservation marker into readable fields and writes it back under the same stored names', () => {
    const stored = { d: 20_000, m: 657, c: 602, mo: 'echo', i: 10, o: 1000, e: 1, ce: 2, a: 'runner-1' };
    const pending = snapshotFromItem({ pk: 'user#u', r_req: stored }).reservations.req;
    expect(pending).toEqual({
      // Each budget's window under the field its kind declares (daily: d, monthly: m).
      windows: { d: 20_000, m: 657 },
      day: 20_000,
      month: 657,
      costMicroUsd: 602,
      model: 'echo',
      inputTokens: 10,
      outputAllowance: 1000,
      tokenEpoch: 1,
      costEpoch: 2,
      claim: 'runner-1',
    } satisfies PendingReservation);
    expect(reservationValue(pending as PendingReservation)).toEqual(stored);
  });

  it('keeps a marker without its optional fields without them, and ignores one that is not a marker', () => {
    const snap = snapshotFromItem({ pk: 'user#u', r_old: { d: 1, i: 2, o: 3 }, r_bad: { d: 1 } });
    expect(snap.reservations).toEqual({
      old: { windows: { d: 1 }, day: 1, inputTokens: 2, outputAllowance: 3 },
    });
  });

  it('stores the fields under the short names the table has always had (no storage migration)', () => {
    expect(Object.values(RESERVATION_FIELDS)).toEqual(['d', 'm', 'c', 'mo', 'i', 'o', 'e', 'ce', 'a']);
    expect(Object.values(WAITER_FIELDS)).toEqual(['t', 'at', 'dl', 'l', 'h', 's', 'wa', 'q', 'sc']);
  });

  it('reads a closed day of history into readable fields', () => {
    const snap = snapshotFromItem({ pk: 'user#u', hist: { 7: { t: 1, c: 2, m: 3, q: 4 } } });
    expect(snap.history).toEqual({ 7: { tokens: 1, costMicroUsd: 2, messages: 3, queued: 4 } });
  });
});

describe('the global line and shards codec', () => {
  it('writes a waiter and reads it back', () => {
    const waiter = {
      userId: 'u1',
      tier: 'pro' as const,
      enqueuedAtEpochMs: 5,
      deadlineEpochMs: 9,
      limit: 'dailyTokens' as const,
      wakeUp: 'handle',
      seenAtEpochMs: 6,
      wakeAtEpochMs: 8,
    };
    expect(waiterFromItem({ pk: 'gline#u1', ...waiterValue(waiter) })).toEqual(waiter);
    expect(waiterFromItem({ pk: 'user#u1', ...waiterValue(waiter) })).toBeUndefined();
  });

  it('reads a share record', () => {
    const [share] = recordedShares({ ga_r1: { u: 'u1', t: 10, c: 20, w: 2, h: 3, d: 4, l: 99 } });
    expect(share).toEqual({
      requestId: 'r1',
      userId: 'u1',
      tokens: 10,
      costMicroUsd: 20,
      weight: 2,
      hour: 3,
      day: 4,
      leaseUntilEpochMs: 99,
      legacy: true,
    });
  });

  it('writes and reads a compact share record (gr), the day only when it is not the hour’s', () => {
    const share = { userId: 'u1', tokens: 10, costMicroUsd: 20, weight: 2, hour: 49, day: 2 };
    const value = shareRecordValue({ ...share, leaseUntilEpochMs: 98_001 });
    expect(value).toEqual(['u1', 99, 10, 20, 2, 49]);
    const other = shareRecordValue({ ...share, day: 3, leaseUntilEpochMs: 5000 });
    expect(other).toEqual(['u1', 5, 10, 20, 2, 49, 3]);
    const item = { gr: { r1: value, r2: other }, ga_r0: { u: 'u0', t: 1, c: 2, w: 1, h: 3, d: 0, l: 7 } };
    expect(recordedShares(item)).toEqual([
      { requestId: 'r1', ...share, leaseUntilEpochMs: 99_000 },
      { requestId: 'r2', ...share, day: 3, leaseUntilEpochMs: 5000 },
      {
        requestId: 'r0',
        userId: 'u0',
        tokens: 1,
        costMicroUsd: 2,
        weight: 1,
        hour: 3,
        day: 0,
        leaseUntilEpochMs: 7,
        legacy: true,
      },
    ]);
    expect(snapshotFromItem({ pk: 'global#0', ...item }).shareRecords).toEqual(['r1', 'r2']);
    expect(snapshotFromItem({ pk: 'global#0' }).shareRecords).toBeUndefined();
  });

  it('takes its limits from the kinds’ global parts', () => {
    expect(GLOBAL_LIMITS).toEqual(GLOBAL_PARTS.map((p) => p.kind));
    for (const name of GLOBAL_LIMITS) expect(globalPart(name).kind).toBe(name);
  });

  it('indexes the settled usage by none of the counters a decision moves (a decision writes no index entry)', () => {
    const counters = Object.values(DAY_COUNTERS).flatMap((c) => [c.window, c.count]);
    const decided = new Set([...counters, ...LIMIT_KINDS.flatMap((k) => k.attributes)]);
    expect([USAGE_DAY_ATTR, ...USAGE_INDEX_PROJECTION].filter((a) => decided.has(a))).toEqual([]);
    expect(settledUsageOf({ pk: 'user#u', [USAGE_DAY_ATTR]: '7#1', st: 5, sc: 2, sm: 1 })).toEqual({
      key: '7#1',
      tokens: 5,
      costMicroUsd: 2,
      messages: 1,
    });
  });
});
