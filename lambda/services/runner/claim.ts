import { describeError } from '../../core/errors';
import type { ReplyJob } from '../../core/reply-job';
import type { ClaimOutcome, ClaimTarget } from '../ports';
import type { ReplyChannel } from '../reply-channel';
import { backoffMs, type ReplyRunnerDeps } from './deps';
import { finishKept } from './endings';

/**
 * The claim, retried with backoff while the store is out and the model would still have time to
 * run; then the fault is thrown (nothing was streamed or claimed: Lambda's retry, its on-failure
 * destination or the lease ends the request).
 */
export async function claimAttempt(
  deps: ReplyRunnerDeps,
  job: ReplyJob,
  claim: string,
  timeLeftMs: () => number,
): Promise<ClaimOutcome> {
  const { settings } = deps;
  for (let attempt = 1; ; attempt++) {
    try {
      return await deps.limiter.claim(job.userId, job.requestId, claim, claimTarget(job));
    } catch (err) {
      const pauseMs = backoffMs(deps, attempt);
      if (timeLeftMs() - pauseMs < settings.stopBeforeTimeoutMs + settings.keepMarginMs) throw err;
      deps.log.warn('claim failed; retrying', {
        requestId: job.requestId,
        attempt,
        error: describeError(err),
      });
      await deps.sleep(pauseMs);
    }
  }
}

/**
 * Another runner holds this attempt's claim. A duplicate event while it runs: nothing to do. A
 * retry of an event whose runner kept its reply unsettled: settle it under that claim and send
 * it (of several such retries, one settle lands; only that one sends).
 */
export async function adopt(
  deps: ReplyRunnerDeps,
  job: ReplyJob,
  claim: string,
  channel: ReplyChannel,
  timeLeftMs: () => number,
): Promise<boolean> {
  const kept = await deps.store.producedReply(job.userId, job.requestId, deps.now());
  if (!kept || kept.claim !== claim) {
    deps.log.info('another runner holds this request (a duplicate event): nothing to do', {
      requestId: job.requestId,
    });
    return false;
  }
  return finishKept(deps, job, { claim }, kept, channel, timeLeftMs);
}

/** The attempt a job's runner claims: the active attempt of a queued request, or a direct admission. */
function claimTarget(job: ReplyJob): ClaimTarget {
  return job.source === 'queue' && job.lease
    ? { source: 'queue', attempts: job.lease.attempts, leaseUntilEpochMs: job.lease.untilEpochMs }
    : { source: 'direct', inFlightUntilEpochMs: job.inFlightUntilEpochMs };
}
