import { GLOBAL_SHARE_FIELDS, GLOBAL_SHARE_PREFIX } from '../item/attributes';
import type { GlobalAmounts } from '../kinds/global-part';

export { GLOBAL_SHARE_PREFIX } from '../item/attributes';

/** What a global admission took, kept with the reservation so the settle gives back to the same shard. */
export interface GlobalReservation extends GlobalAmounts {
  readonly shard: number;
  /** The hour and day it was counted in. */
  readonly hour: number;
  readonly day: number;
}

/** A share as its shard records it (`ga_<requestId>`, see planGlobalAdmission). */
export interface RecordedShare extends GlobalAmounts {
  readonly requestId: string;
  readonly userId: string;
  readonly hour: number;
  readonly day: number;
  readonly leaseUntilEpochMs: number;
}

/** The attribute holding a request's share record. */
export const shareRecordName = (requestId: string) => `${GLOBAL_SHARE_PREFIX}${requestId}`;

/** The stored form of a share record (its request id is in the attribute name). */
export function shareRecordValue(share: RecordedShare): Record<string, unknown> {
  const f = GLOBAL_SHARE_FIELDS;
  return {
    [f.userId]: share.userId,
    [f.tokens]: share.tokens,
    [f.costMicroUsd]: share.costMicroUsd,
    [f.weight]: share.weight,
    [f.hour]: share.hour,
    [f.day]: share.day,
    [f.leaseUntilEpochMs]: share.leaseUntilEpochMs,
  };
}

/** The shares a shard item records (`ga_<id>`). */
export function recordedShares(item: Record<string, unknown> | undefined): RecordedShare[] {
  const f = GLOBAL_SHARE_FIELDS;
  const shares: RecordedShare[] = [];
  for (const [key, value] of Object.entries(item ?? {})) {
    if (!key.startsWith(GLOBAL_SHARE_PREFIX) || typeof value !== 'object' || value === null) continue;
    const v = value as Record<string, unknown>;
    const n = (x: unknown) => (typeof x === 'number' ? x : 0);
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
    });
  }
  return shares;
}
