import { ExpressionWriter, type UpdatePlan } from '../expression';
import {
  KEY_ATTR,
  LINE_KEY_PREFIX,
  LINE_ORDER_ATTR,
  LINE_PARTITION_ATTR,
  TTL_ATTR,
  WAITER_FIELDS,
} from '../item/attributes';
import { limitKind } from '../kinds/registry';
import type { Tier } from '../tiers';
import { GLOBAL_LIMITS, type GlobalBound, type GlobalLimit, isGlobalLimit } from './limits';
import { isModelQuotaName } from './model-quotas';
import { type GlobalWaiter, isLiveWaiter, TIER_RANK } from './priority';

/**
 * The line of users held back by a global limit (SPEC §2 v2), for 10,000 waiting and more: one
 * item per waiter (`gline#<userId>`, written only by that user's own looks, taken out when its
 * turn comes or by the sweep, with a TTL past its deadline), read through the sparse index `byLine`
 * (lambda/core/resources/tables.ts): partitioned by bucket (a hash of the user id), sorted in
 * priority order. No item is written by every waiter and none grows with the crowd; reading the
 * line is one Query per bucket for its head (LINE_READ_LIMIT live entries), merged in priority
 * order (priority.ts). The first design's single item `global#waiting` is not read: it ends by its
 * own TTL (24 h after its last write), and its waiters write their own items at their next look.
 */

/** The sparse index of waiters (its partition and sort keys are LINE_PARTITION_ATTR, LINE_ORDER_ATTR). */
export const LINE_INDEX = 'byLine';

/**
 * Index partitions (buckets). Every write to a waiter's item is one write to its index partition
 * (an entry with an AWS receipt handle, a few hundred characters, is under 1 KB: 1 WU), two when
 * its place changes (a new head, or turning urgent: a delete and a put). With N waiting, those
 * further back than NEAR_HEAD looking again every FAR_LOOK_MS (60 s), the first NEAR_HEAD every
 * 5 s, and R admissions a second (a join and a leave each), a bucket takes
 * (N/60 + NEAR_HEAD/5 + 2·R) / LINE_BUCKETS WU/s: at N = 10,000 and R = 100/s,
 * (167 + 2 + 200) / 4 ≈ 92 WU/s, a tenth of a partition's 1,000 (R would have to reach ~1,900 a
 * second to fill one). Reading the head costs one Query per bucket: 4 per look, about 1 RU each
 * (10 entries of ~550 B, eventually consistent). docs/limiter.md.
 */
export const LINE_BUCKETS = 4;
/** Live entries read from the head of each bucket (and the most the first page asks for). */
export const LINE_READ_LIMIT = 10;
/** Pages a read goes through past entries no longer live at a bucket's head before it stops. */
export const LINE_MAX_PAGES = 4;
/** A waiter's item outlives its deadline by this much before DynamoDB's TTL may delete it. */
export const LINE_TTL_MARGIN_SECONDS = 300;
/** An entry with no finite deadline expires this long after its write (never written so: a guard). */
const LINE_MAX_TTL_SECONDS = 24 * 3600;

/** The index partitions: one per bucket. */
export function linePartitions(): string[] {
  return Array.from({ length: LINE_BUCKETS }, (_, b) => String(b));
}

/** The user's bucket (FNV-1a of its id): a user always lands in the same one. */
export function lineBucket(userId: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < userId.length; i++) {
    hash ^= userId.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return (hash >>> 0) % LINE_BUCKETS;
}

export const linePartitionOf = (w: Pick<GlobalWaiter, 'userId'>) => String(lineBucket(w.userId));

type Placed = Pick<GlobalWaiter, 'userId' | 'tier' | 'enqueuedAtEpochMs' | 'deadlineEpochMs'>;
const ms15 = (ms: number) => String(Math.max(0, Math.floor(ms))).padStart(15, '0');

/**
 * The waiter's place in its bucket, as written at `nowMs`: priorityOrder's order spelled as a
 * string. Within `urgentMs` of its deadline, `0#<deadline>#<tier rank>#<enqueued>#<id>` (before
 * every tier, earliest deadline first); else `<1 + tier rank>#<enqueued>#<id>` (by tier, oldest
 * first). The user id makes it a total order, so a page's end never splits two waiters queued in
 * the same millisecond. A place is as of the waiter's last look: one that turns urgent moves up
 * when it looks again — and it looks again by then (waitInLineMs), and every 5 s near the head.
 */
