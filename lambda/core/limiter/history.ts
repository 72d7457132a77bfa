import { microUsdToUsd } from '../models';
import type { ExpressionWriter } from './expression';
import { HELD_DAY_ATTR, HISTORY_ATTR, PREVIOUS_DAY_ATTR, QUEUED_DAY_PREFIX } from './item/attributes';
import { closedDayOf, closedDayValue } from './item/day-codec';
import type { ClosedDay, LimiterSnapshot, StoredDay } from './item/state';
import { DAY_COUNTERS, lastActiveDay, usedInDay } from './kinds/daily-usage';
import { storedNumber } from './kinds/kind-snapshot';
import { DAY_MS, dayNumber } from './windows';

/**
 * Per-day usage history (SPEC §5 v2 `usage --history`), kept out of the user's item (issue 22: the
 * item every decision writes holds counters, not history). The admission that rolls the user's day
 * over (the first of a new UTC day) keeps the day that ended in the item (`hd`, ~40 bytes),
 * pinning the counters it copies; after that write lands, the store writes the day once to its
 * own history item (Requests table, {@link historyRecord}), which lives {@link HISTORY_DAYS} days
 * and a margin (TTL). Every state has an end, and a repair: the item holds the day until the next
 * roll replaces it, and the next roll's history item carries it again (`p`), so a history write
 * lost to a crash between the two steps, or one whose answer was lost, is written by the next roll
 * (idempotent puts: a day's numbers never change once it closed). Until then `usage --history`
 * reads the day from the item. Queued requests are counted per day by the enqueue write
 * (`nq<day>`). Refusals are not: a refusal writes nothing, by design (the refusal metrics count
 * them).
 */
export const HISTORY_DAYS = 35;
export { QUEUED_DAY_PREFIX } from './item/attributes';
export type { ClosedDay, StoredDay } from './item/state';

export interface DayUsage {
  /** `YYYY-MM-DD`, UTC. */
  readonly date: string;
  readonly messages: number;
  readonly tokens: number;
  readonly costUsd: number;
  readonly queued: number;
}

/** What a rolling admission hands the store to write to history after it landed. */
export interface HistoryWrite {
  /** The day this admission closed. */
  readonly closed: ClosedDay;
  /** The day the item held before (written again: its own write may have been lost). */
  readonly previous?: ClosedDay;
}

/**
 * The admission's part: on the first admission of a new day, the day that ended is held in the
 * item (replacing the one held before); returns what the store then writes to history.
 */
export function planHistory(
  w: ExpressionWriter,
  belief: LimiterSnapshot,
  nowMs: number,
): HistoryWrite | undefined {
  const today = dayNumber(nowMs);
  const closed = lastActiveDay(belief);
  if (closed === undefined || closed >= today) return undefined;
  // The counters copied are the ones in the item: a write planned from an older view fails. They
  // also pin `hd`: only a roll replaces it, and a roll moves the counters' day.
  w.condition(`${w.name(DAY_COUNTERS.tokens.window)} = ${w.value(closed)}`);
  for (const { count } of Object.values(DAY_COUNTERS)) {
    const value = storedNumber(belief, count);
    w.condition(
      value === undefined ? `attribute_not_exists(${w.name(count)})` : `${w.name(count)} = ${w.value(value)}`,
    );
  }
  const queuedAttr = w.name(`${QUEUED_DAY_PREFIX}${closed}`);
  const queued = belief.queuedByDay[closed];
  w.condition(
    queued === undefined ? `attribute_not_exists(${queuedAttr})` : `${queuedAttr} = ${w.value(queued)}`,
  );
  const day: ClosedDay = {
    day: closed,
    tokens: usedInDay(belief, 'tokens', closed),
    costMicroUsd: usedInDay(belief, 'costMicroUsd', closed),
    messages: usedInDay(belief, 'messages', closed),
    queued: queued ?? 0,
  };
  w.set(`${w.name(HELD_DAY_ATTR)} = ${w.value(closedDayValue(day))}`);
  dropOldLegacyDays(w, belief, today);
  // Its queued count now lives in the held day; older leftovers go too.
  for (const d of Object.keys(belief.queuedByDay).map(Number)) {
    if (d <= closed) w.remove(w.name(`${QUEUED_DAY_PREFIX}${d}`));
  }
  return { closed: day, ...(belief.heldDay ? { previous: belief.heldDay } : {}) };
}

/** A first-design `hist` is never written to; its days past HISTORY_DAYS go, then the attribute. */
function dropOldLegacyDays(w: ExpressionWriter, belief: LimiterSnapshot, today: number): void {
  if (belief.history === undefined) return;
  const hist = w.name(HISTORY_ATTR);
  const days = Object.keys(belief.history).map(Number);
  const old = days.filter((d) => d <= today - HISTORY_DAYS);
  if (old.length === 0) return;
  if (old.length === days.length) {
    w.remove(hist);
    return;
  }
  w.condition(`attribute_exists(${hist})`);
  for (const d of old) w.remove(`${hist}.${w.name(String(d))}`);
}

/** A history item's partition key (Requests table): one partition per user, a sort key per day. */
export const historyPartitionKey = (userId: string) => `usage#${userId}`;
/** A history item's sort key: the closed day, `YYYY-MM-DD` (sorts by date). */
export const historySortKey = (day: number) => dateOf(day);

/** A history item's attributes (besides its keys and TTL): the day and the one held before it. */
export function historyRecord(write: HistoryWrite): Record<string, unknown> {
  return {
    ...closedDayValue(write.closed),
    ...(write.previous ? { [PREVIOUS_DAY_ATTR]: closedDayValue(write.previous) } : {}),
  };
}

/** A history item ends when `usage --history` can no longer show its day (and a day's margin). */
export function historyTtlEpochSeconds(day: number): number {
  return ((day + HISTORY_DAYS + 2) * DAY_MS) / 1000;
}

/** The days history items hold: each its own, and the one before it where its own item is missing. */
export function storedHistoryOf(items: readonly Record<string, unknown>[]): Record<number, StoredDay> {
  const own: Record<number, StoredDay> = {};
  const carried: Record<number, StoredDay> = {};
  for (const item of items) {
    const day = closedDayOf(item);
    if (day) own[day.day] = day;
    const previous = closedDayOf(item[PREVIOUS_DAY_ATTR]);
    if (previous) carried[previous.day] = previous;
  }
  return { ...carried, ...own };
}

const dateOf = (day: number) => new Date(day * DAY_MS).toISOString().slice(0, 10);

/**
 * The last `days` UTC days, oldest first: from the history items (`stored`, when read), the
 * first design's `hist`, the day held in the item, and today (and the last active day) live.
 */
export function usageHistory(
  snap: LimiterSnapshot,
  nowMs: number,
  days: number,
  stored: Readonly<Record<number, StoredDay>> = {},
): DayUsage[] {
  const today = dayNumber(nowMs);
  const held = snap.heldDay ? { [snap.heldDay.day]: snap.heldDay } : {};
  const closed: Record<number, StoredDay> = { ...snap.history, ...stored, ...held };
  const out: DayUsage[] = [];
  for (let d = today - days + 1; d <= today; d++) {
    const day = closed[d];
    out.push({
      date: dateOf(d),
      messages: day ? day.messages : usedInDay(snap, 'messages', d),
      tokens: day ? day.tokens : usedInDay(snap, 'tokens', d),
      costUsd: microUsdToUsd(day ? day.costMicroUsd : usedInDay(snap, 'costMicroUsd', d)),
      queued: day ? day.queued : (snap.queuedByDay[d] ?? 0),
    });
  }
  return out;
}
