import { describeError } from '../../core/errors';
import type { TokenReservation } from '../../core/limiter/decision';
import type { LimitWarning } from '../../core/limiter/kinds/registry';
import { limitWarning, queueProcessingStarted, requestExpired, requestFailed } from '../../core/protocol';
import type { WaitingRequest } from '../../core/queue/request';
import { notifyPositions } from '../shared/queue-notices';
import { releaseWakeUps } from '../shared/wake-ups';
import { channelOf, defer, type QueueRecord, type ReplayDeps, type ReplayResult, type Served } from './deps';

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
  request: WaitingRequest,
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
  request: WaitingRequest | undefined,
  reason: string,
): Promise<void> {
  const { limiter, now } = deps;
  const { removed } = await limiter.removeWaiting(userId, requestId);
  if (!removed || !request) return;
  await channelOf(deps, userId, request.connectionId).deliverFinal(
    requestId,
    requestExpired(requestId, reason, now()),
  );
  await notifyPositions(deps, userId, await limiter.view(userId, undefined, now(), { fresh: false }));
}
