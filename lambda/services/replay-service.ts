import type { LimiterView } from '../core/limiter/snapshot';
import type { TokenReservation } from '../core/limiter/types';
import { isExpired, parseQueueMessageBody, type WaitingRequest } from '../core/queue/request';
import { describe } from './chat-service';
import type {
  ConnectionDirectory,
  ConnectionSender,
  LimiterPort,
  LogPort,
  MetricsPort,
  ModelPort,
  OutgoingMessage,
  ReplyStorePort,
  RequestQueuePort,
} from './ports';
import { notifyPositions } from './queue-notices';
import { ReplyChannel } from './reply-channel';
import { ReplyInterruptedError, type ReplyUsage, streamReply } from './run-reply';

export interface ReplaySettings {
  /** How long one attempt holds the user's active request; a redelivery inside it waits. @default 110_000 */
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
  readonly store: ReplyStorePort;
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

/** Store writes that finish a reply ride out a blip this many times, a second apart. */
const SETTLE_ATTEMPTS = 5;

/**
 * Replays queued requests (the Processor function). An SQS message is a wake-up for its user's
 * message group; FIFO hands out one message of a group at a time, so one delivery at a time
 * serves a user's queue. A delivery serves, in this order:
 * 1. the user's active request, if a crashed attempt left one whose lease lapsed (taken over with
 *    the reservation already made, so nothing is charged twice);
 * 2. else the head of the user's waiting list — whichever request the message was sent for — so
 *    requests run in the order of the list, which is the order their positions were told in.
 *
 * The head is admitted by the same atomic limiter write as a direct message, in `replay` mode: it
 * leaves the list and becomes the active request in that write, so of two deliveries only one can
 * start it. The reply's settle removes it (the commit). Exactly once, because both steps are
 * single conditional writes on the user's item (docs/queue.md).
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
    return this.serveUser(body.userId, record, remainingTimeMs);
  }

  private async serveUser(
    userId: string,
    record: QueueRecord,
    remainingTimeMs: () => number,
  ): Promise<ReplayResult> {
    const { limiter, now, settings } = this.deps;
    // The first look is a read: this instance's belief may be old. After that, what the last write
    // or read of this loop returned is the item (a stale belief only fails a condition, then reads).
    for (let fresh = true; ; fresh = false) {
      const nowMs = now();
      const view = await limiter.view(userId, undefined, nowMs, { fresh });
      const { snap } = view;
      if (snap.active) {
        const { active } = snap;
        if (active.leaseUntilEpochMs > nowMs) return this.defer(record, active.leaseUntilEpochMs - nowMs);
        const request = snap.queued[active.requestId];
        const reservation = this.reservationOf(userId, view, active.requestId);
        if (!request || !reservation) {
          this.deps.log.error('active request without its data or reservation', {
            requestId: active.requestId,
          });
          return 'done';
        }
        const taken = await limiter.takeOver(userId, active, nowMs + settings.leaseMs);
        if (!taken.ok) continue;
        this.deps.log.warn('taking over an interrupted request', {
          requestId: active.requestId,
          attempts: active.attempts + 1,
        });
        if (active.attempts + 1 > settings.maxAttempts) {
          return this.failForGood(userId, request, reservation, undefined, 'too many interrupted attempts');
        }
        return this.attempt(record, userId, request, reservation, active.attempts + 1);
      }
      const head = snap.waiting[0];
      // Nothing waiting: a wake-up left over by a cancelled request.
      if (head === undefined) return 'done';
      const request = snap.queued[head];
      if (!request || isExpired(request, nowMs)) {
        await this.expire(userId, head, request);
        continue; // the same wake-up serves the next head
      }
      const decision = await limiter.decide(
        {
          userId,
          requestId: head,
          claimTier: request.claimTier,
          estimatedInputTokens: request.estimatedInputTokens,
          maxTokens: request.maxTokens,
          queue: { mode: 'replay', leaseUntilEpochMs: nowMs + settings.leaseMs },
        },
        nowMs,
      );
      if (decision.allowed) return this.begin(record, userId, request, decision.reservation);
      // The list moved under us (cancelled, another delivery): look again.
      if (decision.limit === 'queue') continue;
      const delayMs = decision.retryAfterMs;
      const untilExpiry = request.expiresAtEpochMs - nowMs;
      if (delayMs >= untilExpiry) return this.defer(record, untilExpiry);
      if (delayMs > settings.maxInProcessWaitMs || delayMs + 5000 > remainingTimeMs()) {
        return this.defer(record, delayMs);
      }
      // The wait is short: sleep to the exact millisecond instead of SQS's whole seconds.
      await this.deps.sleep(delayMs);
    }
  }

  private async begin(
    record: QueueRecord,
    userId: string,
    request: WaitingRequest,
    reservation: TokenReservation,
  ): Promise<ReplayResult> {
    const { limiter, now } = this.deps;
    const nowMs = now();
    await this.channel(userId, request.connectionId).deliver({
      type: 'queue_processing_started',
      timestamp: nowMs,
      requestId: request.requestId,
      message: 'Your queued request is being processed.',
    });
    this.deps.metrics.count('RequestsProcessed');
    this.deps.metrics.milliseconds('QueueWaitTime', nowMs - request.enqueuedAtEpochMs);
    // Everyone behind moved up one place: tell them, from the item the admission just wrote.
    await notifyPositions(
      this.deps,
      userId,
      await limiter.view(userId, request.claimTier, nowMs, { fresh: false }),
    );
    return this.attempt(record, userId, request, reservation, 1);
  }

  private async attempt(
    record: QueueRecord,
    userId: string,
    request: WaitingRequest,
    reservation: TokenReservation,
    attempts: number,
  ): Promise<ReplayResult> {
    const { now } = this.deps;
    const channel = this.channel(userId, request.connectionId);
    try {
      const reply = await streamReply({
        requestId: request.requestId,
        prompt: request.message,
        reservation,
        model: this.deps.model,
        channel,
        now,
      });
      // The commit: settles the tokens and ends the request, in one write. Then the reply goes
      // out (a crash between the two loses only the final frame; every chunk was delivered).
      await this.commit(reservation, reply.usage);
      this.deps.metrics.count('TokensConsumed', reply.usage.totalTokens);
      await channel.deliverFinal(request.requestId, reply.complete);
      return 'done';
    } catch (err) {
      if (!(err instanceof ReplyInterruptedError)) throw err;
      this.deps.log.error('model failed during replay', {
        requestId: request.requestId,
        error: describe(err.cause),
      });
      if (isRetryable(err.cause) && !err.produced && attempts < this.deps.settings.maxAttempts) {
        return this.releaseAndDefer(record, userId, request.requestId, attempts);
      }
      return this.failForGood(userId, request, reservation, err.usage, describe(err.cause));
    }
  }

  /** Lets the next delivery take over at once (lease set to now), after a backoff. */
  private async releaseAndDefer(
    record: QueueRecord,
    userId: string,
    requestId: string,
    attempts: number,
  ): Promise<ReplayResult> {
    const view = await this.deps.limiter.view(userId, undefined, this.deps.now(), { fresh: false });
    const active = view.snap.active;
    if (active?.requestId === requestId) {
      await this.deps.limiter.takeOver(userId, active, this.deps.now()).catch(() => undefined);
    }
    return this.defer(record, 1000 * 2 ** attempts);
  }

