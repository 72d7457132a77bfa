import { dayNumber } from '../windows';

/** Buckets today's usage index is spread over, so no index partition takes every user's writes. */
export const USAGE_BUCKETS = 16;

/**
 * A user's key in the usage index for the day of `nowMs`: `<day>#<bucket>`, the bucket a hash of
 * the user id (FNV-1a), so `admin top` reads 16 small partitions instead of one hot one.
 */
export function usageDayKey(userId: string, nowMs: number): string {
  let hash = 0x811c9dc5;
  for (let i = 0; i < userId.length; i++) hash = Math.imul(hash ^ userId.charCodeAt(i), 0x01000193) >>> 0;
  return `${dayNumber(nowMs)}#${hash % USAGE_BUCKETS}`;
}
