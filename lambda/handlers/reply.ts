/**
 * The reply runner (invoked asynchronously by the Message function and the Processor): streams
 * one admitted request's reply, settles it and releases what it holds. Validate the job, run it.
 */
import type { Context } from 'aws-lambda';
import { flushObservability, logger } from '../adapters/observability';
import { replyRuntime } from '../adapters/runtime/reply';
import { parseReplyJob } from '../core/reply-job';

export async function handler(event: unknown, context?: Context): Promise<void> {
  const rt = replyRuntime();
  logger.addContext(context ?? ({} as Context));
  try {
    const job = parseReplyJob(event);
    if (!job) {
      // Not retried: a malformed job stays malformed.
      logger.error('reply job refused: not a reply job');
      return;
    }
    const remainingTimeMs = () => context?.getRemainingTimeInMillis?.() ?? 900_000;
    await rt.runner.run(job, remainingTimeMs);
  } finally {
    flushObservability();
  }
}