  private async commit(
    reservation: TokenReservation,
    usage: Pick<ReplyUsage, 'inputTokens' | 'outputTokens'>,
  ) {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.deps.limiter.reconcile(reservation, usage, this.deps.now(), { endsActive: true });
        return;
      } catch (err) {
        if (attempt >= SETTLE_ATTEMPTS) throw err;
        await this.deps.sleep(1000);
      }
    }
  }

  private async failForGood(
    userId: string,
    request: WaitingRequest,
    reservation: TokenReservation,
    usage: ReplyUsage | undefined,
    reason: string,
  ): Promise<ReplayResult> {
    const { queue, now } = this.deps;
    // Charged what the model produced, if anything; the request ends either way.
    await this.commit(reservation, usage ?? { inputTokens: 0, outputTokens: 0 });
    const body = JSON.stringify({ v: 1, userId, requestId: request.requestId });
    await queue.moveToDeadLetterQueue(body, userId, `failed-${request.requestId}`, reason);
    this.deps.metrics.count('RequestsFailed');
    await this.channel(userId, request.connectionId).deliverFinal(request.requestId, {
      type: 'request_failed',
      timestamp: now(),
      requestId: request.requestId,
      code: 'INTERNAL_ERROR',
      message: usage?.totalTokens
        ? `The request could not be completed; ${usage.totalTokens} tokens the model produced were charged.`
        : 'The request could not be processed; nothing was charged for it.',
    });
    return 'done';
  }

  /** A head that waited past its deadline (or lost its data) leaves the list; the user is told. */
  private async expire(
    userId: string,
    requestId: string,
    request: WaitingRequest | undefined,
  ): Promise<void> {
    const { limiter, now } = this.deps;
    const { removed } = await limiter.removeWaiting(userId, requestId);
    if (!removed || !request) return;
    const message: OutgoingMessage = { type: 'request_expired', timestamp: now(), requestId };
    await this.channel(userId, request.connectionId).deliverFinal(requestId, message);
    await notifyPositions(this.deps, userId, await limiter.view(userId, undefined, now(), { fresh: false }));
  }

  private reservationOf(userId: string, view: LimiterView, requestId: string): TokenReservation | undefined {
    const pending = view.snap.reservations[requestId];
    if (!pending) return undefined;
    return {
      userId,
      requestId,
      dayNumber: pending.d,
      inputTokens: pending.i,
      outputAllowance: pending.o,
      reservedTokens: pending.i + pending.o,
      tokenEpoch: pending.e ?? 0,
    };
  }

  private async defer(record: QueueRecord, delayMs: number): Promise<ReplayResult> {
    await this.deps.queue.defer(record.receiptHandle, Math.max(0, delayMs));
    return 'retry';
  }

  private channel(userId: string, connectionId: string): ReplyChannel {
    const { sender, directory, store, now, log } = this.deps;
    return new ReplyChannel(userId, connectionId, {
      sender,
      directory,
      store,
      now,
      onSendFailure: (error) => log.warn('posting to a connection failed', { error: describe(error) }),
    });
  }
}

function isRetryable(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as Partial<RetryableError>).retryable === true;
}
