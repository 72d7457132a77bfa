import type { DeniedDecision } from '../../core/limiter/decision';
import type { GlobalBound } from '../../core/limiter/global/limits';
import { modelScope, parseModelQuotaName } from '../../core/limiter/global/model-quotas';
import type { LimiterView } from '../../core/limiter/item/state';
import { limitKind } from '../../core/limiter/kinds/registry';
import { sharedLimitOf, teamScope } from '../../core/limiter/teams';
import type { QueuedRequest } from '../../core/queue/request';
import { notifyPositions } from '../shared/queue-notices';
import { defer, type QueueRecord, type ReplayDeps, type ReplayResult, type ReplayStep } from './deps';
import { expire } from './start';

/** While waiting for global capacity that may free any moment, the wake-up looks again this often. */
const GLOBAL_RECHECK_MS = 5000;

/**
 * Holds the wake-up until the earliest slot lease lapses and parks it in the user's item: the
 * settle that frees a slot releases it at once. `look-again` when a reply ended since the refusal
 * was decided (the park's condition failed).
 */
export async function parkOrDefer(
  deps: ReplayDeps,
  record: QueueRecord,
  userId: string,
  view: LimiterView,
): Promise<ReplayStep> {
  const { limiter, now } = deps;
  const state = view.limits.find((l) => limitKind(l.name).waitsFor === 'slot');
  const untilLapse = Math.max(1000, (state?.resetAtEpochMs ?? now() + 1000) - now());
  // Hold first: a settle between the park and a later hold would be undone by the hold.
  await deps.queue.defer(record.receiptHandle, untilLapse);
  const { ok } = await limiter.park(userId, record.receiptHandle);
  return ok ? 'retry' : 'look-again';
}

/**
 * Held back by a global limit, or by someone before it in line: the user joins the line (its own
 * line item, with its wake-up, so a settle that frees global capacity can wake the first in line
 * at once) and the wake-up is hidden until the limit's next window, for a few seconds when
 * capacity may free any moment (in flight, or another's turn), or for up to a minute when it is
 * far back in line (the decision's retryAfter: waitInLineMs) — never past its deadline.
 */
export async function waitForGlobal(
  deps: ReplayDeps,
  record: QueueRecord,
  userId: string,
  request: QueuedRequest,
  decision: DeniedDecision,
  nowMs: number,
  view: LimiterView,
): Promise<ReplayResult> {
  // A team's limit or a global one by its kind; else a model's account quota (global.model.<id>.…).
  const limit: GlobalBound =
    sharedLimitOf(decision.limit) ?? (decision.limit.slice('global.'.length) as GlobalBound);
  // A model's quota holds back only requests on that model (GlobalWaiter.scope).
  const quota = parseModelQuotaName(limit);
  deps.metrics.count(decision.team === undefined ? 'GlobalLimitExceeded' : 'TeamLimitExceeded');
  const untilExpiry = request.expiresAtEpochMs - nowMs;
  const delayMs = Math.min(
    untilExpiry,
    decision.retryAfterMs <= 1000 ? GLOBAL_RECHECK_MS : decision.retryAfterMs,
  );
  await deps.queue.defer(record.receiptHandle, delayMs);
  await deps.limiter.joinGlobalLine({
    userId,
    tier: decision.tier,
    enqueuedAtEpochMs: request.enqueuedAtEpochMs,
    deadlineEpochMs: request.expiresAtEpochMs,
    wakeUp: record.receiptHandle,
    seenAtEpochMs: nowMs,
    // Due again when its wake-up comes back: not stale before then (a window's start, say).
    wakeAtEpochMs: nowMs + delayMs,
    limit,
    // A team's waiter waits for its team's capacity, a model quota's for the model's: each holds
    // back only requests that take the same capacity (SPEC §9.4).
    ...(decision.team !== undefined
      ? { scope: teamScope(decision.team) }
      : quota
        ? { scope: modelScope(quota.modelId) }
        : {}),
    // Those behind it in line count them in their ETAs (lambda/core/queue/global-eta.ts).
    queued: view.snap.waiting.length,
  });
  // Every look tells the user's requests their wait as the line now stands, and why they wait
  // (SPEC §9.5): the head gets no other notice while it waits in line.
  await notifyPositions(deps, userId, view);
  return 'retry';
}

/**
 * Held back by a limit that frees with time: expired now if it cannot run before its deadline,
 * else the wake-up is hidden until then, or, when the wait is short, slept in-process to the
 * exact millisecond instead of SQS's whole seconds.
 */
export async function waitForTime(
  deps: ReplayDeps,
  record: QueueRecord,
  userId: string,
  head: string,
  request: QueuedRequest,
  decision: DeniedDecision,
  nowMs: number,
  remainingTimeMs: () => number,
): Promise<ReplayStep> {
  const delayMs = decision.retryAfterMs;
  const untilExpiry = request.expiresAtEpochMs - nowMs;
  if (delayMs >= untilExpiry) {
    // It cannot run before its deadline (its tokens no longer fit the budget, say): waiting
    // would only hold everyone behind it until then. It expires now, and says why.
    await expire(deps, userId, head, request, `${decision.limit} will not allow it before its deadline`);
    return 'look-again';
  }
  if (delayMs > deps.settings.maxInProcessWaitMs || delayMs + 5000 > remainingTimeMs()) {
    return defer(deps, record, delayMs);
  }
  await deps.sleep(delayMs);
  return 'look-again';
}
