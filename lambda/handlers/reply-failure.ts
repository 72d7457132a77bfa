/**
 * The reply runner's on-failure destination: Lambda invokes it with the invocation record of a
 * reply job it gave up on (too old to start, or every attempt failed). Validate the record, end
 * the request it carries.
 *
 * The record, as Lambda documents it
 * (https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-retain-records.html):
 * `{ version, timestamp, requestContext: { requestId, functionArn, condition,
 * approximateInvokeCount }, requestPayload, responseContext?, responsePayload? }` — the
 * `requestPayload` is the ReplyJob the Message function or the processor sent.
 */
import type { Context } from 'aws-lambda';
import * as z from 'zod';
import { flushObservability, logger } from '../adapters/observability';
import { replyFailureRuntime } from '../adapters/runtime/reply-failure';
import { parseReplyJob } from '../core/reply-job';
import type { ReplyFailureOutcome } from '../services/reply-failure';

const invocationRecord = z.object({
  requestContext: z.object({
    condition: z.string().min(1),
    approximateInvokeCount: z.number().int().min(0).optional(),
  }),
  requestPayload: z.unknown(),
});

export async function handler(event: unknown, context?: Context): Promise<ReplyFailureOutcome | 'refused'> {
  const rt = replyFailureRuntime();
  logger.addContext(context ?? ({} as Context));
  try {
    const record = invocationRecord.safeParse(event);
    const job = record.success ? parseReplyJob(record.data.requestPayload) : undefined;
    if (!record.success || !job) {
      // Not retried: a record that is not a reply job's stays so. Logged at ERROR: an operator
      // should see that something else was routed here.
      logger.error('reply failure refused: not an invocation record of a reply job');
      return 'refused';
    }
    return await rt.failures.settleDropped({
      job,
      condition: record.data.requestContext.condition,
      invokeCount: record.data.requestContext.approximateInvokeCount,
    });
  } finally {
    flushObservability();
  }
}