export function lineOrderOf(w: Placed, nowMs: number, urgentMs: number): string {
  const rank = TIER_RANK[w.tier];
  const urgent = Number.isFinite(w.deadlineEpochMs) && w.deadlineEpochMs - nowMs <= urgentMs;
  return urgent
    ? `0#${ms15(w.deadlineEpochMs)}#${rank}#${ms15(w.enqueuedAtEpochMs)}#${w.userId}`
    : `${rank + 1}#${ms15(w.enqueuedAtEpochMs)}#${w.userId}`;
}

/** The last place the waiter may hold (not urgent): a view read past it shows any entry it has. */
const lastPlaceOf = (w: Placed) => lineOrderOf(w, Number.NEGATIVE_INFINITY, 0);

export const lineKey = (userId: string) => `${LINE_KEY_PREFIX}${userId}`;

/** An entry whose limit is unknown is read as one waiting for a slot: it looks again in a second. */
const UNKNOWN_LIMIT: GlobalLimit =
  GLOBAL_LIMITS.find((l) => limitKind(l).waitsFor === 'slot') ?? GLOBAL_LIMITS[0]!;

/** A stored waiter, read (undefined: not a waiter). */
export function waiterOf(userId: string, value: unknown): GlobalWaiter | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const v = value as Record<string, unknown>;
  const f = WAITER_FIELDS;
  const tier = v[f.tier];
  const at = v[f.enqueuedAtEpochMs];
  const dl = v[f.deadlineEpochMs];
  if (typeof tier !== 'string' || !(tier in TIER_RANK) || typeof at !== 'number' || typeof dl !== 'number')
    return undefined;
  const [h, s, wa, l, q] = [v[f.wakeUp], v[f.seenAtEpochMs], v[f.wakeAtEpochMs], v[f.limit], v[f.queued]];
  const scope = v[f.scope];
  return {
    userId,
    tier: tier as Tier,
    enqueuedAtEpochMs: at,
    deadlineEpochMs: dl,
    wakeUp: typeof h === 'string' ? h : undefined,
    seenAtEpochMs: typeof s === 'number' ? s : undefined,
    wakeAtEpochMs: typeof wa === 'number' ? wa : undefined,
    limit: isGlobalLimit(String(l)) || isModelQuotaName(String(l)) ? (l as GlobalBound) : UNKNOWN_LIMIT,
    ...(typeof q === 'number' ? { queued: q } : {}),
    ...(typeof scope === 'string' ? { scope } : {}),
  };
}

/** A waiter's item as read from the table or the index (undefined: not a waiter's item). */
export function waiterFromItem(item: Record<string, unknown>): GlobalWaiter | undefined {
  const key = item[KEY_ATTR];
  if (typeof key !== 'string' || !key.startsWith(LINE_KEY_PREFIX)) return undefined;
  return waiterOf(key.slice(LINE_KEY_PREFIX.length), item);
}

/** The stored fields of a waiter. */
export function waiterValue(w: GlobalWaiter): Record<string, unknown> {
  const f = WAITER_FIELDS;
  return {
    [f.tier]: w.tier,
    [f.enqueuedAtEpochMs]: w.enqueuedAtEpochMs,
    [f.deadlineEpochMs]: w.deadlineEpochMs,
    [f.limit]: w.limit,
    ...(w.wakeUp ? { [f.wakeUp]: w.wakeUp } : {}),
    ...(w.seenAtEpochMs !== undefined ? { [f.seenAtEpochMs]: w.seenAtEpochMs } : {}),
    ...(w.wakeAtEpochMs !== undefined ? { [f.wakeAtEpochMs]: w.wakeAtEpochMs } : {}),
    ...(w.queued !== undefined ? { [f.queued]: w.queued } : {}),
    ...(w.scope !== undefined ? { [f.scope]: w.scope } : {}),
  };
}

/** A waiter's item as its look at `nowMs` leaves it, but for its key (planLineEntry writes it). */
export function lineEntryFields(w: GlobalWaiter, nowMs: number, urgentMs: number): Record<string, unknown> {
  const endMs = Math.min(w.deadlineEpochMs, nowMs + LINE_MAX_TTL_SECONDS * 1000);
  return {
    [LINE_PARTITION_ATTR]: linePartitionOf(w),
    [LINE_ORDER_ATTR]: lineOrderOf(w, nowMs, urgentMs),
    ...waiterValue(w),
    [TTL_ATTR]: Math.ceil(endMs / 1000) + LINE_TTL_MARGIN_SECONDS,
  };
}

/**
 * The write of a waiter's own item at its look: every field as of this look (those it no longer
 * has removed), its place in the index, and its TTL. Unconditional: the entry as of this look
 * replaces the one of its last (a lost answer retried writes the same; an entry a late write brings
 * back after its user left is dead WAITER_STALE_MS after the look it names, and pruned then). Its
 * end: taken out of the line when its request is admitted or its user has nothing waiting
 * (planLineLeave); skipped by readers once overdue on its own schedule or past its deadline
 * (isLiveWaiter) and taken out by the sweep; deleted by TTL LINE_TTL_MARGIN_SECONDS past its
 * deadline whatever happens.
 */
