import { limitReason, queueFullClause } from '../../core/limit-reason';
import type { DeniedDecision } from '../../core/limiter/decision';
import { rateLimitFields } from '../../core/rate-limit-fields';
import { statusLimits } from '../../core/status-message';
import type { Refusal } from './deps';

/**
 * Every refusal the chat flows answer with, as a value: the handler turns it into a protocol
 * `error`. The wording and the details are the protocol's (docs/protocol.md).
 */
export function refused(
  code: Refusal['code'],
  message: string,
  requestId?: string,
  details?: Record<string, unknown>,
): Refusal {
  return { kind: 'refused', code, message, requestId, details };
}

/** The decision's write may have landed: never "nothing was counted". */
export function outcomeUnknown(requestId: string): Refusal {
  return refused(
    'INTERNAL_ERROR',
    'The outcome of this request is unknown: it may have been counted. Check status before resending.',
    requestId,
    { retryAfter: 1, outcomeUnknown: true },
  );
}

/** The request asked for a model its tier may not use (or the tier has none). */
export function modelUnavailable(requestId: string, model: string | undefined): Refusal {
  return refused(
    'INVALID_REQUEST',
    model === undefined
      ? 'No model is available for your tier.'
      : `Model "${model}" is not available for your tier.`,
    requestId,
    { field: 'model' },
  );
}

/** The reply runner could not be started, and the reservation was given back (or never made). */
export function notStarted(requestId: string): Refusal {
  return refused('INTERNAL_ERROR', 'The reply could not be started; nothing was charged.', requestId, {
    retryAfter: 1,
  });
}

export function duplicate(requestId: string): Refusal {
  return refused(
    'INVALID_REQUEST',
    'A request with this requestId is still in flight or waiting.',
    requestId,
  );
}

export function limiterUnavailable(decision: DeniedDecision, requestId: string, nowMs: number): Refusal {
  return refused('INTERNAL_ERROR', 'The limiter is unavailable; try again shortly.', requestId, {
    retryAfter: Math.ceil(decision.retryAfterMs / 1000),
    reason: limitReason(decision, decision.retryAfterMs, nowMs),
  });
}

/** The wake-up of a queued request could not be sent, and the request was taken back out. */
export function queueUnavailable(requestId: string): Refusal {
  return refused('INTERNAL_ERROR', 'The queue is unavailable; the request was not queued.', requestId, {
    retryAfter: 1,
  });
}

/** A limit refused the request and it may not wait (or waiting failed). */
export function overLimit(
  decision: DeniedDecision,
  requestId: string,
  nowMs: number,
  retryAfterMs = decision.retryAfterMs,
): Refusal {
  const retryAfter = Math.max(1, Math.ceil(retryAfterMs / 1000));
  return {
    ...refused(
      'RATE_LIMIT_EXCEEDED',
      decision.limit === 'busy'
        ? 'Too many requests at once; try again shortly.'
        : `Limit ${decision.limit} reached.`,
      requestId,
      {
        limit: decision.limit,
        retryAfter,
        resetAt: decision.resetAtEpochMs,
        // When the limit frees, whatever this refusal's own retry (a busy enqueue says 1 s).
        reason: limitReason(decision, decision.retryAfterMs, nowMs),
      },
    ),
    ...limitFields(decision, nowMs),
  };
}

/** The request may not wait: the user has `queued` waiting already, the most they may. */
export function queueFull(
  decision: DeniedDecision,
  requestId: string,
  queued: number,
  settings: { readonly maxQueuedPerUser: number },
  nowMs: number,
): Refusal {
  return {
    ...refused('QUEUE_FULL', `You already have ${queued} requests waiting.`, requestId, {
      queued,
      maxQueued: settings.maxQueuedPerUser,
      reason: limitReason(
        decision,
        decision.retryAfterMs,
        nowMs,
        queueFullClause(queued, settings.maxQueuedPerUser),
      ),
    }),
    ...limitFields(decision, nowMs),
  };
}

/** The user's limits, as the decision saw them, in the IETF RateLimit fields' syntax. */
function limitFields(decision: DeniedDecision, nowMs: number) {
  return rateLimitFields(statusLimits(decision.limits, decision.policy), nowMs);
}

export function notQueued(requestId: string): Refusal {
  return refused('NOT_FOUND', 'No queued or streaming request of yours with this id.', requestId);
}

/** Why a queued request waits, for its `request_queued`. */
export function queuedReason(decision: DeniedDecision): string {
  if (decision.limit === 'queue') return 'Queued behind your earlier requests.';
  if (decision.limit === 'busy') return 'Queued: too many of your requests arrived at once.';
  return `Limit ${decision.limit} reached; your request is queued and will run automatically.`;
}
