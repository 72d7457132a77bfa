import { reservationFromMarker } from '../../core/limiter/decide/settle';
import type { Decision, TokenReservation } from '../../core/limiter/decision';
import type { LimiterView } from '../../core/limiter/item/state';
import { isLimitName, limitKind } from '../../core/limiter/kinds/registry';
import { sharedLimitOf, teamOf } from '../../core/limiter/teams';
import { isExpired, type QueuedRequest } from '../../core/queue/request';
import { reportShadow } from '../shared/admission-report';
import { publishBudgetCrossings } from '../shared/budget-events';
import { defer, type QueueRecord, type ReplayDeps, type ReplayResult, type ReplayStep } from './deps';
import { begin, expire, failForGood, handOff, withContent } from './start';
import { parkOrDefer, waitForGlobal, waitForTime } from './wait';

/**
 * Serves the user's queue with one wake-up: the active request a crashed attempt left, else the
 * head of the waiting list, looking at the item again after each step that changed it.
 */
export async function serveUser(
  deps: ReplayDeps,
  userId: string,
  record: QueueRecord,
  remainingTimeMs: () => number,
): Promise<ReplayResult> {
  // The first look is a read: this instance's belief may be old. After that, what the last write
  // or read of this loop returned is the item (a stale belief only fails a condition, then reads).
  for (let fresh = true; ; fresh = false) {
    const nowMs = deps.now();
    const view = await deps.limiter.view(userId, undefined, nowMs, { fresh });
    const step = view.snap.active
      ? await serveActive(deps, userId, record, view, nowMs)
      : await serveHead(deps, userId, record, view, nowMs, remainingTimeMs);
    if (step !== 'look-again') return step;
  }
}

/**
 * The user's active request: waited for while its lease runs, taken over once it lapsed (the
 * reservation already made, so nothing is charged twice), failed for good after too many tries.
 */
async function serveActive(
  deps: ReplayDeps,
  userId: string,
  record: QueueRecord,
  view: LimiterView,
  nowMs: number,
): Promise<ReplayStep> {
  const { limiter, settings } = deps;
  const { snap } = view;
  const active = snap.active;
  if (!active) return 'look-again';
  if (active.leaseUntilEpochMs > nowMs) return defer(deps, record, active.leaseUntilEpochMs - nowMs);
  const request = snap.queued[active.requestId];
  const reservation = reservationOf(userId, view, active.requestId);
  if (!request || !reservation) {
    deps.log.error('active request without its data or reservation', { requestId: active.requestId });
    return 'done';
  }
  const taken = await limiter.takeOver(userId, active, nowMs + settings.leaseMs);
  if (taken.full) {
    // Its slot lapsed and another request took it: wait for a slot like any other.
    return (await parkOrDefer(deps, record, userId, view)) === 'retry' ? 'retry' : 'look-again';
  }
  if (!taken.ok) return 'look-again';
  deps.log.warn('taking over an interrupted request', {
    requestId: active.requestId,
    attempts: active.attempts + 1,
  });
  if (active.attempts + 1 > settings.maxAttempts) {
    return failForGood(deps, userId, request, reservation, 'too many interrupted attempts');
  }
  const lease = { untilEpochMs: nowMs + settings.leaseMs, attempts: active.attempts + 1 };
  const whole = await withContent(deps, record, userId, request, reservation, lease);
  if (typeof whole === 'string') return whole;
  return handOff(deps, record, userId, whole, reservation, lease, {
    model: view.snap.reservations[active.requestId]?.model,
  });
}

/**
 * The head of the waiting list, whichever request the wake-up was sent for: admitted by the same
 * atomic limiter write as a direct message, in `replay` mode (it leaves the list and becomes the
 * active request in that write), else it waits for what holds it back.
 */
