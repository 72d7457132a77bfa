import type { UserStatus } from './limiter/decision';
import { limitKind } from './limiter/kinds/registry';
import type { StatusMessage } from './server-messages';

/** The protocol `status` message for a user's status. */
export function statusMessage(status: UserStatus, nowMs: number): StatusMessage {
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
      requests: status.queued.map((requestId, i) => ({ requestId, position: i + 1 })),
    },
    ...(status.global
      ? {
          global: status.global.map(({ resetAtEpochMs, ...g }) => ({ ...g, resetAt: resetAtEpochMs })),
        }
      : {}),
  };
}
