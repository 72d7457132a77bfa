import type { TokenReservation } from '../core/limiter/types';
import { isExpired, parseQueueMessageBody, type QueuedRequest } from '../core/queue/request';
import { describe } from './chat-service';
import type {
  ConnectionDirectory,
  ConnectionSender,
  LimiterPort,
  LogPort,
  MetricsPort,
  ModelPort,
  OutgoingMessage,
  RequestQueuePort,
  RequestStorePort,
} from './ports';
import { notifyPositions } from './queue-notices';
import { ReplyChannel } from './reply-channel';
import { refundUnused, type StreamedReply, settleUsage, streamReply } from './run-reply';

export interface ReplaySettings {
  /** How long one attempt holds a request; a redelivery inside it waits. @default 110_000 */
  readonly leaseMs: number;
  /** Attempts (crashes or model failures) before a request fails for good. @default 3 */
  readonly maxAttempts: number;
  /** Waits up to this long in-process for the limiter instead of hiding the message. @default 10_000 */
  readonly maxInProcessWaitMs: number;
}

export const DEFAULT_REPLAY_SETTINGS: ReplaySettings = Object.freeze({
  leaseMs: 110_000,
  maxAttempts: 3,
  maxInProcessWaitMs: 10_000,
});

export interface ReplayDeps {
  readonly limiter: LimiterPort;
  readonly store: RequestStorePort;
  readonly queue: RequestQueuePort;
  readonly sender: ConnectionSender;
  readonly directory: ConnectionDirectory;
  readonly model: ModelPort;
  readonly metrics: MetricsPort;
  readonly log: LogPort;
  readonly settings: ReplaySettings;
  readonly now: () => number;
  readonly sleep: (ms: number) => Promise<void>;
}

/** One SQS record, as the processor sees it. */
export interface QueueRecord {
  readonly messageId: string;
  readonly receiptHandle: string;
  readonly body: string;
  readonly groupId: string;
  readonly deduplicationId: string;
}

/** `done`: delete the message. `retry`: keep it (its visibility was set for the next try). */
export type ReplayResult = 'done' | 'retry';

/** Thrown by a model for errors worth another attempt (throttling, timeouts). */
export interface RetryableError {
  readonly retryable: true;
}

