import type { ExpressionWriter } from '../expression';
import { SETTLED_USAGE_FIELDS, USAGE_DAY_ATTR, USAGE_TEAM_ATTR } from '../item/attributes';
import type { LimiterSnapshot } from '../item/state';
import { dayNumber } from '../windows';

/**
 * What the usage index `byDaySettled` is sized for (SPEC §9.2, docs/performance.md "The usage
 * index"). Only the settle writes it (issue 22), and it has no sort key: a settle that used tokens
 * changes projected numbers only, 1 index write; the day's first settle 1 (it enters), or 2 when
 * the item still carries an older day's key (a delete and a put); admissions, refusals and queue
 * decisions write none (test/integration/usage-index.test.ts counts them). Every write lands on
 * the partition of the user's bucket, and a throttled index partition throttles the table's
 * writes.
 */
export const USAGE_INDEX_MODEL = {
  /** The scale model: chat requests a second across the stack (100,000 users). */
  requestsPerSecond: 5_000,
  /** Index writes a request causes at most: its settle's 2 when it moves the day (< 1 KB: 1 unit each). */
  indexWritesPerRequest: 2,
  /** DynamoDB's write limit of one partition (one partition-key value of the index at least). */
  partitionWritesPerSecond: 1_000,
  /**
   * The model may use a twentieth of a partition's rate: 20× the model still fits under it (the
   * buckets stayed 256 when the admissions' index writes went, issue 22).
   */
  headroom: 20,
} as const;

/** Smallest power of two ≥ n. */
const powerOfTwoAtLeast = (n: number) => 2 ** Math.ceil(Math.log2(Math.max(1, n)));

/**
 * Buckets today's usage index is spread over: the model's index writes a second over a twentieth of a
 * partition's rate, rounded up to a power of two (5,000 × 2 / 50 = 200 → 256). Every count ≥ 16
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

/**
 * The settle's part of the usage index: what this reply used goes to the day of the settle's
 * entry (`ud` = `<day>#<bucket>`, `st` tokens, `sc` cost µUSD, `sm` replies). The entry of the
 * same day is added to — `ud = :key AND attribute_exists(st)`: the counters are this day's, so an
 * addition is right; any other (an older day, none, or an item whose `ud` an admission of the
 * first design wrote) is replaced — the negation, so a belief that guessed wrong fails the write
 * and plans again. A settle that used nothing (a failed reply) writes no entry: it was no reply.
 */
export function planSettledUsage(
  w: ExpressionWriter,
  belief: LimiterSnapshot,
  args: {
    readonly userId: string;
    readonly tokens: number;
    readonly costMicroUsd: number;
    readonly nowMs: number;
    /** The request's team (`ut`, for `top --team`): `null` none; undefined: teams off, not written. */
    readonly team?: string | null;
  },
): void {
  if (args.tokens <= 0 && args.costMicroUsd <= 0) return;
  if (args.team === null) w.remove(w.name(USAGE_TEAM_ATTR));
  else if (args.team !== undefined) w.set(`${w.name(USAGE_TEAM_ATTR)} = ${w.value(args.team)}`);
  const key = usageDayKey(args.userId, args.nowMs);
  const ud = w.name(USAGE_DAY_ATTR);
  const [st, sc, sm] = [
    w.name(SETTLED_USAGE_FIELDS.tokens),
    w.name(SETTLED_USAGE_FIELDS.costMicroUsd),
    w.name(SETTLED_USAGE_FIELDS.messages),
  ];
  const [t, c, one] = [w.value(args.tokens), w.value(args.costMicroUsd), w.value(1)];
  if (belief.settledUsage?.key === key) {
    w.condition(`${ud} = ${w.value(key)} AND attribute_exists(${st})`);
    w.set(`${st} = ${st} + ${t}`, `${sc} = ${sc} + ${c}`, `${sm} = ${sm} + ${one}`);
  } else {
    const k = w.value(key);
    w.condition(`(attribute_not_exists(${ud}) OR ${ud} <> ${k} OR attribute_not_exists(${st}))`);
    w.set(`${ud} = ${k}`, `${st} = ${t}`, `${sc} = ${c}`, `${sm} = ${one}`);
  }
}
