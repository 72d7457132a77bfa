import { describeError } from '../../core/errors';
import type { ReplyJob } from '../../core/reply-job';
import { ReplyInterruptedError } from '../errors';
import type { ReplyChannel } from '../reply-channel';
import { earlierTurns, keepTurn } from './conversation';
import { type Holder, isRetryable, modelOf, NOTHING, type ReplyRunnerDeps } from './deps';
import { fail } from './endings';
import { finish } from './settle';
import { StopWatch, whenAborted } from './stop-watch';
import { stoppedReply, streamReply } from './stream';

/** Runs the model (retrying what is worth it) and ends the request with its final message. */
export async function answer(
  deps: ReplyRunnerDeps,
  job: ReplyJob,
  holder: Holder,
  channel: ReplyChannel,
  timeLeftMs: () => number,
): Promise<void> {
  const deadline = new AbortController();
  const stopIn = Math.max(0, timeLeftMs() - deps.settings.stopBeforeTimeoutMs);
  if (stopIn === 0) {
    // Started too late (an asynchronous retry long after the admission): the slot is no longer
    // surely its own. Nothing runs, nothing is charged.
    await fail(deps, job, holder, channel, NOTHING, 'its lease lapsed before it started', timeLeftMs);
    return;
  }
  // The model is stopped here (not a sleep: the deadline of a model call that may hang).
  const timer = setTimeout(() => deadline.abort(new Error('stopped before its time ran out')), stopIn);
  timer.unref?.();
  // The user's stop (`cancel` while it streams): a request admitted failed open has no reservation
  // a cancel could find, so nothing to look for.
  const stop = job.failedOpen ? undefined : new StopWatch(deps, job).start();
  try {
    await runModel(deps, job, holder, channel, timeLeftMs, deadline.signal, stop);
  } finally {
    clearTimeout(timer);
    stop?.end();
  }
}

/**
 * The model's attempts: a fault worth retrying (throttling, a timeout) that produced nothing is
 * tried again after a backoff; any other ends the request charged what was produced.
 */
async function runModel(
  deps: ReplyRunnerDeps,
  job: ReplyJob,
  holder: Holder,
  channel: ReplyChannel,
  timeLeftMs: () => number,
  deadline: AbortSignal,
  stop: StopWatch | undefined,
): Promise<void> {
  const { settings, sleep } = deps;
  const signal = stop ? AbortSignal.any([deadline, stop.signal]) : deadline;
  const stopped = () => stop?.requested === true;
  const turns = await earlierTurns(deps, job);
  for (let attempt = 1; ; attempt++) {
    if (stopped()) {
      // Stopped in a retry's backoff: the model produced nothing, so nothing is charged.
      const reply = stoppedReply(job.requestId, '', job.reservation, deps.now(), served(job));
      await finish(deps, job, holder, reply.usage, reply.complete, channel, timeLeftMs);
      return;
    }
    try {
      const reply = await streamReply({
        requestId: job.requestId,
        prompt: job.prompt,
        turns,
        reservation: job.reservation,
        model: modelOf(deps, job),
        served: served(job),
        channel,
        now: deps.now,
        signal,
        stopped,
      });
      await keepTurn(deps, job, reply.text);
      await finish(deps, job, holder, reply.usage, reply.complete, channel, timeLeftMs);
      return;
    } catch (err) {
      if (!(err instanceof ReplyInterruptedError)) throw err;
      const worthRetrying =
        isRetryable(err.cause) && !err.produced && !signal.aborted && attempt <= settings.modelRetries;
      deps.log.warn('model fault', {
        requestId: job.requestId,
        attempt,
        retrying: worthRetrying,
        error: describeError(err.cause),
      });
      if (!worthRetrying) {
        await fail(deps, job, holder, channel, err.usage, describeError(err.cause), timeLeftMs);
        return;
      }
      const backoff = sleep(settings.modelRetryBaseMs * 2 ** (attempt - 1));
      await (stop ? Promise.race([backoff, whenAborted(stop.signal)]) : backoff);
    }
  }
}

function served(job: ReplyJob): { readonly model?: string; readonly fallbackFrom?: string } {
  return { model: job.model, fallbackFrom: job.fallbackFrom };
}
