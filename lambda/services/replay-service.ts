import { describeError } from '../core/errors';
import { parseQueueMessageBody, type QueueMessageBody, wakeUpCause } from '../core/queue/request';
import { type QueueRecord, REFRESH_AFTER_RECEIVES, type ReplayDeps, type ReplayResult } from './replay/deps';
import { serveUser } from './replay/serve';

export {
  DEFAULT_REPLAY_SETTINGS,
  type QueueRecord,
  type ReplayDeps,
  type ReplayResult,
  type ReplaySettings,
} from './replay/deps';

/**
 * Replays queued requests (the Processor function). An SQS message is a wake-up for its user's
 * message group; FIFO hands out one message of a group at a time, so one delivery at a time
 * serves a user's queue. A delivery serves, in this order:
 * 1. the user's active request, if a crashed attempt left one whose lease lapsed (taken over with
 *    the reservation already made, so nothing is charged twice);
 * 2. else the head of the user's waiting list — whichever request the message was sent for — so
 *    requests run in the order of the list, which is the order their positions were told in.
 *
 * The head is admitted by the same atomic limiter write as a direct message, in `replay` mode: it
 * leaves the list and becomes the active request in that write, so of two deliveries only one can
 * start it. It is then handed to the reply runner, and the wake-up is held in flight (which keeps
 * the user's FIFO group closed) until the runner's settle ends the request and releases it.
 * Exactly once, because both steps are single conditional writes on the user's item
 * (docs/queue.md). The steps live in `replay/`: `serve.ts` (the active request, the head),
 * `wait.ts` (a slot, global capacity, time), `start.ts` (begin, hand off, fail, expire).
 */
export class ReplayService {
  constructor(private readonly deps: ReplayDeps) {}

  async replay(record: QueueRecord, remainingTimeMs: () => number): Promise<ReplayResult> {
    const body = parseQueueMessageBody(record.body);
    if (!body) {
      await this.deps.queue.moveToDeadLetterQueue(
        record.body,
        record.groupId,
        record.deduplicationId,
        'unreadable body',
      );
      this.deps.metrics.count('RequestsFailed');
      this.deps.log.error('unreadable queue message moved to the DLQ', { messageId: record.messageId });
      return 'done';
    }
    const refreshAfter = this.deps.settings.refreshAfterReceives ?? REFRESH_AFTER_RECEIVES;
    if ((record.receiveCount ?? 1) >= refreshAfter) {
      if (await this.refresh(body, record)) return 'done';
    }
    return serveUser(this.deps, body.userId, record, remainingTimeMs);
  }

  /**
   * Replaces a wake-up that has been received many times by a fresh one (a new deduplication id,
   * so SQS does not drop it), and lets the old one be deleted. It does so first thing, before this
   * delivery's receipt handle is handed anywhere (parked in the item, the global line, or the
   * reply runner): a handle stored earlier belongs to an earlier receive of the old message, and
   * all its holder would do with it is make that message visible — a release that now fails
   * (logged) and is not needed, as the fresh message is visible once this one is deleted (it sits
   * behind it in the user's FIFO group). If the delete is lost, the group holds two wake-ups: harmless, as the processor
   * serves the list, not the message (docs/queue.md, "Wake-ups").
   */
  private async refresh(body: QueueMessageBody, record: QueueRecord): Promise<boolean> {
    try {
      // Named after the message it replaces: if this delivery comes back (its delete lost), a
      // second replacement within SQS's 5-minute window is dropped as a duplicate of the first.
      await this.deps.queue.send({
        v: 1,
        userId: body.userId,
        requestId: body.requestId,
        cause: wakeUpCause.refresh(record.messageId),
      });
    } catch (err) {
      this.deps.log.warn('could not replace a worn wake-up; it serves on and tries again next time', {
        messageId: record.messageId,
        receiveCount: record.receiveCount,
        error: describeError(err),
      });
      return false;
    }
    this.deps.log.info('replaced a worn wake-up', {
      messageId: record.messageId,
      receiveCount: record.receiveCount,
    });
    return true;
  }
}
