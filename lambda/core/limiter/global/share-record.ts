import type { ExpressionWriter } from '../expression';
import {
  GLOBAL_SHARE_ENTRY,
  GLOBAL_SHARE_FIELDS,
  GLOBAL_SHARE_PREFIX,
  GLOBAL_SHARES_ATTR,
  IN_FLIGHT_ATTR,
} from '../item/attributes';
import type { LimiterSnapshot } from '../item/state';
import type { GlobalAmounts } from '../kinds/global-part';
import type { QuotaTaken } from './model-quotas';

export { GLOBAL_SHARE_PREFIX, GLOBAL_SHARES_ATTR } from '../item/attributes';

/**
 * The most share records one shard holds at once (`size(gr)`, enforced in its admission's
 * condition): a shard at it is full for the router, as at its share of a global in-flight limit.
 * Chosen so a full shard stays within 2 KB (2 write units a write) with realistic ids: with
 * 36-character user and request ids a request costs the shard ~143 bytes (its `fl` lease ~45, its
 * record ~98), and 13 of them with every global limit on are 1,910 bytes
 * (test/integration/global-shard-cap.test.ts). Worst case, 256-character user ids and 64-character
 * request ids: 5,498 bytes (6 WU) — still bounded whatever the configuration (docs/limiter.md).
 */
export const SHARE_RECORDS_PER_SHARD = 13;

/** What a global admission took, kept with the reservation so the settle gives back to the same shard. */
export interface GlobalReservation extends GlobalAmounts {
  readonly shard: number;
  /** The hour and day it was counted in. */
  readonly hour: number;
  readonly day: number;
  /**
   * What it counted against its model's account quota, and in which minute (not in the share
   * record: an orphan is swept minutes after its lease, when that minute is long over).
   */
  readonly quota?: QuotaTaken;
}

/** A share as its shard records it (`gr.<requestId>`, see planGlobalAdmission). */
export interface RecordedShare extends GlobalAmounts {
  readonly requestId: string;
  readonly userId: string;
  readonly hour: number;
  readonly day: number;
  readonly leaseUntilEpochMs: number;
  /** Written before issue 22 as a top-level `ga_<id>` attribute: released and swept there. */
  readonly legacy?: boolean;
}

/** The attribute holding a request's share record of the first format (`ga_<id>`; read, never written). */
export const legacyShareRecordName = (requestId: string) => `${GLOBAL_SHARE_PREFIX}${requestId}`;

/**
 * The stored form of a share record, the value of `gr.<requestId>`: a list, no field names, the
 * lease in whole seconds (rounded up: the sweep waits minutes past it), the day only when it is
 * not the hour's. About 40 bytes plus the user id.
 */
export function shareRecordValue(share: Omit<RecordedShare, 'requestId' | 'legacy'>): unknown[] {
  const e: unknown[] = [];
  e[GLOBAL_SHARE_ENTRY.userId] = share.userId;
  e[GLOBAL_SHARE_ENTRY.leaseUntilEpochSeconds] = Math.ceil(share.leaseUntilEpochMs / 1000);
  e[GLOBAL_SHARE_ENTRY.tokens] = share.tokens;
  e[GLOBAL_SHARE_ENTRY.costMicroUsd] = share.costMicroUsd;
  e[GLOBAL_SHARE_ENTRY.weight] = share.weight;
  e[GLOBAL_SHARE_ENTRY.hour] = share.hour;
  if (share.day !== Math.floor(share.hour / 24)) e[GLOBAL_SHARE_ENTRY.day] = share.day;
  return e;
}

/** The ids of the compact records (`gr`) in a stored shard item; undefined when it has no map yet. */
export function shareRecordIds(item: Record<string, unknown> | undefined): string[] | undefined {
  const map = item?.[GLOBAL_SHARES_ATTR];
  return typeof map === 'object' && map !== null && !Array.isArray(map) ? Object.keys(map) : undefined;
}

