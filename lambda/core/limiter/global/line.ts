import { ExpressionWriter, type UpdatePlan } from '../expression';
import { LINE_ATTR, TTL_ATTR, WAITER_FIELDS, WAITER_PREFIX } from '../item/attributes';
import { limitKind } from '../kinds/registry';
import type { Tier } from '../tiers';
import { GLOBAL_LIMITS, type GlobalLimit } from './limits';
import { type GlobalWaiter, isLiveWaiter, priorityOrder, TIER_RANK } from './priority';

export { LINE_ATTR, WAITER_PREFIX } from '../item/attributes';

/**
 * The item where requests held back by a global limit wait for their turn: one entry per user in
 * its map `ln` (`ln.<userId>`), so a write can bound the count (`size(ln)`).
 */
export const GLOBAL_WAITING_KEY = 'global#waiting';
/**
 * At most this many users in line. An entry is at most ~2.2 KB (a user id of 256 characters of
 * up to 4 bytes, a receipt handle of 1,024, the numbers), so the item stays far below DynamoDB's
 * 400 KB whatever the ids and handles. Past it, see planLineWrite.
 */
export const MAX_LINE_ENTRIES = 150;
/**
 * The line item expires this long after its last write: every entry is dead by then (a deadline
 * is at most MAX_QUEUE_WAIT ahead, 15 minutes), so only an abandoned item ever reaches it.
 */
export const LINE_TTL_SECONDS = 24 * 3600;
/** Stale entries taken out by one write (keeps the expression well under DynamoDB's 4 KB). */
export const MAX_PRUNED_PER_WRITE = 40;

/** A stored entry: a waiter, and whether it is of the first design (a top-level attribute). */
export interface LineEntry extends GlobalWaiter {
  readonly legacy?: boolean;
}

/** The line item as read: whether it exists, whether it has the map, and every entry. */
export interface LineView {
  readonly exists: boolean;
  readonly hasMap: boolean;
  readonly entries: readonly LineEntry[];
}

export const EMPTY_LINE: LineView = Object.freeze({ exists: false, hasMap: false, entries: [] });

/** An entry whose limit is unknown is read as one waiting for a slot: it looks again in a second. */
const UNKNOWN_LIMIT: GlobalLimit =
  GLOBAL_LIMITS.find((l) => limitKind(l).waitsFor === 'slot') ?? GLOBAL_LIMITS[0]!;

/** A stored line entry, read (undefined: not a waiter). */
export function waiterOf(userId: string, value: unknown, legacy: boolean): LineEntry | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const v = value as Record<string, unknown>;
  const f = WAITER_FIELDS;
  const tier = v[f.tier];
  const at = v[f.enqueuedAtEpochMs];
  const dl = v[f.deadlineEpochMs];
  if (typeof tier !== 'string' || !(tier in TIER_RANK) || typeof at !== 'number' || typeof dl !== 'number')
    return undefined;
  const [h, s, wa, l] = [v[f.wakeUp], v[f.seenAtEpochMs], v[f.wakeAtEpochMs], v[f.limit]];
  return {
    userId,
    tier: tier as Tier,
    enqueuedAtEpochMs: at,
    deadlineEpochMs: dl,
    wakeUp: typeof h === 'string' ? h : undefined,
    seenAtEpochMs: typeof s === 'number' ? s : undefined,
    wakeAtEpochMs: typeof wa === 'number' ? wa : undefined,
    limit: (GLOBAL_LIMITS as readonly string[]).includes(String(l)) ? (l as GlobalLimit) : UNKNOWN_LIMIT,
    ...(legacy ? { legacy } : {}),
  };
}

/** The line as stored: the map's entries and any of the first design's top-level ones. */
export function lineFromItem(item: Record<string, unknown> | undefined): LineView {
  if (!item) return EMPTY_LINE;
  const entries: LineEntry[] = [];
  const map = item[LINE_ATTR];
  const hasMap = typeof map === 'object' && map !== null && !Array.isArray(map);
  if (hasMap) {
    for (const [userId, value] of Object.entries(map as Record<string, unknown>)) {
      const entry = waiterOf(userId, value, false);
      if (entry) entries.push(entry);
    }
  }
  for (const [key, value] of Object.entries(item)) {
    if (!key.startsWith(WAITER_PREFIX)) continue;
    const entry = waiterOf(key.slice(WAITER_PREFIX.length), value, true);
    if (entry) entries.push(entry);
  }
  return { exists: true, hasMap, entries };
}

/** Who waits at `nowMs`: the live entries, one per user (a map entry wins over a legacy one). */
export function waitersFromLine(line: LineView, nowMs: number): GlobalWaiter[] {
  const byUser = new Map<string, GlobalWaiter>();
  for (const e of line.entries) {
    if (!isLiveWaiter(e, nowMs) || (byUser.has(e.userId) && e.legacy)) continue;
    const { legacy: _legacy, ...waiter } = e;
    byUser.set(e.userId, waiter);
  }
  return [...byUser.values()];
}

/** The stored form of a waiter (its user id is the map key). */
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
  };
}

export interface LineWrite {
  readonly plan: UpdatePlan;
  /** Whether `join` has its entry once the write lands (false: the line is full of waiters before it). */
  readonly listed: boolean;
  /** Users whose entries this write takes out: stale ones, and one that a waiter before it evicts. */
  readonly removed: readonly string[];
}

