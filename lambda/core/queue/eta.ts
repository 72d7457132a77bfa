import type { DeniedDecision } from '../limiter/decision';
import type { LimitPolicy, LimitState } from '../limiter/kinds/registry';
import { isLimitName, limitKind } from '../limiter/kinds/registry';
import { sharedLimitOf } from '../limiter/teams';
import type { QueuedRequest } from './request';

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

/**
 * The least wait of the request at `position` of a user's queue, in seconds: none of the requests
 * up to it (a user's queue goes in order) is admitted before its `notBeforeEpochMs` — the end of
 * the window a stack-wide, team or model-quota limit refused it until. The user's own limits do
 * not say that (they may all have room), so without it the requests behind such a head would be
 * told 0 s while the head is told the window's end.
 */
export function waitFloorSeconds(
  queue: {
    readonly waiting: readonly string[];
    readonly queued: Readonly<Record<string, Pick<QueuedRequest, 'notBeforeEpochMs'>>>;
  },
  position: number,
  nowMs: number,
): number {
  let notBefore = nowMs;
  for (const id of queue.waiting.slice(0, position))
    notBefore = Math.max(notBefore, queue.queued[id]?.notBeforeEpochMs ?? nowMs);
  return Math.ceil((notBefore - nowMs) / 1000);
}

/**
 * Until when a request refused by `denied` cannot be admitted, when what holds it back frees with
 * time: a window's end (its own limits' or a stack-wide, team or model-quota one). Undefined when it
 * waits for a slot (a reply ending may free one any moment), or for nothing but the requests ahead.
 */
export function notBeforeEpochMs(denied: DeniedDecision, nowMs: number): number | undefined {
  const { limit } = denied;
  if (limit === 'queue' || limit === 'busy' || limit === 'duplicate' || limit === 'unavailable')
    return undefined;
  if (limit === 'model' || denied.retryAfterMs <= 0) return undefined;
  const kind = isLimitName(limit) ? limit : sharedLimitOf(limit);
  if (kind !== undefined && limitKind(kind).waitsFor === 'slot') return undefined;
  return nowMs + denied.retryAfterMs;
}
