import type { TeamLimitState, UserStatus } from './limiter/decision';
import type { GlobalLimitState } from './limiter/global/limits';
import { type LimitPolicy, type LimitState, limitKind } from './limiter/kinds/registry';
import { estimatedWaitSeconds } from './queue/eta';
import { type GlobalWait, globalWaitReason, globalWaitSeconds } from './queue/global-eta';
import { rateLimitFields } from './rate-limit-fields';
import type { MessageComplete, SharedLimit, StatusLimit, StatusMessage } from './server-messages';

/** The user's limits as `status` shows them: the one builder `status` and `message_complete` share. */
export function statusLimits(limits: readonly LimitState[], policy: LimitPolicy): StatusLimit[] {
  return limits.map((l) => {
    const kind = limitKind(l.name);
    return {
      name: l.name,
      limit: l.limit,
      used: l.used,
      remaining: l.remaining,
      resetAt: l.resetAtEpochMs,
      unit: kind.unit,
      windowSeconds: kind.windowSeconds(policy),
      shadow: policy.shadow?.includes(l.name) ?? false,
    };
  });
}

/**
 * The protocol `status` message for a user's status. `globalWait`: the wait for a global slot of
 * the user's head, when a global limit holds the queue (added to each request's wait, and why).
 */
export function statusMessage(status: UserStatus, nowMs: number, globalWait?: GlobalWait): StatusMessage {
  const limits = statusLimits(status.limits, status.policy);
  const waitOf = (position: number) =>
    Math.max(
      estimatedWaitSeconds(position, status.limits, status.policy, nowMs),
      globalWait ? globalWaitSeconds(globalWait, position, nowMs) : 0,
    );
  return {
    type: 'status',
    timestamp: nowMs,
    userId: status.userId,
    tier: status.tier,
    limits,
    ...rateLimitFields(limits, nowMs),
    queue: {
      queued: status.queued.length,
      requests: status.queued.map((requestId, i) => ({
        requestId,
        position: i + 1,
        estimatedWaitTime: waitOf(i + 1),
      })),
      ...(globalWait && status.queued.length > 0 ? { reason: globalWaitReason(globalWait) } : {}),
    },
    ...(status.global ? { global: sharedLimits(status.global) } : {}),
    ...(status.team
      ? {
          team: {
            name: status.team.name,
            source: status.team.source,
            limits: sharedLimits(status.team.limits),
          },
        }
      : {}),
  };
}

/** Limits many users share (global, a team's) as `status` shows them: totals, `resetAt` in epoch ms. */
function sharedLimits(limits: readonly (GlobalLimitState | TeamLimitState)[]): SharedLimit[] {
  return limits.map(({ resetAtEpochMs, ...l }) => ({ ...l, resetAt: resetAtEpochMs }));
}

/**
 * The user's limits after a settle, as the settle's own write returned the item (SPEC §9.3 "fresh
 * limits without asking"): `policy` and `limits` evaluated on that item at `atMs`.
 */
export interface LimitsAfter {
  readonly policy: LimitPolicy;
  readonly limits: readonly LimitState[];
  readonly atMs: number;
}

/** What a settle says besides whether it landed (the limiter port's `SettleOutcome` extends it). */
export interface SettledLimits {
  /**
   * The user's limits as the item the settle wrote (or found settled) holds them: the write's own
   * answer (ReturnValues ALL_NEW), no extra call. What `message_complete.limits` shows.
   */
  readonly limitsAfter?: LimitsAfter;
}

/** A `message_complete` with the limits its settle left, exactly as `status` would show them then. */
export function withLimits(message: MessageComplete, after: LimitsAfter): MessageComplete {
  const limits = statusLimits(after.limits, after.policy);
  return { ...message, limits, ...rateLimitFields(limits, after.atMs) };
}
