import { describeError } from '../../core/errors';
import type { Identity } from '../../core/identity';
import { limitReason } from '../../core/limit-reason';
import type { DeniedDecision } from '../../core/limiter/decision';
import { isLimitName, limitKind } from '../../core/limiter/kinds/registry';
import { requestQueued } from '../../core/protocol';
import { estimatedWaitSeconds, waitFloorSeconds } from '../../core/queue/eta';
import { globalWaitReason, globalWaitSeconds } from '../../core/queue/global-eta';
import { wakeUpCause } from '../../core/queue/request';
import type { EnqueueOutcome } from '../ports';
import { globalWaitOf } from '../shared/queue-notices';
import { dropContent } from '../shared/request-content';
import { type ChatServiceDeps, channelOf, type Refusal, type SendOutcome } from './deps';
import {
  duplicate,
  limiterUnavailable,
  overLimit,
  queuedReason,
  queueFull,
  queueUnavailable,
} from './refusals';

type QueuedSlot = Extract<EnqueueOutcome, { readonly kind: 'queued' }>;

/**
 * A refused request: queued when the decision's write gave it a place (then its wake-up is sent
 * and the user told its position), else refused with the reason.
 */
export async function queueOrRefuse(
  deps: ChatServiceDeps,
  identity: Identity,
  connectionId: string,
  requestId: string,
  decision: DeniedDecision,
  slot: EnqueueOutcome | undefined,
  nowMs: number,
): Promise<SendOutcome> {
  const refusal = refusalOf(deps, requestId, decision, slot, nowMs);
  if (refusal || slot?.kind !== 'queued') return refusal ?? overLimit(decision, requestId, nowMs);
  const undone = await sendWakeUp(deps, identity.userId, requestId, slot, nowMs);
  if (undone) return undone;
  deps.metrics.count('RequestsQueued');
  const totalInQueue = await deps.queue.depth().catch(() => slot.snap.waiting.length);
  // A global limit holding the queue (this request's refusal, or the head's before it) adds its
  // wait, and is the reason, unless a limit of the user's own refused it.
  const global = isOwnLimit(decision)
    ? undefined
    : await globalWaitOf(deps, identity.userId, { snap: slot.snap, tier: decision.tier }, nowMs);
  const place = {
    requestId,
    position: slot.position,
    totalInQueue: Math.max(totalInQueue, slot.snap.waiting.length),
    estimatedWaitTime: Math.max(
      waitSeconds(decision, slot.position, nowMs),
      global ? globalWaitSeconds(global, slot.position, nowMs) : 0,
      waitFloorSeconds(slot.snap, slot.position, nowMs),
    ),
    // The enqueue write's own version of the list: a queue_position computed from a later write
    // (the processor admitted the head meanwhile) may reach the client first, and wins.
    queueVersion: slot.snap.queueVersion ?? 0,
  };
  await channelOf(deps, identity.userId, connectionId).deliver(
    requestQueued(
      place,
      global ? globalWaitReason(global) : queuedReason(decision),
      deps.now(),
      global ? globalWaitReason(global) : limitReason(decision, decision.retryAfterMs, nowMs),
    ),
  );
  return { kind: 'queued', requestId, position: slot.position };
}

/** The refusal of a request that got no place in the queue (counted in its limit's metric). */
function refusalOf(
  deps: ChatServiceDeps,
  requestId: string,
  decision: DeniedDecision,
  slot: EnqueueOutcome | undefined,
  nowMs: number,
): Refusal | undefined {
  const { settings, metrics } = deps;
  if (decision.limit === 'duplicate' || slot?.kind === 'duplicate') return duplicate(requestId);
  if (decision.limit === 'unavailable') return limiterUnavailable(decision, requestId, nowMs);
  // Each limit kind names the metric its refusals count in.
  if (isLimitName(decision.limit)) metrics.count(limitKind(decision.limit).metric);
  if (decision.limit.startsWith('global.')) metrics.count('GlobalLimitExceeded');
  if (decision.team !== undefined) metrics.count('TeamLimitExceeded');
  if (!slot) {
    if (settings.maxQueuedPerUser > 0 && decision.queued >= settings.maxQueuedPerUser) {
      return queueFull(decision, requestId, decision.queued, settings, nowMs);
    }
    return overLimit(decision, requestId, nowMs);
  }
  if (slot.kind === 'full') return queueFull(decision, requestId, slot.queued, settings, nowMs);
  // Its content could not be written: not queued, nothing in the user's item.
  if (slot.kind === 'unstored') return queueUnavailable(requestId);
  // The user's item stayed busy: nothing was written for this request.
  if (slot.kind === 'busy') return overLimit(decision, requestId, nowMs, 1000);
  return undefined;
}

/**
 * The user's queue needs one wake-up, not one per request: the processor serves the head with
 * whatever wake-up it holds and keeps it until the list is empty. So only the request that starts
 * the list sends one (linearized on the item: an append after the processor saw the list empty is
 * at position 1). Returns a refusal when the send failed and the request was taken back out.
 */
async function sendWakeUp(
  deps: ChatServiceDeps,
  userId: string,
  requestId: string,
  slot: QueuedSlot,
  nowMs: number,
): Promise<Refusal | undefined> {
  try {
    // The wake-up's deduplication id includes the enqueue instant: a request id reused after its
    // request ended is a new wake-up (issue 20, finding 1).
    const cause = wakeUpCause.enqueue(slot.snap.queued[requestId]?.enqueuedAtEpochMs ?? nowMs);
    if (slot.position === 1) await deps.queue.send({ v: 1, userId, requestId, cause });
    return undefined;
  } catch (err) {
    // Without its wake-up the request must not stay in the list: take it out again.
    deps.log.error('enqueue failed', { requestId, error: describeError(err) });
    const undone = await deps.limiter.removeWaiting(userId, requestId).catch((removeErr) => {
      // Left in the list without a wake-up: the sweep sends one (its enqueue put the user in
      // the sweep index), so it is served or expires — never lost.
      deps.log.error('could not take a request back out of the queue', {
        requestId,
        error: describeError(removeErr),
      });
      return undefined;
    });
    if (!undone?.removed) return undefined;
    await dropContent(deps, userId, slot.snap.queued[requestId]);
    await wakeNewHead(deps, userId, undone.snap.waiting[0]);
    return queueUnavailable(requestId);
  }
}

/**
 * A request queued behind this one while its wake-up failed did not send one (it was not first):
 * now it is the head of a list nobody wakes, so it gets a wake-up of its own (issue 20,
 * finding 3). If that send fails too, the sweep sends one within two minutes.
 */
async function wakeNewHead(deps: ChatServiceDeps, userId: string, head: string | undefined): Promise<void> {
  if (head === undefined) return;
  try {
    await deps.queue.send({ v: 1, userId, requestId: head, cause: wakeUpCause.head(deps.now()) });
  } catch (err) {
    deps.log.error('could not wake the queue after a failed enqueue; the sweep will', {
      requestId: head,
      error: describeError(err),
    });
  }
}

/**
 * Seconds until the request at `position` of the user's queue is admitted, from the limiter's
 * state; never less than the refusal's own `retryAfter`, which is exact for the head.
 */
export function waitSeconds(decision: DeniedDecision, position: number, nowMs: number): number {
  return Math.max(
    estimatedWaitSeconds(position, decision.limits, decision.policy, nowMs),
    Math.ceil(decision.retryAfterMs / 1000),
  );
}

/** Refused by a limit of the user's own (not the queue before it, nor a global one). */
const isOwnLimit = (decision: DeniedDecision) =>
  isLimitName(decision.limit) && !decision.limit.startsWith('global.');
