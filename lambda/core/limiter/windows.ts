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
