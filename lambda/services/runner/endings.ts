import { describeError } from '../../core/errors';
import { errorMessage, type ReplyUsage, requestFailed } from '../../core/protocol';
import type { ProducedReply, ReplyJob } from '../../core/reply-job';
import type { ReplyChannel } from '../reply-channel';
import type { Holder, ReplyRunnerDeps } from './deps';
import { finish } from './settle';

/**
 * Ends a request with the reply an earlier attempt produced and kept but could not settle:
 * settled to its usage and sent, then the kept copy dropped.
 */
export async function finishKept(
  deps: ReplyRunnerDeps,
  job: ReplyJob,
  holder: Holder,
  kept: ProducedReply,
  channel: ReplyChannel,
  timeLeftMs: () => number,
): Promise<boolean> {
  deps.log.warn('settling a reply an earlier attempt produced but could not settle', {
    requestId: job.requestId,
  });
  const done = await finish(deps, job, holder, kept.usage, kept.message, channel, timeLeftMs);
  // TTL ends it if this fails: a later attempt finds the request settled and ignores it.
  await deps.store.dropProduced(job.userId, job.requestId).catch(() => undefined);
  return done;
}

/**
 * Ends a request the model did not answer: charged what it produced, the user told (`request_failed`
 * for a queued request, an `error` for a direct one), a queued request moved to the DLQ.
 */
export async function fail(
  deps: ReplyRunnerDeps,
  job: ReplyJob,
  holder: Holder,
  channel: ReplyChannel,
  usage: ReplyUsage,
  reason: string,
  timeLeftMs: () => number,
): Promise<boolean> {
  const { now, metrics } = deps;
  const charged = usage.totalTokens
    ? `${usage.totalTokens} tokens the model produced were charged.`
    : 'nothing was charged.';
  const message =
    job.source === 'queue'
      ? requestFailed(job.requestId, `The request could not be completed; ${charged}`, now())
      : errorMessage(
          {
            code: 'INTERNAL_ERROR',
            requestId: job.requestId,
            message: `The model failed to answer; ${charged}`,
            details: { usage },
          },
          now(),
        );
  if (!(await finish(deps, job, holder, usage, message, channel, timeLeftMs))) return false;
  metrics.count('RequestsFailed');
  if (usage.totalTokens > 0) metrics.count('TokensConsumed', usage.totalTokens);
  if (job.source === 'queue') {
    const body = JSON.stringify({ v: 1, userId: job.userId, requestId: job.requestId });
    await deps.queue
      .moveToDeadLetterQueue(body, job.userId, `failed-${job.requestId}`, reason)
      .catch((err) =>
        deps.log.error('could not park a failed request in the DLQ', { error: describeError(err) }),
      );
  }
  return true;
}
