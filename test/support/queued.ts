import { randomUUID } from 'node:crypto';
import type { WaitingRequest } from '../../lambda/core/queue/request';
import type { EnqueueOutcome, LimiterPort, RequestContentPort } from '../../lambda/services/ports';

/** A waiting request as a test writes it: its content key made up when not given. */
export type TestWaitingRequest = Omit<WaitingRequest, 'contentKey'> & {
  readonly userId: string;
  readonly contentKey?: string;
};

/**
 * Queues a request the way the Message function does (issue 22): its content in the Requests
 * table first, then its place in the user's limiter item.
 */
export async function enqueueWhole(
  limiter: Pick<LimiterPort, 'enqueue'>,
  store: RequestContentPort,
  request: TestWaitingRequest,
  maxQueued: number,
  nowMs: number,
): Promise<EnqueueOutcome> {
  const { message, conversationId, ...place } = request;
  const queued = { ...place, contentKey: request.contentKey ?? randomUUID().slice(0, 12) };
  await store.putContent(request.userId, queued, { message, conversationId });
  return limiter.enqueue(queued, maxQueued, nowMs);
}
