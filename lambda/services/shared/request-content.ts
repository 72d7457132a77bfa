import { describeError } from '../../core/errors';
import type { QueuedRequest } from '../../core/queue/request';
import type { LogPort, RequestContentPort } from '../ports';

/**
 * Deletes the content of a request that left the line unanswered (cancel, purge, expiry, an
 * enqueue undone). Best effort: its TTL ends it anyway, so a failure is only logged.
 */
export async function dropContent(
  deps: { readonly store: RequestContentPort; readonly log: LogPort },
  userId: string,
  request: QueuedRequest | undefined,
): Promise<void> {
  if (!request) return;
  try {
    await deps.store.deleteContent(userId, request);
  } catch (err) {
    deps.log.warn('could not delete a request content; its TTL ends it', {
      requestId: request.requestId,
      error: describeError(err),
    });
  }
}
