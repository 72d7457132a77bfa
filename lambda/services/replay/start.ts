import { describeError } from '../../core/errors';
import type { TokenReservation } from '../../core/limiter/decision';
import type { LimitWarning } from '../../core/limiter/kinds/registry';
import { limitWarning, queueProcessingStarted, requestExpired, requestFailed } from '../../core/protocol';
import type { QueuedRequest, WaitingRequest } from '../../core/queue/request';
import { notifyPositions } from '../shared/queue-notices';
import { dropContent } from '../shared/request-content';
import { releaseWakeUps } from '../shared/wake-ups';
import {
  channelOf,
  defer,
  type QueueRecord,
  type ReplayDeps,
  type ReplayResult,
  type ReplayStep,
  type Served,
} from './deps';

/**
 * An admitted head: its sender is told it started (and any limit warning), everyone behind it its
 * new place, and it is handed to the reply runner.
 */
export async function begin(
  deps: ReplayDeps,
  record: QueueRecord,
  userId: string,
  request: WaitingRequest,
  reservation: TokenReservation,
  leaseUntilEpochMs: number,
  served: Served,
  warnings: readonly LimitWarning[],
): Promise<ReplayResult> {
  const { limiter, now } = deps;
  const nowMs = now();
  const channel = channelOf(deps, userId, request.connectionId);
  await channel.deliver(queueProcessingStarted(request.requestId, nowMs));
  for (const warning of warnings) await channel.deliver(limitWarning(warning, nowMs));
  deps.metrics.count('RequestsProcessed');
  deps.metrics.milliseconds('QueueWaitTime', nowMs - request.enqueuedAtEpochMs);
  // Everyone behind moved up one place: tell them, from the item the admission just wrote.
  await notifyPositions(deps, userId, await limiter.view(userId, request.claimTier, nowMs, { fresh: false }));
  return handOff(
    deps,
    record,
    userId,
    request,
    reservation,
    { untilEpochMs: leaseUntilEpochMs, attempts: 1 },
    served,
  );
}

/**
 * Hands the active request to the reply runner and holds this wake-up in flight for the lease:
 * FIFO hands out nothing more of the user's group meanwhile, and the runner releases it once the
 * request is settled. If the runner dies, the wake-up comes back after the lease and the next
 * delivery takes over.
 */
export async function handOff(
  deps: ReplayDeps,
  record: QueueRecord,
  userId: string,
  request: WaitingRequest,
  reservation: TokenReservation,
  lease: { readonly untilEpochMs: number; readonly attempts: number },
  served: Served,
): Promise<ReplayResult> {
  const { limiter, now } = deps;
  // Hold first: a short reply may be settled, and its wake-up released, before the invocation
  // call even returns; a hold set after that would shut the user's queue for the whole lease.
  await deps.queue.defer(record.receiptHandle, lease.untilEpochMs - now());
  try {
    await deps.handoff.handOff({
      v: 1,
      userId,
      claimTier: request.claimTier,
      claimTeam: request.claimTeam,
      requestId: request.requestId,
      connectionId: request.connectionId,
      prompt: request.message,
      reservation,
      model: served.model,
      fallbackFrom: served.fallbackFrom,
      source: 'queue',
      lease,
      inFlightUntilEpochMs: lease.untilEpochMs,
      wakeUpReceiptHandle: record.receiptHandle,
      conversation: request.conversation,
    });
  } catch (err) {
    deps.log.error('reply hand-off failed; the next delivery takes over', {
      requestId: request.requestId,
      error: describeError(err),
    });
    // End the lease now, so the next delivery takes over at once instead of after it.
    await limiter
      .takeOver(
        userId,
        { requestId: request.requestId, leaseUntilEpochMs: lease.untilEpochMs, attempts: lease.attempts },
        now(),
        { endsLease: true },
      )
      .catch(() => undefined);
    return defer(deps, record, 2000);
  }
  return 'retry';
}

/** A request whose attempts all failed: nothing charged, moved to the DLQ, its sender told. */
export async function failForGood(
  deps: ReplayDeps,
  userId: string,
  request: QueuedRequest,
  reservation: TokenReservation,
  reason: string,
): Promise<ReplayResult> {
  const { queue, limiter, now } = deps;
  // What the crashed attempts produced is unknown: nothing is charged, and the request ends.
  const outcome = await limiter.reconcile(reservation, { inputTokens: 0, outputTokens: 0 }, now(), {
    endsActive: true,
  });
  await releaseWakeUps(deps, outcome, request.requestId);
  const body = JSON.stringify({ v: 1, userId, requestId: request.requestId });
  await queue.moveToDeadLetterQueue(body, userId, `failed-${request.requestId}`, reason);
  deps.metrics.count('RequestsFailed');
  await channelOf(deps, userId, request.connectionId).deliverFinal(
    request.requestId,
    requestFailed(
      request.requestId,
      'The request could not be processed; nothing was charged for it.',
      now(),
    ),
  );
  return 'done';
}

/** A head that waited past its deadline (or lost its data) leaves the list; the user is told. */
export async function expire(
  deps: ReplayDeps,
  userId: string,
  requestId: string,
  request: QueuedRequest | undefined,
  reason: string,
): Promise<void> {
  const { limiter, now } = deps;
  const { removed } = await limiter.removeWaiting(userId, requestId);
  if (!removed || !request) return;
  await dropContent(deps, userId, request);
  await channelOf(deps, userId, request.connectionId).deliverFinal(
    requestId,
    requestExpired(requestId, reason, now()),
  );
  await notifyPositions(deps, userId, await limiter.view(userId, undefined, now(), { fresh: false }));
}

/**
 * The admitted (or taken over) request whole: its content read from the Requests table, one
 * strongly consistent GetItem (written before its enqueue, so it is there). Missing — it should
 * never be — the request fails for good, charged nothing, and the same wake-up serves the next
 * head (`look-again`). A read that fails ends this attempt's lease now, and the wake-up comes back
 * in 2 s to take it over, like a failed hand-off.
 */
export async function withContent(
  deps: ReplayDeps,
  record: QueueRecord,
  userId: string,
  request: QueuedRequest,
  reservation: TokenReservation,
  lease: { readonly untilEpochMs: number; readonly attempts: number },
): Promise<WaitingRequest | ReplayStep> {
  const { requestId } = request;
  let content: Awaited<ReturnType<ReplayDeps['store']['getContent']>>;
  try {
    content = await deps.store.getContent(userId, request);
  } catch (err) {
    deps.log.error('could not read a queued request; the next delivery takes over', {
      requestId,
      error: describeError(err),
    });
    const active = { requestId, leaseUntilEpochMs: lease.untilEpochMs, attempts: lease.attempts };
    await deps.limiter.takeOver(userId, active, deps.now(), { endsLease: true }).catch(() => undefined);
    return defer(deps, record, 2000);
  }
  if (content) return { ...request, ...content };
  deps.log.error('queued request without its content: failed for good', { requestId });
  await failForGood(deps, userId, request, reservation, 'request content missing');
  return 'look-again';
}
