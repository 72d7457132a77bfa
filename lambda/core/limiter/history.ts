import { microUsdToUsd } from '../models';
import type { ExpressionWriter } from './expression';
import { HISTORY_ATTR, QUEUED_DAY_PREFIX } from './item/attributes';
import { storedDayValue } from './item/codec';
import type { LimiterSnapshot, StoredDay } from './item/state';
import { DAY_COUNTERS, lastActiveDay, usedInDay } from './kinds/daily-usage';
import { storedNumber } from './kinds/kind-snapshot';
import { DAY_MS, dayNumber } from './windows';

/**
 * Per-day usage history in the user's item (SPEC §5 v2 `usage --history`), kept without a write of
 * its own: the admission that rolls the user's day over (the first of a new UTC day) also copies
 * the day that ended into `hist.<day>`, pinning the counters it copies, and drops days older than
 * {@link HISTORY_DAYS}. Queued requests are counted per day by the enqueue write (`nq<day>`).
 * Refusals are not: a refusal writes nothing, by design (the refusal metrics count them).
 */
export const HISTORY_DAYS = 35;
export { QUEUED_DAY_PREFIX } from './item/attributes';
export type { StoredDay } from './item/state';

export interface DayUsage {
  /** `YYYY-MM-DD`, UTC. */
  readonly date: string;
  readonly messages: number;
  readonly tokens: number;
  readonly costUsd: number;
  readonly queued: number;
}

/** The admission's part: on the first admission of a new day, the day that ended goes to history. */
export function planHistory(w: ExpressionWriter, belief: LimiterSnapshot, nowMs: number): void {
  const today = dayNumber(nowMs);
  const closed = lastActiveDay(belief);
  if (closed === undefined || closed >= today) return;
  // The counters copied are the ones in the item: a write planned from an older view fails.
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
  const day = storedDayValue({
    tokens: usedInDay(belief, 'tokens', closed),
    costMicroUsd: usedInDay(belief, 'costMicroUsd', closed),
    messages: usedInDay(belief, 'messages', closed),
    queued: queued ?? 0,
  } satisfies StoredDay);
  const hist = w.name(HISTORY_ATTR);
  if (belief.history === undefined) {
    w.condition(`attribute_not_exists(${hist})`);
    w.set(`${hist} = ${w.value({ [closed]: day })}`);
  } else {
    w.condition(`attribute_exists(${hist})`);
    w.set(`${hist}.${w.name(String(closed))} = ${w.value(day)}`);
    for (const old of Object.keys(belief.history).map(Number)) {
      if (old <= today - HISTORY_DAYS) w.remove(`${hist}.${w.name(String(old))}`);
    }
  }
  // Its queued count now lives in history; older leftovers go too.
  for (const d of Object.keys(belief.queuedByDay).map(Number)) {
    if (d <= closed) w.remove(w.name(`${QUEUED_DAY_PREFIX}${d}`));
  }
}

/** The last `days` UTC days, oldest first: history, and today (and the last active day) live. */
export function usageHistory(snap: LimiterSnapshot, nowMs: number, days: number): DayUsage[] {
  const today = dayNumber(nowMs);
  const out: DayUsage[] = [];
  for (let d = today - days + 1; d <= today; d++) {
    const stored = snap.history?.[d];
    const tokens = stored ? stored.tokens : usedInDay(snap, 'tokens', d);
    const cost = stored ? stored.costMicroUsd : usedInDay(snap, 'costMicroUsd', d);
    const messages = stored ? stored.messages : usedInDay(snap, 'messages', d);
    const queued = stored ? stored.queued : (snap.queuedByDay[d] ?? 0);
    out.push({
      date: new Date(d * DAY_MS).toISOString().slice(0, 10),
      messages,
      tokens,
      costUsd: microUsdToUsd(cost),
      queued,
    });
  }
  return out;
}
