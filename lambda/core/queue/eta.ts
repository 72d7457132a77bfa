import type { LimitPolicy, LimitState } from '../limiter/types';

/**
 * When would the k-th waiting request of a user be admitted, given the limiter's state now?
 *
 * The requests ahead of it each take one message from every limit, so the k-th request needs k
 * messages of room. Per limit (the latest one wins):
 * - message bucket (GCRA): the bucket holds `capacity` messages and is whole at `resetAt`; it holds
 *   k messages from `resetAt - (capacity - k) * interval` on;
 * - fixed-window quotas: room for k now if `remaining >= k`, else from the next window (`resetAt`);
 * - token budget: if too little is left for even one request, not before tomorrow (`resetAt`).
 *
 * Derived from counters only (no queue scan); exact for the message bucket, which is what a queue
 * usually waits on. Returns epoch ms.
 */
export function admissionTimeEpochMs(
  position: number,
  limits: readonly LimitState[],
  policy: LimitPolicy,
  nowMs: number,
): number {
  let at = nowMs;
  for (const limit of limits) {
    switch (limit.name) {
      case 'messageRate': {
        const capacity = policy.messagesPerMinute + policy.burst;
        const intervalMs = 60_000 / policy.messagesPerMinute;
        // Beyond a whole bucket, each further request waits one more interval after the reset.
        const ready = limit.resetAtEpochMs - (capacity - position) * intervalMs;
        at = Math.max(at, ready);
        break;
      }
      case 'hourlyMessages':
      case 'dailyMessages':
        if (limit.remaining < position) at = Math.max(at, limit.resetAtEpochMs);
        break;
      case 'dailyTokens':
        if (limit.remaining < policy.minOutputTokens) at = Math.max(at, limit.resetAtEpochMs);
        break;
    }
  }
  return Math.ceil(at);
}

/** Seconds from now until the k-th waiting request is admitted, rounded up (protocol unit). */
export function estimatedWaitSeconds(
  position: number,
  limits: readonly LimitState[],
  policy: LimitPolicy,
  nowMs: number,
): number {
  return Math.max(0, Math.ceil((admissionTimeEpochMs(position, limits, policy, nowMs) - nowMs) / 1000));
}