async function serveHead(
  deps: ReplayDeps,
  userId: string,
  record: QueueRecord,
  view: LimiterView,
  nowMs: number,
  remainingTimeMs: () => number,
): Promise<ReplayStep> {
  const { limiter, settings } = deps;
  const head = view.snap.waiting[0];
  // Nothing waiting: a wake-up left over by a cancelled request (out of any line it was in).
  if (head === undefined) {
    await limiter.leaveGlobalLine(userId).catch(() => undefined);
    return 'done';
  }
  const request = view.snap.queued[head];
  if (!request || isExpired(request, nowMs)) {
    await expire(deps, userId, head, request, 'not started within MAX_QUEUE_WAIT');
    return 'look-again'; // the same wake-up serves the next head
  }
  const decision = await decideHead(deps, userId, head, request, view, nowMs);
  if (decision.allowed) {
    reportShadow(deps, userId, head, decision);
    await publishBudgetCrossings(deps, userId, head, decision.budgetCrossings, nowMs);
    if (decision.globalCostPercent !== undefined)
      deps.metrics.count('GlobalCostPercent', decision.globalCostPercent);
    const lease = { untilEpochMs: nowMs + settings.leaseMs, attempts: 1 };
    const whole = await withContent(deps, record, userId, request, decision.reservation, lease);
    if (typeof whole === 'string') return whole;
    return begin(
      deps,
      record,
      userId,
      whole,
      decision.reservation,
      lease.untilEpochMs,
      { model: decision.model, fallbackFrom: decision.fallbackFrom },
      decision.warnings ?? [],
    );
  }
  // The list moved under us (cancelled, another delivery): look again.
  if (decision.limit === 'queue') return 'look-again';
  // A global or a team limit binds (or someone goes first): wait in line for that capacity.
  if (sharedLimitOf(decision.limit) !== undefined)
    return waitForGlobal(deps, record, userId, request, decision, nowMs, view);
  // Every slot of a limit that frees by slots is taken: wait for a reply to end, not a timer.
  if (isLimitName(decision.limit) && limitKind(decision.limit).waitsFor === 'slot') {
    return parkOrDefer(deps, record, userId, view);
  }
  return waitForTime(deps, record, userId, head, request, decision, nowMs, remainingTimeMs);
}

/**
 * The head's admission: the same atomic limiter write as a direct message, in `replay` mode (it
 * leaves the list and becomes the active request in that write).
 */
function decideHead(
  deps: ReplayDeps,
  userId: string,
  head: string,
  request: QueuedRequest,
  view: LimiterView,
  nowMs: number,
): Promise<Decision> {
  const { settings } = deps;
  return deps.limiter.decide(
    {
      userId,
      requestId: head,
      claimTier: request.claimTier,
      claimTeam: request.claimTeam,
      estimatedInputTokens: request.estimatedInputTokens,
      maxTokens: request.maxTokens,
      model: request.model,
      modelMaxOutputTokens: settings.modelMaxOutputTokens,
      queue: {
        mode: 'replay',
        leaseUntilEpochMs: nowMs + settings.leaseMs,
        enqueuedAtEpochMs: request.enqueuedAtEpochMs,
        deadlineEpochMs: request.expiresAtEpochMs,
      },
      // Not yet admissible by the item just seen: wait, rather than read it again to be sure.
      seenSinceMs: view.observedAtMs,
    },
    nowMs,
  );
}

/**
 * The reservation of a request an interrupted attempt left active, rebuilt from the item: its tier
 * and team claims are the waiting request's, so its settle gives back to its team's shards even
 * when the team is the token's only (no record on the item to find it by).
 */
function reservationOf(userId: string, view: LimiterView, requestId: string): TokenReservation | undefined {
  const pending = view.snap.reservations[requestId];
  if (!pending) return undefined;
  const queued = view.snap.queued[requestId];
  const team = teamOf(view.snap.team, queued?.claimTeam);
  return {
    ...reservationFromMarker(userId, requestId, pending),
    claimTier: queued?.claimTier,
    ...(team === undefined ? {} : { team: { name: team } }),
  };
}
