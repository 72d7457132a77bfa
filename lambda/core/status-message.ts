import type { UserStatus } from './limiter/decision';
import { limitKind } from './limiter/kinds/registry';
import { estimatedWaitSeconds } from './queue/eta';
import { type GlobalWait, globalWaitReason, globalWaitSeconds } from './queue/global-eta';
import type { StatusMessage } from './server-messages';

/**
 * The protocol `status` message for a user's status. `globalWait`: the wait for a global slot of
 * the user's head, when a global limit holds the queue (added to each request's wait, and why).
 */
export function statusMessage(status: UserStatus, nowMs: number, globalWait?: GlobalWait): StatusMessage {
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
    limits: status.limits.map((l) => {
      const kind = limitKind(l.name);
      return {
        name: l.name,
        limit: l.limit,
        used: l.used,
        remaining: l.remaining,
        resetAt: l.resetAtEpochMs,
        unit: kind.unit,
        windowSeconds: kind.windowSeconds(status.policy),
        shadow: status.policy.shadow?.includes(l.name) ?? false,
      };
    }),
    queue: {
      queued: status.queued.length,
      requests: status.queued.map((requestId, i) => ({
        requestId,
        position: i + 1,
        estimatedWaitTime: waitOf(i + 1),
      })),
      ...(globalWait && status.queued.length > 0 ? { reason: globalWaitReason(globalWait) } : {}),
    },
    ...(status.global
      ? {
          global: status.global.map(({ resetAtEpochMs, ...g }) => ({ ...g, resetAt: resetAtEpochMs })),
        }
      : {}),
  };
}