export function planLineEntry(w: GlobalWaiter, nowMs: number, urgentMs: number): UpdatePlan {
  const fields = lineEntryFields(w, nowMs, urgentMs);
  const writer = new ExpressionWriter();
  for (const [name, value] of Object.entries(fields))
    writer.set(`${writer.name(name)} = ${writer.value(value)}`);
  for (const name of Object.values(WAITER_FIELDS)) if (!(name in fields)) writer.remove(writer.name(name));
  return writer.build();
}

/**
 * Takes a waiter's item out of the line: its index keys and fields removed (it leaves the sparse
 * index at once; what remains is its key), its TTL now, so DynamoDB deletes it. Conditioned on the
 * item existing (a write never creates one for a user not in line) and, for the sweep's prune, on
 * the entry as it was seen (`s = :seenAt`): a waiter that looked again meanwhile keeps its entry.
 * An update rather than a delete: the functions keep the limits table's GetItem and UpdateItem
 * only (lambda/core/resources/functions.ts).
 */
export function planLineLeave(nowMs: number, seen?: Pick<GlobalWaiter, 'seenAtEpochMs'>): UpdatePlan {
  const writer = new ExpressionWriter();
  writer.condition(`attribute_exists(${writer.name(KEY_ATTR)})`);
  if (seen) {
    const s = writer.name(WAITER_FIELDS.seenAtEpochMs);
    writer.condition(
      seen.seenAtEpochMs === undefined
        ? `attribute_not_exists(${s})`
        : `${s} = ${writer.value(seen.seenAtEpochMs)}`,
    );
  }
  for (const name of [LINE_PARTITION_ATTR, LINE_ORDER_ATTR, ...Object.values(WAITER_FIELDS)])
    writer.remove(writer.name(name));
  writer.set(`${writer.name(TTL_ATTR)} = ${writer.value(Math.floor(nowMs / 1000))}`);
  return writer.build();
}

/** The head of one index partition as read: its entries in order, live or not. */
export interface LinePart {
  readonly partition: string;
  readonly entries: readonly GlobalWaiter[];
  /** The place of the last entry read when the partition holds more after it; absent: read to its end. */
  readonly readTo?: string;
}

/** The line as read: the head of each partition. A partition absent from it is not known. */
export interface LineView {
  readonly parts: readonly LinePart[];
}

export const EMPTY_LINE: LineView = Object.freeze({ parts: [] });

/** Who waits at `nowMs`, as far as the view shows: the live entries of every partition's head. */
export function waitersFromLine(line: LineView, nowMs: number): GlobalWaiter[] {
  return line.parts.flatMap((p) => p.entries.filter((e) => isLiveWaiter(e, nowMs)));
}

/** Whether the view shows every entry placed up to `place` in `w`'s bucket. */
function lineCovers(line: LineView, w: Pick<GlobalWaiter, 'userId'>, place: string): boolean {
  const part = line.parts.find((p) => p.partition === linePartitionOf(w));
  return part !== undefined && (part.readTo === undefined || place <= part.readTo);
}

/**
 * Whether `w`'s user may have an entry in the line: seen in the view, or placed past what the view
 * read of its bucket (a waiter far back). Its entry is of its head (or an older one), never placed
 * after the head's last place, so a view read past that shows it.
 */
export function mayBeInLine(line: LineView, w: Placed): boolean {
  return (
    line.parts.some((p) => p.entries.some((e) => e.userId === w.userId)) ||
    !lineCovers(line, w, lastPlaceOf(w))
  );
}

/** The view with `userId`'s entry out (its own write just removed it). */
export function lineWithout(line: LineView, userId: string): LineView {
  return {
    parts: line.parts.map((p) =>
      p.entries.some((e) => e.userId === userId)
        ? { ...p, entries: p.entries.filter((e) => e.userId !== userId) }
        : p,
    ),
  };
}

/** The view with `w`'s entry as its own write at `nowMs` just put it (when the view covers its place). */
export function lineWith(line: LineView, w: GlobalWaiter, nowMs: number, urgentMs: number): LineView {
  const without = lineWithout(line, w.userId);
  if (!lineCovers(without, w, lineOrderOf(w, nowMs, urgentMs))) return without;
  const partition = linePartitionOf(w);
  return {
    parts: without.parts.map((p) => (p.partition === partition ? { ...p, entries: [...p.entries, w] } : p)),
  };
}
