import { HELD_DAY_FIELD, HISTORY_FIELDS, SETTLED_USAGE_FIELDS, USAGE_DAY_ATTR } from './attributes';
import type { ClosedDay, SettledUsage, StoredDay } from './state';

/**
 * A day's usage as stored: a closed day in the first design's `hist`, the day the item holds
 * (`hd`) and a history item's, and the usage index's settled counters (item/codec.ts reads the
 * rest of the item).
 */

/** The stored form of a closed day in `hist`. */
export function storedDayValue(day: StoredDay): Record<string, number> {
  const f = HISTORY_FIELDS;
  return {
    [f.tokens]: day.tokens,
    [f.costMicroUsd]: day.costMicroUsd,
    [f.messages]: day.messages,
    [f.queued]: day.queued,
  };
}

/** The stored form of a closed day with its number (`hd`, a history item's day and `p`). */
export function closedDayValue(day: ClosedDay): Record<string, number> {
  return { [HELD_DAY_FIELD]: day.day, ...storedDayValue(day) };
}

/** A stored closed day with its number, read (undefined: not one). */
export function closedDayOf(value: unknown): ClosedDay | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const day = num((value as Record<string, unknown>)[HELD_DAY_FIELD]);
  const stored = day === undefined ? undefined : storedDayOf(value as Record<string, unknown>);
  return day === undefined || !stored ? undefined : { day, ...stored };
}

/** The usage index's entry of an item (or of an index item), if it has one. */
export function settledUsageOf(item: Record<string, unknown>): SettledUsage | undefined {
  const key = item[USAGE_DAY_ATTR];
  const tokens = num(item[SETTLED_USAGE_FIELDS.tokens]);
  if (typeof key !== 'string' || tokens === undefined) return undefined;
  return {
    key,
    tokens,
    costMicroUsd: num(item[SETTLED_USAGE_FIELDS.costMicroUsd]) ?? 0,
    messages: num(item[SETTLED_USAGE_FIELDS.messages]) ?? 0,
  };
}

function storedDayOf(v: Record<string, unknown>): StoredDay {
  const f = HISTORY_FIELDS;
  return {
    tokens: num(v[f.tokens]) ?? 0,
    costMicroUsd: num(v[f.costMicroUsd]) ?? 0,
    messages: num(v[f.messages]) ?? 0,
    queued: num(v[f.queued]) ?? 0,
  };
}

/** The first design's `hist` map, read (never written again). */
export function historyOf(value: unknown): Record<number, StoredDay> | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  const days: Record<number, StoredDay> = {};
  for (const [day, v] of Object.entries(value as Record<string, Record<string, unknown>>)) {
    if (typeof v === 'object' && v !== null) days[Number(day)] = storedDayOf(v);
  }
  return days;
}

/** A finite number, or undefined. */
export function num(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) ? value : undefined;
}
