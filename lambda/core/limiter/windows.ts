export const HOUR_MS = 3_600_000;
export const DAY_MS = 86_400_000;

/** Fixed windows aligned to UTC: hour and day numbers since the epoch. */
export const hourNumber = (ms: number) => Math.floor(ms / HOUR_MS);
export const dayNumber = (ms: number) => Math.floor(ms / DAY_MS);

/** UTC calendar months since January 1970. */
export function monthNumber(ms: number): number {
  const d = new Date(ms);
  return (d.getUTCFullYear() - 1970) * 12 + d.getUTCMonth();
}

/** When month number `month` starts (epoch ms). */
export function monthStartMs(month: number): number {
  return Date.UTC(1970 + Math.floor(month / 12), month % 12, 1);
}

/** An ISO week (Monday 00:00 UTC to the next Monday). */
export const WEEK_MS = 7 * DAY_MS;
/** 1970-01-01 was a Thursday: the ISO week it falls in began three days earlier, on Monday 1969-12-29. */
const EPOCH_WEEK_START_DAY = -3;

/** ISO weeks (Monday to Monday, UTC) since the one the epoch falls in (week 0). */
export const isoWeekNumber = (ms: number) => Math.floor((dayNumber(ms) - EPOCH_WEEK_START_DAY) / 7);

/** When ISO week number `week` starts: its Monday, 00:00 UTC (epoch ms). */
export const weekStartMs = (week: number) => (week * 7 + EPOCH_WEEK_START_DAY) * DAY_MS;

/** The message bucket as GCRA sees it: one message per `intervalMs`, `capacity` back to back. */
export interface Bucket {
  readonly intervalMs: number;
  readonly capacity: number;
  /** How far the theoretical arrival time may run ahead of now: (capacity − 1) × interval. */
  readonly toleranceMs: number;
}

export function bucketOf(policy: { readonly messagesPerMinute: number; readonly burst: number }): Bucket {
  const intervalMs = 60_000 / policy.messagesPerMinute;
  const capacity = policy.messagesPerMinute + policy.burst;
  return { intervalMs, capacity, toleranceMs: (capacity - 1) * intervalMs };
}
