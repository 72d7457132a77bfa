import { dayNumber } from '../windows';

/**
 * What the usage index `byDayUsage` is sized for (SPEC §9.2, docs/performance.md "The usage
 * index"). Its sort key is today's tokens (`tu`), which the admission's reservation and the
 * settle's reconciliation both move: DynamoDB deletes and puts the entry, 2 index writes each
 * (test/integration/usage-index.test.ts counts them). Every write lands on the partition of the
 * user's bucket, and a throttled index partition throttles the table's writes, i.e. admissions.
 */
export const USAGE_INDEX_MODEL = {
  /** The scale model: chat requests a second across the stack (100,000 users). */
  requestsPerSecond: 5_000,
  /** Index writes a request causes at most: admission 2, settle 2 (entries < 1 KB: 1 unit each). */
  indexWritesPerRequest: 4,
  /** DynamoDB's write limit of one partition (one partition-key value of the index at least). */
  partitionWritesPerSecond: 1_000,
  /** The model may use a tenth of a partition's rate: 10× the model still fits under it. */
  headroom: 10,
} as const;

/** Smallest power of two ≥ n. */
const powerOfTwoAtLeast = (n: number) => 2 ** Math.ceil(Math.log2(Math.max(1, n)));

/**
 * Buckets today's usage index is spread over: the model's index writes a second over a tenth of a
 * partition's rate, rounded up to a power of two (5,000 × 4 / 100 = 200 → 256). Every count ≥ 16
 * keeps `top` finding entries written with the old 16 buckets (their keys are among 0…255).
 */
export const USAGE_BUCKETS = powerOfTwoAtLeast(
  (USAGE_INDEX_MODEL.requestsPerSecond *
    USAGE_INDEX_MODEL.indexWritesPerRequest *
    USAGE_INDEX_MODEL.headroom) /
    USAGE_INDEX_MODEL.partitionWritesPerSecond,
);

/** The user's bucket: a hash of the user id (FNV-1a) modulo USAGE_BUCKETS. */
export function usageBucket(userId: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < userId.length; i++) hash = Math.imul(hash ^ userId.charCodeAt(i), 0x01000193) >>> 0;
  return hash % USAGE_BUCKETS;
}

/** The index's partition keys for the day of `nowMs`, one per bucket: what `admin top` queries. */
export function usageDayKeys(nowMs: number): string[] {
  const day = dayNumber(nowMs);
  return Array.from({ length: USAGE_BUCKETS }, (_, b) => `${day}#${b}`);
}

/**
 * A user's key in the usage index for the day of `nowMs`: `<day>#<bucket>`, so `admin top` reads
 * USAGE_BUCKETS small partitions instead of one hot one.
 */
export function usageDayKey(userId: string, nowMs: number): string {
  return `${dayNumber(nowMs)}#${usageBucket(userId)}`;
}
