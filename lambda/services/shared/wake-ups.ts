import { describeError } from '../../core/errors';
import { WakeUpNotHeldError } from '../errors';
import type { LogPort, RequestQueuePort, SettleOutcome } from '../ports';

type WakeDeps = { readonly queue: Pick<RequestQueuePort, 'defer'>; readonly log: LogPort };

/**
 * Makes a held or parked SQS wake-up visible now, so the processor serves the user's next queued
 * request at once. If that fails, it comes back by itself when its hold ends. Returns whether the
 * handle still held it (false: it is visible or received again already).
 */
export async function releaseWakeUp(
  deps: WakeDeps,
  receiptHandle: string,
  requestId: string,
): Promise<boolean> {
  try {
    await deps.queue.defer(receiptHandle, 0);
    return true;
  } catch (err) {
    deps.log.warn('could not release a wake-up; it returns when its hold ends', {
      requestId,
      error: describeError(err),
    });
    return !(err instanceof WakeUpNotHeldError);
  }
}

/**
 * The wake-ups a settle freed: the user's own parked one, and the first in line for global
 * capacity. That one is a hint taken from a view of the line up to a second old (GlobalLine): its
 * waiter's hold may have ended since, and it looks under a newer handle — awake already, so the
 * slot goes to the next in line instead (`globalWakeUpsAfter`). Expected in normal use, not a
 * fault: logged as info, never as a warning.
 */
export async function releaseWakeUps(
  deps: WakeDeps,
  outcome: SettleOutcome,
  requestId: string,
): Promise<void> {
  if (outcome.wakeUp) await releaseWakeUp(deps, outcome.wakeUp, requestId);
  for (const handle of outcome.globalWakeUp
    ? [outcome.globalWakeUp, ...(outcome.globalWakeUpsAfter ?? [])]
    : []) {
    try {
      await deps.queue.defer(handle, 0);
      return;
    } catch (err) {
      if (!(err instanceof WakeUpNotHeldError)) {
        deps.log.warn('could not wake the next in line for global capacity; it looks again by itself', {
          requestId,
          error: describeError(err),
        });
        return;
      }
      deps.log.info('the next in line for global capacity is awake already; waking the one after', {
        requestId,
      });
    }
  }
}
