import { describeError } from '../../core/errors';
import type { TokenUsage } from '../../core/limiter/decision';
import type { ReplyUsage } from '../../core/protocol';
import type { ReplyJob } from '../../core/reply-job';
import { type LimitsAfter, withLimits } from '../../core/status-message';
import { ReplyNotSettledError } from '../errors';
import type { OutgoingMessage } from '../ports';
import type { ReplyChannel } from '../reply-channel';
import { releaseWakeUps } from '../shared/wake-ups';
import { backoffMs, type Holder, type ReplyRunnerDeps } from './deps';

/**
 * Settles (the commit of a queued request), then sends the final message: exactly one final
 * message per request, and only once it is charged. A settle that cannot land in time keeps the
 * message and the usage for the attempt that settles it, and fails this invocation.
 */
export async function finish(
  deps: ReplyRunnerDeps,
  job: ReplyJob,
  holder: Holder,
  usage: ReplyUsage,
  message: OutgoingMessage,
  channel: ReplyChannel,
  timeLeftMs: () => number,
): Promise<boolean> {
  const settled = await settle(deps, job, holder, usage, timeLeftMs);
  if (settled === 'not-holder') {
    deps.log.warn('another attempt holds this request now; this one ends without a word', {
      requestId: job.requestId,
    });
    return false;
  }
  if (settled instanceof Error) {
    if (!holder || !('claim' in holder)) throw settled;
    await deps.store.keepProduced(
      job.userId,
      job.requestId,
      { claim: holder.claim, usage, message },
      deps.now(),
    );
    throw new ReplyNotSettledError(job.requestId, { cause: settled });
  }
  // One line per settled request, no contents: what `npm run admin -- export-traffic` reads back
  // (joined by requestId with the message handler's `sendMessage` line, which says when it came).
  deps.log.info('request settled', {
    userId: job.userId,
    requestId: job.requestId,
    tier: job.claimTier ?? 'free',
    model: job.model,
    source: job.source,
    inputTokens: usage.inputTokens,
    outputTokens: usage.outputTokens,
  });
  if (message.type === 'message_complete') {
    deps.metrics.count('TokensConsumed', usage.totalTokens);
    if (usage.costUsd) deps.metrics.count('CostUsd', usage.costUsd);
    if (job.source === 'direct') deps.metrics.count('RequestsProcessed');
  }
  // The limits this settle left, from its own write (SPEC §9.3): no call of its own.
  const final =
    message.type === 'message_complete' && settled.limitsAfter
      ? withLimits(message, settled.limitsAfter)
      : message;
  await channel.deliverFinal(job.requestId, final);
  return true;
}

/** Settled: with the limits the settle's write left, when the store said (not when failed open). */
export interface Settled {
  readonly limitsAfter?: LimitsAfter;
}

/**
 * Charged what was produced; for a queued request the same write ends it. Conditioned on this
 * runner's claim. Retried with backoff while the store is out, as long as time is left to keep
 * the reply if it never lands; the fault is returned then.
 */
export async function settle(
  deps: ReplyRunnerDeps,
  job: ReplyJob,
  holder: Holder,
  usage: TokenUsage,
  timeLeftMs: () => number,
): Promise<Settled | 'not-holder' | Error> {
  if (job.failedOpen) return {}; // admitted while the store was down: nothing was reserved
  const { settings, log, sleep } = deps;
  for (let attempt = 1; ; attempt++) {
    try {
      const outcome = await deps.limiter.reconcile(job.reservation, usage, deps.now(), {
        endsActive: job.source === 'queue',
        holder,
      });
      if (outcome.notHolder) return 'not-holder';
      // Settled, but the global shard did not answer: the request is not over while it holds its
      // share there. The next reconcile says the same outcome and gives the share back; when time
      // runs out first, the share's lease ends it.
      const pauseMs = backoffMs(deps, attempt);
      if (outcome.globalUnreleased && timeLeftMs() - pauseMs >= settings.keepMarginMs) {
        log.warn('settled, but the global share is still held; retrying its release', {
          requestId: job.requestId,
          attempt,
        });
        await sleep(pauseMs);
        continue;
      }
      // This reply freed a slot a queue was parked on (the user's, or the next in line's for
      // global capacity): wake it now.
      await releaseWakeUps(deps, outcome, job.requestId);
      return { limitsAfter: outcome.limitsAfter };
    } catch (err) {
      const pauseMs = backoffMs(deps, attempt);
      const cause = err instanceof Error ? err : new Error(String(err));
      if (timeLeftMs() - pauseMs < settings.keepMarginMs) {
        log.error('settle failed until the time ran out; the reply is kept for the next attempt', {
          requestId: job.requestId,
          attempt,
          error: describeError(err),
        });
        return cause;
      }
      log.warn('settle failed; retrying', { requestId: job.requestId, attempt, error: describeError(err) });
      await sleep(pauseMs);
    }
  }
}
