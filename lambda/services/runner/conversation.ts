import { type ConversationTurn, turnSortKey } from '../../core/conversation';
import { describeError } from '../../core/errors';
import type { ReplyJob } from '../../core/reply-job';
import type { ReplyRunnerDeps } from './deps';

/**
 * The earlier turns the request's admission counted, read back by their sort keys (one Query): the
 * model gets them before the prompt (SPEC §9.3). A read that fails runs the model on the prompt
 * alone, and the usage charged is what the model read.
 */
export async function earlierTurns(deps: ReplyRunnerDeps, job: ReplyJob): Promise<ConversationTurn[]> {
  const ref = job.conversation;
  if (!ref?.since || !ref.until || !deps.conversations) return [];
  try {
    const turns = await deps.conversations.port.turnsBetween(job.userId, ref.id, ref.since, ref.until);
    return turns.map(({ user, assistant }) => ({ user, assistant }));
  } catch (err) {
    deps.log.warn('could not read the conversation; the model gets the prompt alone', {
      requestId: job.requestId,
      error: describeError(err),
    });
    return [];
  }
}

/**
 * The request's own turn, once its reply ended (a stopped reply as produced): one PutItem keyed by
 * the request's decision time and id, so a retry of the same job writes the same item. Written
 * before the final message goes out, so the next message of the conversation finds it. A write
 * that fails loses this turn from the history, never the reply.
 */
export async function keepTurn(deps: ReplyRunnerDeps, job: ReplyJob, replyText: string): Promise<void> {
  const ref = job.conversation;
  if (!ref || !deps.conversations) return;
  const { port, ttlSeconds } = deps.conversations;
  try {
    await port.putTurn(
      job.userId,
      ref.id,
      turnSortKey(ref.atEpochMs, job.requestId),
      { user: job.prompt, assistant: replyText },
      Math.floor(deps.now() / 1000) + ttlSeconds,
    );
  } catch (err) {
    deps.log.error('could not keep a conversation turn', {
      requestId: job.requestId,
      error: describeError(err),
    });
  }
}
