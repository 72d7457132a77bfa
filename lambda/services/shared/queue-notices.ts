import type { LimiterView } from '../../core/limiter/item/state';
import { teamOf } from '../../core/limiter/teams';
import { queuePosition } from '../../core/protocol';
import { estimatedWaitSeconds, waitFloorSeconds } from '../../core/queue/eta';
import { type GlobalWait, globalWaitReason, globalWaitSeconds } from '../../core/queue/global-eta';
import type {
  ConnectionDirectory,
  ConnectionSender,
  LimiterPort,
  ReplyStorePort,
  RequestQueuePort,
} from '../ports';
import { ReplyChannel } from '../reply-channel';

/**
 * Tells each of the user's waiting requests from `fromIndex` on its new place after the list
 * moved (the head was admitted, or a request ahead left): position (1 = next), the queue's total
 * and the wait derived from the limiter's state. Positions, waits and each request's connection
 * come from the same item the move was written to (`view`): no scan, no other read. A position
 * only ever goes down: the list only grows at its end. Notices sent by different functions may
 * cross on the way; each carries the list's version, so the client keeps the newer one.
 */
export async function notifyPositions(
  deps: {
    readonly queue: Pick<RequestQueuePort, 'depth'>;
    readonly store: ReplyStorePort;
    readonly sender: ConnectionSender;
    readonly directory: ConnectionDirectory;
    readonly now: () => number;
    readonly limiter?: Pick<LimiterPort, 'globalWait'>;
  },
  userId: string,
  view: LimiterView,
  fromIndex = 0,
): Promise<void> {
  const { snap } = view;
  if (snap.waiting.length <= fromIndex) return;
  const nowMs = deps.now();
  const totalInQueue = await deps.queue.depth().catch(() => 0);
  const global = await globalWaitOf(deps, userId, view, nowMs);
  await Promise.all(
    snap.waiting.slice(fromIndex).map(async (requestId, offset) => {
      const request = snap.queued[requestId];
      if (!request) return;
      const position = fromIndex + offset + 1;
      const place = {
        requestId,
        position,
        totalInQueue: Math.max(totalInQueue, snap.waiting.length),
        estimatedWaitTime: Math.max(
          estimatedWaitSeconds(position, view.limits, view.policy, nowMs),
          global ? globalWaitSeconds(global, position, nowMs) : 0,
          waitFloorSeconds(snap, position, nowMs),
        ),
        queueVersion: snap.queueVersion ?? 0,
        ...(global ? { reason: globalWaitReason(global) } : {}),
      };
      await new ReplyChannel(userId, request.connectionId, deps).deliver(queuePosition(place, deps.now()));
    }),
  );
}

/**
 * The wait for global capacity of the user's head, or for its team's (the team in effect: the
 * user's record, else the head's stored claim), when a global or team limit holds the queue (as
 * this instance knows it, no call of its own); undefined when none binds or the estimate fails.
 */
export async function globalWaitOf(
  deps: { readonly limiter?: Pick<LimiterPort, 'globalWait'> },
  userId: string,
  view: Pick<LimiterView, 'snap' | 'tier'>,
  nowMs: number,
): Promise<GlobalWait | undefined> {
  const head = view.snap.queued[view.snap.waiting[0] ?? ''];
  if (!head || !deps.limiter?.globalWait) return undefined;
  const me = {
    userId,
    tier: view.tier,
    enqueuedAtEpochMs: head.enqueuedAtEpochMs,
    deadlineEpochMs: head.expiresAtEpochMs,
  };
  const team = teamOf(view.snap.team, head.claimTeam);
  return deps.limiter.globalWait(me, nowMs, team).catch(() => undefined);
}
