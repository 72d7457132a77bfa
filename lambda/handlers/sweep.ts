/**
 * The self-healing sweep (SPEC §9.1): run by an EventBridge schedule every minute in AWS, and by
 * the local stack's timer. It looks at the users the sweep index says are due and repairs what a
 * lost message or a crash left (lambda/services/sweep-service.ts).
 */
import type { Context } from 'aws-lambda';
import { flushObservability, logger } from '../adapters/observability';
import { sweepRuntime } from '../adapters/runtime/sweep';
import type { SweepReport } from '../services/sweep-service';

/** What the schedule sends (an EventBridge Scheduled Event); only its `time` is read. */
export interface SweepEvent {
  /** The scheduled instant (ISO 8601). */
  readonly time?: string;
}

export async function handler(event: SweepEvent | undefined, context?: Context): Promise<SweepReport> {
  const rt = sweepRuntime();
  logger.addContext(context ?? ({} as Context));
  try {
    // The instant the run was scheduled for (EventBridge's `time`; the local stack's timer sends
    // its own clock's): every decision of the run is made at that one instant.
    const scheduled = event?.time ? Date.parse(event.time) : Number.NaN;
    const nowMs = Number.isFinite(scheduled) ? scheduled : rt.now();
    const report = await rt.sweep.run(nowMs);
    logger.info('sweep done', { ...report });
    return report;
  } finally {
    flushObservability();
  }
}
