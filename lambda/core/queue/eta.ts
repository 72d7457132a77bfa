import type { LimitPolicy, LimitState } from '../limiter/kinds/registry';
import { limitKind } from '../limiter/kinds/registry';

/**
 * When would the k-th waiting request of a user be admitted, given the limiter's state now? The
 * requests ahead of it each take one message from every limit, so the k-th request needs k
 * messages of room; each limit kind says when it has that room (its `readyAtEpochMs`), and the
 * latest one wins. Derived from counters only (no queue scan); exact for the message bucket, which
 * is what a queue usually waits on. Returns epoch ms.
 */
export function admissionTimeEpochMs(
  position: number,
  limits: readonly LimitState[],
  policy: LimitPolicy,
  nowMs: number,
): number {
  let at = nowMs;
  for (const state of limits)
    at = Math.max(at, limitKind(state.name).readyAtEpochMs(position, state, policy));
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
