import { estimatedWaitSeconds } from '../core/queue/eta';
import type { Identity } from './chat-service';
import type { ConnectionDirectory, ConnectionSender, LimiterPort, RequestStorePort } from './ports';
import { ReplyChannel } from './reply-channel';

/**
 * Tells each of the user's waiting requests its new place after the queue moved: position (1 =
 * next), the queue's total and the wait derived from the limiter's state. The waiting list comes
 * from the limiter item and the total from its counter: no scan of the queue.
 */
export async function notifyPositions(
  deps: {
    readonly limiter: Pick<LimiterPort, 'status'>;
    readonly store: RequestStorePort;
    readonly sender: ConnectionSender;
    readonly directory: ConnectionDirectory;
    readonly now: () => number;
  },
  identity: Identity,
  waiting: readonly string[],
  /** Only the requests from this place on moved. @default 0 */
  fromIndex = 0,
): Promise<void> {
  if (waiting.length <= fromIndex) return;
  const nowMs = deps.now();
  const [status, totalInQueue] = await Promise.all([
    deps.limiter.status(identity.userId, identity.tier, nowMs),
    deps.store.total(),
  ]);
  // Positions from the list as it is now, not as the caller last saw it: notices of concurrent
  // changes then never tell a place that was already stale when it was computed.
  const anchor = waiting[fromIndex];
  const from =
    anchor !== undefined && status.queued.includes(anchor) ? status.queued.indexOf(anchor) : fromIndex;
  await Promise.all(
    status.queued.map(async (requestId, index) => {
      if (index < from) return;
      const record = await deps.store.get(identity.userId, requestId);
      if (record?.status !== 'queued') return;
      const channel = new ReplyChannel(identity.userId, record.connectionId, deps);
      await channel.deliver({
        type: 'queue_position',
        timestamp: deps.now(),
        requestId,
        position: index + 1,
        totalInQueue: Math.max(totalInQueue, status.queued.length),
        estimatedWaitTime: estimatedWaitSeconds(index + 1, status.limits, status.policy, nowMs),
      });
    }),
  );
}
