import { describeError } from '../../core/errors';
import type { LogPort, RequestQueuePort, SettleOutcome } from '../ports';

/**
 * Makes a held or parked SQS wake-up visible now, so the processor serves the user's next queued
 * request at once. If that fails, it comes back by itself when its hold ends.
 */
export async function releaseWakeUp(
  deps: { readonly queue: Pick<RequestQueuePort, 'defer'>; readonly log: LogPort },
  receiptHandle: string,
  requestId: string,
): Promise<void> {
  try {
    await deps.queue.defer(receiptHandle, 0);
  } catch (err) {
    deps.log.warn('could not release a wake-up; it returns when its hold ends', {
      requestId,
      error: describeError(err),
    });
  }
}

/** The wake-ups a settle freed: the user's own parked one, and the next in line for global capacity. */
export async function releaseWakeUps(
  deps: { readonly queue: Pick<RequestQueuePort, 'defer'>; readonly log: LogPort },
  outcome: SettleOutcome,
  requestId: string,
): Promise<void> {
  for (const handle of [outcome.wakeUp, outcome.globalWakeUp]) {
    if (handle) await releaseWakeUp(deps, handle, requestId);
  }
}
