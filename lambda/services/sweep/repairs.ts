import { describeError } from '../../core/errors';
import { EVENT_TYPES } from '../../core/events';
import { reservationFromMarker } from '../../core/limiter/decide/settle';
import type { TokenReservation } from '../../core/limiter/decision';
import { requestExpired, requestFailed } from '../../core/protocol';
import { wakeUpCause } from '../../core/queue/request';
import type { Repair, RepairKind } from '../../core/queue/sweep';
import { ReplyChannel } from '../reply-channel';
import { notifyPositions } from '../shared/queue-notices';
import { dropContent } from '../shared/request-content';
import { releaseWakeUps } from '../shared/wake-ups';
import type { SweepDeps } from './deps';

/** Makes one repair the plan asked for; returns the repairs that were made. */
export async function repair(
  deps: SweepDeps,
  userId: string,
  needed: Repair,
  nowMs: number,
): Promise<RepairKind[]> {
  switch (needed.kind) {
    case 'lapsed-slot': {
      if (!(await deps.index.dropSlots(userId, needed.slots))) return [];
      const requestIds = needed.slots.map(([id]) => id);
      await report(deps, 'lapsed-slot', { userId, requestIds });
      return ['lapsed-slot'];
    }
    case 'lost-wake-up':
    case 'orphaned-active':
      await wake(deps, userId, needed.requestId, nowMs);
      await report(deps, needed.kind, { userId, requestId: needed.requestId });
      return [needed.kind];
    case 'expired-head':
      return expireHead(deps, userId, needed.requestId, nowMs);
    case 'lapsed-direct-request':
      return endLapsedDirect(deps, userId, needed, nowMs);
  }
}

/**
 * A direct request whose lease lapsed with its reservation still held: its runner crashed after
 * its claim (Lambda's retry finds the claim taken and does nothing, so no on-failure record
 * comes), or its event never ran. Ended once, in one conditional settle:
 * - a runner kept the reply it produced but could not settle: settled to that usage under that
 *   runner's claim, and the kept message sent;
 * - else, charging nothing, under the claim seen — or, when no runner claimed it, under a claim
 *   the sweep makes first, conditioned on the lease seen (so a client that reused the id since
 *   is not touched, and a runner event arriving late finds it taken and does nothing) — and the
 *   user told `request_failed` (kept for `resume` with no connection).
 * Only the write that applied tells the user; a settle that finds it ended changes nothing.
 */
async function endLapsedDirect(
  deps: SweepDeps,
  userId: string,
  repair: Extract<Repair, { kind: 'lapsed-direct-request' }>,
  nowMs: number,
): Promise<RepairKind[]> {
  const { limiter, store, now } = deps;
  const { requestId } = repair;
  const view = await limiter.view(userId, undefined, nowMs, { fresh: false });
  const pending = view.snap.reservations[requestId];
  if (!pending) return [];
  const claim = repair.claim ?? (await claimLapsed(deps, userId, repair, nowMs));
  // Taken: a runner claimed it just now (an event run late); it ends it, or the next look does.
  if (claim === undefined) return [];
  const kept = await store.producedReply(userId, requestId, now());
  const usable = kept && kept.claim === claim ? kept : undefined;
  const price = pending.model ? deps.prices?.(pending.model) : undefined;
  const reservation: TokenReservation = {
    ...reservationFromMarker(userId, requestId, pending),
    ...(price ? { price } : {}),
  };
  const usage = usable?.usage ?? { inputTokens: 0, outputTokens: 0 };
  const settled = await limiter.reconcile(reservation, usage, now(), {
    endsActive: false,
    holder: { claim },
  });
  if (!settled.applied) return [];
  await releaseWakeUps(deps, settled, requestId);
  const message =
    usable?.message ??
    requestFailed(requestId, 'The reply was not completed; nothing was charged for it.', now());
  await new ReplyChannel(userId, '', deps).deliverFinal(requestId, message);
  if (usable) await store.dropProduced(userId, requestId).catch(() => undefined);
  await report(deps, 'lapsed-direct-request', {
    userId,
    requestId,
    outcome: usable ? 'kept-reply-delivered' : 'failed-nothing-charged',
  });
  return ['lapsed-direct-request'];
}

/**
 * The sweep's own claim on a lapsed request no runner claimed, conditioned on the lease seen (a
 * client that reused the id since is not touched); undefined when a runner took it first.
 */
async function claimLapsed(
  deps: SweepDeps,
  userId: string,
  repair: Extract<Repair, { kind: 'lapsed-direct-request' }>,
  nowMs: number,
): Promise<string | undefined> {
  const own = `sweep-${nowMs.toString(16)}`;
  const claimed = await deps.limiter.claim(userId, repair.requestId, own, {
    source: 'direct',
    inFlightUntilEpochMs: repair.leaseUntilEpochMs,
  });
  return claimed.kind === 'claimed' ? own : undefined;
}

/**
 * A head past its deadline that no wake-up expired: it leaves the list (conditioned on its
 * index, so a live wake-up doing the same at this moment tells the user, not both), its sender
 * is told, the rest move up, and — no wake-up having served this list — one is sent for them.
 */
async function expireHead(
  deps: SweepDeps,
  userId: string,
  requestId: string,
  nowMs: number,
): Promise<RepairKind[]> {
  const { limiter, now } = deps;
  const before = await limiter.view(userId, undefined, nowMs, { fresh: false });
  const request = before.snap.queued[requestId];
  const { removed } = await limiter.removeWaiting(userId, requestId);
  if (!removed) return [];
  await dropContent(deps, userId, request);
  if (request) {
    await new ReplyChannel(userId, request.connectionId, deps).deliverFinal(
      requestId,
      requestExpired(requestId, 'not started within MAX_QUEUE_WAIT', now()),
    );
  }
  await report(deps, 'expired-head', { userId, requestId });
  const after = await limiter.view(userId, undefined, nowMs, { fresh: false });
  await notifyPositions(deps, userId, after);
  const next = after.snap.waiting[0];
  if (next === undefined || after.snap.active) return ['expired-head'];
  await wake(deps, userId, next, nowMs);
  await report(deps, 'lost-wake-up', { userId, requestId: next });
  return ['expired-head', 'lost-wake-up'];
}

async function wake(deps: SweepDeps, userId: string, requestId: string, nowMs: number): Promise<void> {
  await deps.queue.send({ v: 1, userId, requestId, cause: wakeUpCause.sweep(nowMs) });
}

/** One repair: a log line (ids only), the metric by kind, and the event. */
export async function report(
  deps: SweepDeps,
  kind: RepairKind,
  detail: Record<string, unknown>,
  count = 1,
): Promise<void> {
  const { log, metrics, events, now } = deps;
  log.warn('state repaired', { kind, ...detail });
  metrics.count('StateRepaired', count, { kind });
  await events
    .publish(EVENT_TYPES.stateRepaired, { kind, ...detail, repairedAt: new Date(now()).toISOString() })
    .catch((err) => log.error('could not publish State Repaired', { kind, error: describeError(err) }));
}