/** The shares a shard item records: its `gr` entries, and any `ga_<id>` of the first format. */
export function recordedShares(item: Record<string, unknown> | undefined): RecordedShare[] {
  const n = (x: unknown) => (typeof x === 'number' ? x : 0);
  const shares: RecordedShare[] = [];
  const map = item?.[GLOBAL_SHARES_ATTR];
  if (typeof map === 'object' && map !== null && !Array.isArray(map)) {
    const p = GLOBAL_SHARE_ENTRY;
    for (const [requestId, value] of Object.entries(map)) {
      if (!Array.isArray(value) || typeof value[p.userId] !== 'string') continue;
      const hour = n(value[p.hour]);
      shares.push({
        requestId,
        userId: value[p.userId],
        tokens: n(value[p.tokens]),
        costMicroUsd: n(value[p.costMicroUsd]),
        weight: n(value[p.weight]),
        hour,
        day: typeof value[p.day] === 'number' ? value[p.day] : Math.floor(hour / 24),
        leaseUntilEpochMs: n(value[p.leaseUntilEpochSeconds]) * 1000,
      });
    }
  }
  const f = GLOBAL_SHARE_FIELDS;
  for (const [key, value] of Object.entries(item ?? {})) {
    if (!key.startsWith(GLOBAL_SHARE_PREFIX) || typeof value !== 'object' || value === null) continue;
    const v = value as Record<string, unknown>;
    const userId = v[f.userId];
    const lease = v[f.leaseUntilEpochMs];
    if (typeof userId !== 'string' || typeof lease !== 'number') continue;
    shares.push({
      requestId: key.slice(GLOBAL_SHARE_PREFIX.length),
      userId,
      tokens: n(v[f.tokens]),
      costMicroUsd: n(v[f.costMicroUsd]),
      weight: n(v[f.weight]),
      hour: n(v[f.hour]),
      day: n(v[f.day]),
      leaseUntilEpochMs: lease,
      legacy: true,
    });
  }
  return shares;
}

/**
 * What the share took, and whose it is, as an entry of the shard's `gr` map until its release (or
 * the sweep's) takes it out: the `fl` entry alone may be dropped as lapsed by a later admission,
 * and it says nothing of the counts — this says what to give back when the user's own write never
 * made the share its own. `size(gr) < SHARE_RECORDS_PER_SHARD` bounds the records, so the item,
 * whatever `requestsInFlight` is (a shard at the cap fails here and the router tries another);
 * `attribute_not_exists(gr.<id>)`: written once per request, as `fl.<id>` guards it. The first
 * record makes the map, under `attribute_not_exists(gr)` (a belief without it was read before).
 */
export function recordShare(
  w: ExpressionWriter,
  belief: LimiterSnapshot,
  requestId: string,
  share: Omit<RecordedShare, 'requestId' | 'legacy'>,
): void {
  const gr = w.name(GLOBAL_SHARES_ATTR);
  const record = shareRecordValue(share);
  if (belief.shareRecords === undefined) {
    w.condition(`attribute_not_exists(${gr})`);
    w.set(`${gr} = ${w.value({ [requestId]: record })}`);
    return;
  }
  const entry = `${gr}.${w.name(requestId)}`;
  w.condition(`size(${gr}) < ${w.value(SHARE_RECORDS_PER_SHARD)}`);
  w.condition(`attribute_not_exists(${entry})`);
  w.set(`${entry} = ${w.value(record)}`);
}

/** Takes out the request's record (`gr.<id>`, conditioned on it: once) and its `fl` entry. */
export function removeRecord(w: ExpressionWriter, belief: LimiterSnapshot, requestId: string): void {
  const entry = `${w.name(GLOBAL_SHARES_ATTR)}.${w.name(requestId)}`;
  w.condition(`attribute_exists(${entry})`);
  w.remove(entry);
  removeEntry(w, belief, requestId);
}

/** The request's `fl` entry out, if it is still there (a lapsed one the next admission dropped). */
export function removeEntry(w: ExpressionWriter, belief: LimiterSnapshot, requestId: string): void {
  // Only a map that exists may have a key removed; pinned either way.
  const fl = w.name(IN_FLIGHT_ATTR);
  if (belief.inFlight !== undefined) {
    w.condition(`attribute_exists(${fl})`);
    w.remove(`${fl}.${w.name(requestId)}`);
  } else {
    w.condition(`attribute_not_exists(${fl})`);
  }
}
