import type { LimitPolicy } from './types';

export const HOUR_MS = 3_600_000;
export const DAY_MS = 86_400_000;

/** Fixed windows aligned to UTC: hour and day numbers since the epoch. */
export const hourNumber = (ms: number) => Math.floor(ms / HOUR_MS);
export const dayNumber = (ms: number) => Math.floor(ms / DAY_MS);

/** The message bucket as GCRA sees it: one message per `intervalMs`, `capacity` back to back. */
export interface Bucket {
  readonly intervalMs: number;
  readonly capacity: number;
  /** How far the theoretical arrival time may run ahead of now: (capacity − 1) × interval. */
  readonly toleranceMs: number;
}

export function bucketOf(policy: Pick<LimitPolicy, 'messagesPerMinute' | 'burst'>): Bucket {
  const intervalMs = 60_000 / policy.messagesPerMinute;
  const capacity = policy.messagesPerMinute + policy.burst;
  return { intervalMs, capacity, toleranceMs: (capacity - 1) * intervalMs };
}
