import type { LimiterView } from '../../core/limiter/item/state';
import { queuePosition } from '../../core/protocol';
import { estimatedWaitSeconds } from '../../core/queue/eta';
import type { ConnectionDirectory, ConnectionSender, ReplyStorePort, RequestQueuePort } from '../ports';
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
  },
  userId: string,
  view: LimiterView,
  fromIndex = 0,
): Promise<void> {
  const { snap } = view;
  if (snap.waiting.length <= fromIndex) return;
  const nowMs = deps.now();
  const totalInQueue = await deps.queue.depth().catch(() => 0);
  await Promise.all(
    snap.waiting.slice(fromIndex).map(async (requestId, offset) => {
      const request = snap.queued[requestId];
      if (!request) return;
      const position = fromIndex + offset + 1;
      const place = {
        requestId,
        position,
        totalInQueue: Math.max(totalInQueue, snap.waiting.length),
        estimatedWaitTime: estimatedWaitSeconds(position, view.limits, view.policy, nowMs),
        queueVersion: snap.queueVersion ?? 0,
      };
      await new ReplyChannel(userId, request.connectionId, deps).deliver(queuePosition(place, deps.now()));
    }),
  );
}