/**
 * One write to the line: puts `join`'s entry (or refreshes it), or takes `leave`'s out, and in the
 * same write takes out up to MAX_PRUNED_PER_WRITE entries that are no longer live — so every entry
 * ends: when its request is admitted or its user has nothing waiting (`leave`), or once it is
 * overdue or past its deadline (pruned here and by the sweep's `pruneGlobalLine`). Each removal is
 * pinned to the entry as seen (`ln.<u>.s = :seenAt`): a waiter that wrote it again meanwhile fails
 * the condition, and the writer reads the line and plans again.
 *
 * The bound: a new entry is written under `attribute_exists(ln.<me>) OR size(ln) < :cap + k`, k the
 * entries removed in the same write (each pinned present), so the line never holds more than
 * MAX_LINE_ENTRIES whatever other writers do. Past it, the line keeps the waiters that go first: a
 * newcomer that ranks before the last one in priority order takes that one's place (evicted,
 * pinned); else it is not listed. An unlisted waiter still goes when it looks and nobody listed
 * ranks before it — it only loses being woken by a settle and holding back direct requests. Counts
 * stay exact (the shards decide them), and a request near its deadline ranks first, so it is
 * always listed: the deadline bound holds.
 *
 * Returns undefined when there is nothing to write.
 */
export function planLineWrite(args: {
  readonly line: LineView;
  readonly nowMs: number;
  readonly urgentMs: number;
  readonly join?: GlobalWaiter;
  readonly leave?: string;
  readonly cap?: number;
}): LineWrite | undefined {
  const { line, nowMs, urgentMs, join, leave } = args;
  const cap = args.cap ?? MAX_LINE_ENTRIES;
  const w = new ExpressionWriter();
  const edit = lineEditor(w);
  const mine = (e: LineEntry) => e.userId === join?.userId || e.userId === leave;
  const stale = line.entries.filter((e) => !isLiveWaiter(e, nowMs) && !(mine(e) && !e.legacy));
  for (const e of stale.slice(0, MAX_PRUNED_PER_WRITE)) edit.take(e);
  // A legacy entry of the user joining or leaving goes too (its map entry replaces it).
  for (const e of line.entries) if (e.legacy && mine(e) && !edit.removed.includes(e.userId)) edit.take(e);

  if (leave !== undefined) {
    const entry = line.entries.find((e) => e.userId === leave && !e.legacy);
    if (entry) {
      const path = edit.pathOf(entry);
      // Present (else REMOVE of a path in a missing map fails): one already gone needs nothing.
      w.condition(`attribute_exists(${path})`);
      w.remove(path);
      edit.removed.push(leave);
    }
  }
  const listed = join !== undefined && planJoin(w, edit, { line, join, cap, nowMs, urgentMs });
  if (edit.removed.length === 0 && !listed) return undefined;
  // Nothing of an item nobody writes any more outlives its entries by long (LINE_TTL_SECONDS).
  w.set(`${w.name(TTL_ATTR)} = ${w.value(Math.floor(nowMs / 1000) + LINE_TTL_SECONDS)}`);
  return { plan: w.build(), listed, removed: edit.removed };
}

/** Removals from the line in one write: each pinned to the entry as seen, and counted. */
interface LineEditor {
  pathOf(e: LineEntry): string;
  take(e: LineEntry): void;
  readonly removed: string[];
  /** Map entries taken out so far (the bound on a new entry allows for them). */
  mapRemovals(): number;
}

function lineEditor(w: ExpressionWriter): LineEditor {
  const ln = w.name(LINE_ATTR);
  const removed: string[] = [];
  let mapRemovals = 0;
  const pathOf = (e: LineEntry) =>
    e.legacy ? w.name(`${WAITER_PREFIX}${e.userId}`) : `${ln}.${w.name(e.userId)}`;
  const take = (e: LineEntry) => {
    const path = pathOf(e);
    const seen = `${path}.${w.name(WAITER_FIELDS.seenAtEpochMs)}`;
    // Pinned: only the entry as seen. One written again since (a later look) stays.
    w.condition(
      e.seenAtEpochMs === undefined
        ? `(attribute_exists(${path}) AND attribute_not_exists(${seen}))`
        : `${seen} = ${w.value(e.seenAtEpochMs)}`,
    );
    w.remove(path);
    removed.push(e.userId);
    if (!e.legacy) mapRemovals++;
  };
  return { pathOf, take, removed, mapRemovals: () => mapRemovals };
}

/**
 * Puts `join`'s entry (or refreshes it) under the bound; when the line is full of live waiters, the
 * one that goes last makes room only for one that goes before it. Returns whether it is listed.
 */
function planJoin(
  w: ExpressionWriter,
  edit: LineEditor,
  args: {
    readonly line: LineView;
    readonly join: GlobalWaiter;
    readonly cap: number;
    readonly nowMs: number;
    readonly urgentMs: number;
  },
): boolean {
  const { line, join, cap, nowMs, urgentMs } = args;
  const ln = w.name(LINE_ATTR);
  if (!line.hasMap) {
    // The first entry creates the map; only one writer can.
    w.condition(`attribute_not_exists(${ln})`);
    w.set(`${ln} = ${w.value({ [join.userId]: waiterValue(join) })}`);
    return true;
  }
  const present = line.entries.some((e) => e.userId === join.userId && !e.legacy);
  const live = line.entries.filter(
    (e) => !e.legacy && !edit.removed.includes(e.userId) && e.userId !== join.userId,
  );
  if (!present && live.length + 1 > cap) {
    const last = priorityOrder(live, nowMs, urgentMs).at(-1)!;
    const lastOfAll = priorityOrder([...live, join], nowMs, urgentMs).at(-1)!;
    if (lastOfAll.userId === join.userId) return false;
    edit.take(last);
  }
  const me = `${ln}.${w.name(join.userId)}`;
  const value = w.value(waiterValue(join));
  w.condition(`(attribute_exists(${me}) OR size(${ln}) < ${w.value(cap + edit.mapRemovals())})`);
  w.set(`${me} = ${value}`);
  return true;
}
