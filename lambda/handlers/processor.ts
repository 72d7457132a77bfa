/**
 * The queue processor (SQS event source, FIFO, `reportBatchItemFailures`). Records of one user
 * (message group) are served in order, one after the other; different users run side by side. It
 * admits the head of a user's queue and hands it to the reply runner; it never runs a model.
 * After the first record of a group that must wait, the rest of that group wait with it, as
 * Lambda requires for FIFO partial batch responses.
 */
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { flushObservability, logger } from '../adapters/observability';
import { processorRuntime } from '../adapters/runtime/processor';
import type { QueueRecord } from '../services/replay-service';

/** After an unexpected fault (a store outage, say), a message comes back this much later. */
const FAULT_RETRY_MS = 2000;

export async function handler(event: SQSEvent, context?: Context): Promise<SQSBatchResponse> {
  const rt = processorRuntime();
  logger.addContext(context ?? ({} as Context));
  const remainingTimeMs = () => context?.getRemainingTimeInMillis?.() ?? 60_000;
  const failures: string[] = [];
  try {
    await Promise.all(
      [...groupRecords(event.Records).values()].map(async (records) => {
        for (let i = 0; i < records.length; i++) {
          const record = records[i]!;
          let result: 'done' | 'retry';
          try {
            result = await rt.replay.replay(toQueueRecord(record), remainingTimeMs);
          } catch (err) {
            logger.error('replay failed; the message will be retried', {
              messageId: record.messageId,
              error: err as Error,
            });
            // Try again in a few seconds rather than after the whole visibility timeout.
            await rt.queue.defer(record.receiptHandle, FAULT_RETRY_MS).catch(() => undefined);
            result = 'retry';
          }
          if (result === 'retry') {
            // Keep order: this record and every later one of the group go back together. This
            // one was hidden for as long as it must wait (or held while its reply runs); the later
            // ones are made visible again at once, or they would keep the group closed until their
            // own visibility timeout ran out. FIFO still hands out none of them before this one.
            for (const later of records.slice(i)) failures.push(later.messageId);
            await Promise.all(
              records
                .slice(i + 1)
                .map((later) => rt.queue.defer(later.receiptHandle, 0).catch(() => undefined)),
            );
            return;
          }
        }
      }),
    );
    return { batchItemFailures: failures.map((itemIdentifier) => ({ itemIdentifier })) };
  } finally {
    flushObservability();
  }
}

function groupRecords(records: readonly SQSRecord[]): Map<string, SQSRecord[]> {
  const groups = new Map<string, SQSRecord[]>();
  for (const record of records) {
    const group = record.attributes.MessageGroupId ?? record.messageId;
    groups.set(group, [...(groups.get(group) ?? []), record]);
  }
  return groups;
}

function toQueueRecord(record: SQSRecord): QueueRecord {
  return {
    messageId: record.messageId,
    receiptHandle: record.receiptHandle,
    body: record.body,
    groupId: record.attributes.MessageGroupId ?? 'unknown',
    deduplicationId: record.attributes.MessageDeduplicationId ?? record.messageId,
    receiveCount: Number(record.attributes.ApproximateReceiveCount) || 1,
  };
}