/**
 * Replays queued requests (the Processor function). Each SQS delivery of a request goes through
 * the same atomic limiter decision as a direct message, in `replay` mode, which admits the request
 * and removes it from the user's waiting list in one write. Exactly once:
 * - the record leaves `queued` by one conditional write, so of two deliveries only one starts it;
 * - a delivery that finds it `processing` with a live lease waits; with a lapsed lease (a crashed
 *   attempt) it takes over with the reservation already made, so nothing is charged twice;
 * - `done`, `cancelled`, `expired` and `failed` records are acknowledged and nothing else happens.
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
    const request = await this.deps.store.get(body.userId, body.requestId);
    if (!request) {
      this.deps.log.warn('queue message without a request record', { requestId: body.requestId });
      return 'done';
    }
    switch (request.status) {
      case 'queued':
        return this.startQueued(record, request, remainingTimeMs);
      case 'processing':
        return this.resumeProcessing(record, request);
      case 'done':
        // A crash after recording the reply: send it if it was not sent (never run the model again).
        return this.finish(request);
      default:
        return 'done';
    }
  }

  private async startQueued(
    record: QueueRecord,
    request: QueuedRequest,
    remainingTimeMs: () => number,
  ): Promise<ReplayResult> {
    const { limiter, store, now } = this.deps;
    for (;;) {
      const nowMs = now();
      if (isExpired(request, nowMs)) return this.expire(request);
      const decision = await limiter.decide(
        {
          userId: request.userId,
          requestId: request.requestId,
          claimTier: request.claimTier,
          estimatedInputTokens: request.estimatedInputTokens,
          maxTokens: request.maxTokens,
          queue: { mode: 'replay' },
        },
        nowMs,
      );
      if (decision.allowed) {
        if (decision.failedOpen) this.deps.metrics.count('LimiterFailOpen');
        await store.addToTotal(-1);
        return this.begin(record, request, decision.reservation, decision.waiting);
      }
      if (decision.limit === 'queue') {
        // Not in the waiting list: cancelled or purged a moment ago (the record will say so).
        const fresh = await store.get(request.userId, request.requestId);
        if (fresh?.status !== 'queued') return 'done';
        return this.defer(record, 1000);
      }
      const delayMs = decision.limit === 'unavailable' ? 1000 : decision.retryAfterMs;
      const untilExpiry = request.expiresAtEpochMs - nowMs;
      if (delayMs >= untilExpiry) return this.defer(record, untilExpiry);
      if (delayMs > this.deps.settings.maxInProcessWaitMs || delayMs + 5000 > remainingTimeMs()) {
        return this.defer(record, delayMs);
      }
      // The wait is short: sleep to the exact millisecond instead of SQS's whole seconds.
      await this.deps.sleep(delayMs);
    }
  }

  private async begin(
    record: QueueRecord,
    request: QueuedRequest,
    reservation: TokenReservation,
    waiting: readonly string[],
  ): Promise<ReplayResult> {
    const { store, now, settings } = this.deps;
    const nowMs = now();
    const started = await store.transition(
      request.userId,
      request.requestId,
      ['queued'],
      'processing',
      nowMs,
      {
        reservation,
        leaseUntilEpochMs: nowMs + settings.leaseMs,
        startedAtEpochMs: nowMs,
        incrementAttempts: true,
      },
    );
    if (!started.ok) {
      // Cancelled between the decision and now: give the tokens back.
      await refundUnused(this.deps.limiter, reservation, nowMs);
      return 'done';
    }
    const identity = { userId: request.userId, tier: request.claimTier };
    const channel = this.channel(request);
    await channel.deliver({
      type: 'queue_processing_started',
      timestamp: now(),
      requestId: request.requestId,
      message: 'Your queued request is being processed.',
    });
    this.deps.metrics.count('RequestsProcessed');
    this.deps.metrics.milliseconds('QueueWaitTime', nowMs - request.enqueuedAtEpochMs);
    await notifyPositions(this.deps, identity, waiting);
    return this.attempt(record, started.record, channel);
  }

  private async resumeProcessing(record: QueueRecord, request: QueuedRequest): Promise<ReplayResult> {
    const { store, now, settings } = this.deps;
    const nowMs = now();
    if ((request.leaseUntilEpochMs ?? 0) > nowMs)
      return this.defer(record, request.leaseUntilEpochMs! - nowMs);
    const taken = await store.transition(
      request.userId,
      request.requestId,
      ['processing'],
      'processing',
      nowMs,
      {
        leaseFreeAtEpochMs: nowMs,
        leaseUntilEpochMs: nowMs + settings.leaseMs,
        incrementAttempts: true,
      },
    );
    if (!taken.ok) return taken.record?.status === 'processing' ? this.defer(record, 1000) : 'done';
    this.deps.log.warn('taking over an interrupted request', {
      requestId: request.requestId,
      attempts: taken.record.attempts,
    });
    if (taken.record.attempts > settings.maxAttempts) {
      return this.failForGood(record, taken.record, 'too many interrupted attempts');
    }
    return this.attempt(record, taken.record, this.channel(taken.record));
  }

  private async attempt(
    record: QueueRecord,
    request: QueuedRequest,
    channel: ReplyChannel,
  ): Promise<ReplayResult> {
    const { store, now } = this.deps;
    const reservation = request.reservation;
    if (!reservation) return this.failForGood(record, request, 'processing without a reservation');
    let reply: StreamedReply;
    try {
      reply = await streamReply({
        requestId: request.requestId,
        prompt: request.message,
        reservation,
        model: this.deps.model,
        channel,
        now,
      });
    } catch (err) {
      this.deps.log.error('model failed during replay', {
        requestId: request.requestId,
        error: describe(err),
      });
      if (isRetryable(err) && request.attempts < this.deps.settings.maxAttempts) {
        // Release the lease so the next delivery may take over at once.
        await store.transition(request.userId, request.requestId, ['processing'], 'processing', now(), {
          leaseUntilEpochMs: now(),
        });
        return this.defer(record, 1000 * 2 ** request.attempts);
      }
      return this.failForGood(record, request, describe(err));
    }
    // Record the reply together with the end of processing, then deliver it: from here on a
    // crash makes the next delivery re-send the recorded reply instead of running the model again.
    // Ride out a short store outage here: the reply exists and should not be produced twice.
    const done = await withRetries(
      () =>
        store.transition(request.userId, request.requestId, ['processing'], 'done', now(), {
          reply: reply.complete,
          usage: { inputTokens: reply.usage.inputTokens, outputTokens: reply.usage.outputTokens },
        }),
      this.deps.sleep,
    );
    if (!done.ok) return 'done';
    return this.finish(done.record, channel);
  }

  /** Delivers a recorded reply (or keeps it for `resume`), then settles its tokens. */
  private async finish(request: QueuedRequest, channel = this.channel(request)): Promise<ReplayResult> {
    const { store, now } = this.deps;
    if (request.reply && !request.delivered) {
      await channel.deliverFinal(request.requestId, request.reply as OutgoingMessage);
      await store.transition(request.userId, request.requestId, ['done'], 'done', now(), { delivered: true });
    }
    if (request.reservation && request.usage) {
      await settleUsage(this.deps.limiter, this.deps.log, request.reservation, request.usage, now());
      this.deps.metrics.count('TokensConsumed', request.usage.inputTokens + request.usage.outputTokens);
    }
    return 'done';
  }

  private async failForGood(
    record: QueueRecord,
    request: QueuedRequest,
    reason: string,
  ): Promise<ReplayResult> {
    const { store, queue, now } = this.deps;
    const failed = await store.transition(
      request.userId,
      request.requestId,
      ['queued', 'processing'],
      'failed',
      now(),
    );
    if (!failed.ok) return 'done';
    if (request.reservation) await refundUnused(this.deps.limiter, request.reservation, now());
    await queue.moveToDeadLetterQueue(record.body, record.groupId, record.deduplicationId, reason);
    this.deps.metrics.count('RequestsFailed');
    await this.channel(request).deliverFinal(request.requestId, {
      type: 'request_failed',
      timestamp: now(),
      requestId: request.requestId,
      code: 'INTERNAL_ERROR',
      message: 'The request could not be processed; nothing was charged for it.',
    });
    return 'done';
  }

  private async expire(request: QueuedRequest): Promise<ReplayResult> {
    const { store, limiter, now } = this.deps;
    const expired = await store.transition(request.userId, request.requestId, ['queued'], 'expired', now());
    if (!expired.ok) return 'done';
    const { removed, queued } = await limiter.removeQueued(request.userId, request.requestId);
    if (removed) await store.addToTotal(-1);
    await this.channel(request).deliverFinal(request.requestId, {
      type: 'request_expired',
      timestamp: now(),
      requestId: request.requestId,
    });
    await notifyPositions(this.deps, { userId: request.userId, tier: request.claimTier }, queued);
    return 'done';
  }

  private async defer(record: QueueRecord, delayMs: number): Promise<ReplayResult> {
    await this.deps.queue.defer(record.receiptHandle, Math.max(0, delayMs));
    return 'retry';
  }

  private channel(request: QueuedRequest): ReplyChannel {
    const { sender, directory, store, now } = this.deps;
    return new ReplyChannel(request.userId, request.connectionId, { sender, directory, store, now });
  }
}

/** Retries a store write a few times, a second apart (a blip must not cost a whole lease). */
async function withRetries<T>(
  write: () => Promise<T>,
  sleep: (ms: number) => Promise<void>,
  attempts = 5,
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await write();
    } catch (err) {
      if (attempt >= attempts) throw err;
      await sleep(1000);
    }
  }
}

function isRetryable(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as Partial<RetryableError>).retryable === true;
}
