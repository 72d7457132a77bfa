import type { GlobalLimit } from '../core/limiter/global';
import type { LimiterView } from '../core/limiter/snapshot';
import type { DeniedDecision, LimitWarning, TokenReservation } from '../core/limiter/types';
import { limitWarning, queueProcessingStarted, requestExpired, requestFailed } from '../core/protocol';
import {
  isExpired,
  parseQueueMessageBody,
  type QueueMessageBody,
  type WaitingRequest,
  wakeUpCause,
} from '../core/queue/request';
import { FUNCTIONS, QUEUES } from '../core/resources';
import { describe, reportShadow } from './chat-service';
import type {
  ConnectionDirectory,
  ConnectionSender,
  LimiterPort,
  LogPort,
  MetricsPort,
  ReplyHandoffPort,
  ReplyStorePort,
  RequestQueuePort,
} from './ports';
import { notifyPositions } from './queue-notices';
import { ReplyChannel } from './reply-channel';
import { releaseWakeUps } from './run-reply';

export interface ReplaySettings {
  /**
   * How long one attempt holds the user's active request: the reply runner's Timeout and a margin.
   * A redelivery inside it waits; after it (the runner died) the next delivery takes over.
   */
  readonly leaseMs: number;
  /** Attempts (crashes or model failures) before a request fails for good. @default 3 */
  readonly maxAttempts: number;
  /** Waits up to this long in-process for the limiter instead of hiding the message. @default 10_000 */
  readonly maxInProcessWaitMs: number;
  /** The configured model's maximum output per reply: caps every allowance. @default none */
  readonly modelMaxOutputTokens?: number;
  /**
   * A wake-up received this many times is replaced by a fresh one before it serves again, so no
   * backlog, however long, spends the queue's `maxReceiveCount` and lands in the DLQ with the
   * user's list orphaned (issue 20, finding 2). Well below `maxReceiveCount`: a replacement whose
   * send fails is tried again on each later receive. @default maxReceiveCount / 5 (100)
   */
  readonly refreshAfterReceives?: number;
}

/** A wake-up is replaced after this many receives (ReplaySettings.refreshAfterReceives). */
const REFRESH_AFTER_RECEIVES = Math.floor(QUEUES.requests.maxReceiveCount / 5);

/** While waiting for global capacity that may free any moment, the wake-up looks again this often. */
const GLOBAL_RECHECK_MS = 5000;

export const DEFAULT_REPLAY_SETTINGS: ReplaySettings = Object.freeze({
  leaseMs: (FUNCTIONS.reply.timeoutSeconds + 60) * 1000,
  maxAttempts: 3,
  maxInProcessWaitMs: 10_000,
  refreshAfterReceives: REFRESH_AFTER_RECEIVES,
});

export interface ReplayDeps {
  readonly limiter: LimiterPort;
  readonly store: ReplyStorePort;
  readonly queue: RequestQueuePort;
  readonly sender: ConnectionSender;
  readonly directory: ConnectionDirectory;
  readonly handoff: ReplyHandoffPort;
  readonly metrics: MetricsPort;
  readonly log: LogPort;
  readonly settings: ReplaySettings;
  readonly now: () => number;
  readonly sleep: (ms: number) => Promise<void>;
}

/** The model that answers an admitted request, and the one it replaced if a fallback does. */
interface Served {
  readonly model?: string;
  readonly fallbackFrom?: string;
}

/** One SQS record, as the processor sees it. */
export interface QueueRecord {
  readonly messageId: string;
  readonly receiptHandle: string;
  readonly body: string;
  readonly groupId: string;
  readonly deduplicationId: string;
  /** SQS's `ApproximateReceiveCount` of this delivery (1 for the first). @default 1 */
  readonly receiveCount?: number;
}

/** `done`: delete the message. `retry`: keep it (its visibility was set for the next try). */
export type ReplayResult = 'done' | 'retry';

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
 * start it. It is then handed to the reply runner, and the wake-up is held in flight (which keeps
 * the user's FIFO group closed) until the runner's settle ends the request and releases it.
 * Exactly once, because both steps are single conditional writes on the user's item
 * (docs/queue.md).
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
    const refreshAfter = this.deps.settings.refreshAfterReceives ?? REFRESH_AFTER_RECEIVES;
    if ((record.receiveCount ?? 1) >= refreshAfter) {
      if (await this.refresh(body, record)) return 'done';
    }
    return this.serveUser(body.userId, record, remainingTimeMs);
  }

  /**
   * Replaces a wake-up that has been received many times by a fresh one (a new deduplication id,
   * so SQS does not drop it), and lets the old one be deleted. It does so first thing, before this
   * delivery's receipt handle is handed anywhere (parked in the item, the global line, or the
   * reply runner): a handle stored earlier belongs to an earlier receive of the old message, and
   * all its holder would do with it is make that message visible — a release that now fails
   * (logged) and is not needed, as the fresh message is visible once this one is deleted (it sits
   * behind it in the user's FIFO group). If the delete is lost, the group holds two wake-ups: harmless, as the processor
   * serves the list, not the message (docs/queue.md, "Wake-ups").
   */
  private async refresh(body: QueueMessageBody, record: QueueRecord): Promise<boolean> {
    try {
      // Named after the message it replaces: if this delivery comes back (its delete lost), a
      // second replacement within SQS's 5-minute window is dropped as a duplicate of the first.
      await this.deps.queue.send({
        v: 1,
        userId: body.userId,
        requestId: body.requestId,
        cause: wakeUpCause.refresh(record.messageId),
      });
    } catch (err) {
      this.deps.log.warn('could not replace a worn wake-up; it serves on and tries again next time', {
        messageId: record.messageId,
        receiveCount: record.receiveCount,
        error: describe(err),
      });
      return false;
    }
    this.deps.log.info('replaced a worn wake-up', {
      messageId: record.messageId,
      receiveCount: record.receiveCount,
    });
    return true;
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
        if (taken.full) {
          // Its slot lapsed and another request took it: wait for a slot like any other.
          if ((await this.parkOrDefer(record, userId, view)) === 'retry') return 'retry';
          continue;
        }
        if (!taken.ok) continue;
        this.deps.log.warn('taking over an interrupted request', {
          requestId: active.requestId,
          attempts: active.attempts + 1,
        });
        if (active.attempts + 1 > settings.maxAttempts) {
          return this.failForGood(userId, request, reservation, 'too many interrupted attempts');
        }
        return this.handOff(
          record,
          userId,
          request,
          reservation,
          { untilEpochMs: nowMs + settings.leaseMs, attempts: active.attempts + 1 },
          { model: view.snap.reservations[active.requestId]?.model },
        );
      }
      const head = snap.waiting[0];
      // Nothing waiting: a wake-up left over by a cancelled request (out of any line it was in).
      if (head === undefined) {
        await limiter.leaveGlobalLine(userId).catch(() => undefined);
        return 'done';
      }
      const request = snap.queued[head];
      if (!request || isExpired(request, nowMs)) {
        await this.expire(userId, head, request, 'not started within MAX_QUEUE_WAIT');
        continue; // the same wake-up serves the next head
      }
      const decision = await limiter.decide(
        {
          userId,
          requestId: head,
          claimTier: request.claimTier,
          estimatedInputTokens: request.estimatedInputTokens,
          maxTokens: request.maxTokens,
          model: request.model,
          modelMaxOutputTokens: settings.modelMaxOutputTokens,
          queue: {
            mode: 'replay',
            leaseUntilEpochMs: nowMs + settings.leaseMs,
            enqueuedAtEpochMs: request.enqueuedAtEpochMs,
            deadlineEpochMs: request.expiresAtEpochMs,
          },
          // Not yet admissible by the item just seen: wait, rather than read it again to be sure.
          seenSinceMs: view.observedAtMs,
        },
        nowMs,
      );
      if (decision.allowed) {
        reportShadow(this.deps, userId, head, decision);
        if (decision.globalCostPercent !== undefined) {
          this.deps.metrics.count('GlobalCostPercent', decision.globalCostPercent);
        }
        return this.begin(
          record,
          userId,
          request,
          decision.reservation,
          nowMs + settings.leaseMs,
          { model: decision.model, fallbackFrom: decision.fallbackFrom },
          decision.warnings ?? [],
        );
      }
      // The list moved under us (cancelled, another delivery): look again.
      if (decision.limit === 'queue') continue;
      // A global limit binds (or someone goes first): wait in line for global capacity.
      if (decision.limit.startsWith('global.')) {
        return this.waitForGlobal(record, userId, request, decision, nowMs);
      }
      // Every in-flight slot is taken: wait for a reply to end, not for a timer.
      if (decision.limit === 'requestsInFlight') {
        const parked = await this.parkOrDefer(record, userId, view);
        if (parked === 'retry') return parked;
        continue;
      }
      const delayMs = decision.retryAfterMs;
      const untilExpiry = request.expiresAtEpochMs - nowMs;
      if (delayMs >= untilExpiry) {
        // It cannot run before its deadline (its tokens no longer fit the budget, say): waiting
        // would only hold everyone behind it until then. It expires now, and says why.
        await this.expire(userId, head, request, `${decision.limit} will not allow it before its deadline`);
        continue;
      }
      if (delayMs > settings.maxInProcessWaitMs || delayMs + 5000 > remainingTimeMs()) {
        return this.defer(record, delayMs);
      }
      // The wait is short: sleep to the exact millisecond instead of SQS's whole seconds.
      await this.deps.sleep(delayMs);
    }
  }

  /**
   * Holds the wake-up until the earliest in-flight lease lapses and parks it in the user's item:
   * the settle that frees a slot releases it at once. `look-again` when a reply ended since the
   * refusal was decided (the park's condition failed).
   */
  private async parkOrDefer(
    record: QueueRecord,
    userId: string,
    view: LimiterView,
  ): Promise<ReplayResult | 'look-again'> {
    const { limiter, now } = this.deps;
    const state = view.limits.find((l) => l.name === 'requestsInFlight');
    const untilLapse = Math.max(1000, (state?.resetAtEpochMs ?? now() + 1000) - now());
    // Hold first: a settle between the park and a later hold would be undone by the hold.
    await this.deps.queue.defer(record.receiptHandle, untilLapse);
    const { ok } = await limiter.park(userId, record.receiptHandle);
    return ok ? 'retry' : 'look-again';
  }

  /**
   * Held back by a global limit, or by someone before it in line: the user joins the line (with
   * its wake-up, so a settle that frees global capacity can wake the first in line at once) and
   * the wake-up is hidden until the limit's next window, or for a few seconds when capacity may
   * free any moment (in flight, or another's turn), whichever comes first.
   */
  private async waitForGlobal(
    record: QueueRecord,
    userId: string,
    request: WaitingRequest,
    decision: DeniedDecision,
    nowMs: number,
  ): Promise<ReplayResult> {
    const limit = decision.limit.slice('global.'.length) as GlobalLimit;
    this.deps.metrics.count('GlobalLimitExceeded');
    const untilExpiry = request.expiresAtEpochMs - nowMs;
    const delayMs = Math.min(
      untilExpiry,
      decision.retryAfterMs <= 1000 ? GLOBAL_RECHECK_MS : decision.retryAfterMs,
    );
    await this.deps.queue.defer(record.receiptHandle, delayMs);
    await this.deps.limiter.joinGlobalLine({
      userId,
      tier: decision.tier,
      enqueuedAtEpochMs: request.enqueuedAtEpochMs,
      deadlineEpochMs: request.expiresAtEpochMs,
      wakeUp: record.receiptHandle,
      seenAtEpochMs: nowMs,
      // Due again when its wake-up comes back: not stale before then (a window's start, say).
      wakeAtEpochMs: nowMs + delayMs,
      limit,
    });
    return 'retry';
  }

  private async begin(
    record: QueueRecord,
    userId: string,
    request: WaitingRequest,
    reservation: TokenReservation,
    leaseUntilEpochMs: number,
    served: Served,
    warnings: readonly LimitWarning[],
  ): Promise<ReplayResult> {
    const { limiter, now } = this.deps;
    const nowMs = now();
    const channel = this.channel(userId, request.connectionId);
    await channel.deliver(queueProcessingStarted(request.requestId, nowMs));
    for (const warning of warnings) await channel.deliver(limitWarning(warning, nowMs));
    this.deps.metrics.count('RequestsProcessed');
    this.deps.metrics.milliseconds('QueueWaitTime', nowMs - request.enqueuedAtEpochMs);
    // Everyone behind moved up one place: tell them, from the item the admission just wrote.
    await notifyPositions(
      this.deps,
      userId,
      await limiter.view(userId, request.claimTier, nowMs, { fresh: false }),
    );
    return this.handOff(
      record,
      userId,
      request,
      reservation,
      { untilEpochMs: leaseUntilEpochMs, attempts: 1 },
      served,
    );
  }

  /**
   * Hands the active request to the reply runner and holds this wake-up in flight for the lease:
   * FIFO hands out nothing more of the user's group meanwhile, and the runner releases it once the
   * request is settled. If the runner dies, the wake-up comes back after the lease and the next
   * delivery takes over.
   */
  private async handOff(
    record: QueueRecord,
    userId: string,
    request: WaitingRequest,
    reservation: TokenReservation,
    lease: { readonly untilEpochMs: number; readonly attempts: number },
    served: Served,
  ): Promise<ReplayResult> {
    const { limiter, now } = this.deps;
    // Hold first: a short reply may be settled, and its wake-up released, before the invocation
    // call even returns; a hold set after that would shut the user's queue for the whole lease.
    await this.deps.queue.defer(record.receiptHandle, lease.untilEpochMs - now());
    try {
      await this.deps.handoff.handOff({
        v: 1,
        userId,
        claimTier: request.claimTier,
        requestId: request.requestId,
        connectionId: request.connectionId,
        prompt: request.message,
        reservation,
        model: served.model,
        fallbackFrom: served.fallbackFrom,
        source: 'queue',
        lease,
        inFlightUntilEpochMs: lease.untilEpochMs,
        wakeUpReceiptHandle: record.receiptHandle,
      });
    } catch (err) {
      this.deps.log.error('reply hand-off failed; the next delivery takes over', {
        requestId: request.requestId,
        error: describe(err),
      });
      // End the lease now, so the next delivery takes over at once instead of after it.
      await limiter
        .takeOver(
          userId,
          { requestId: request.requestId, leaseUntilEpochMs: lease.untilEpochMs, attempts: lease.attempts },
          now(),
          { endsLease: true },
        )
        .catch(() => undefined);
      return this.defer(record, 2000);
    }
    return 'retry';
  }

  private async failForGood(
    userId: string,
    request: WaitingRequest,
    reservation: TokenReservation,
    reason: string,
  ): Promise<ReplayResult> {
    const { queue, limiter, now } = this.deps;
    // What the crashed attempts produced is unknown: nothing is charged, and the request ends.
    const outcome = await limiter.reconcile(reservation, { inputTokens: 0, outputTokens: 0 }, now(), {
      endsActive: true,
    });
    await releaseWakeUps(this.deps, outcome, request.requestId);
    const body = JSON.stringify({ v: 1, userId, requestId: request.requestId });
    await queue.moveToDeadLetterQueue(body, userId, `failed-${request.requestId}`, reason);
    this.deps.metrics.count('RequestsFailed');
    await this.channel(userId, request.connectionId).deliverFinal(
      request.requestId,
      requestFailed(
        request.requestId,
        'The request could not be processed; nothing was charged for it.',
        now(),
      ),
    );
    return 'done';
  }

  /** A head that waited past its deadline (or lost its data) leaves the list; the user is told. */
  private async expire(
    userId: string,
    requestId: string,
    request: WaitingRequest | undefined,
    reason: string,
  ): Promise<void> {
    const { limiter, now } = this.deps;
    const { removed } = await limiter.removeWaiting(userId, requestId);
    if (!removed || !request) return;
    await this.channel(userId, request.connectionId).deliverFinal(
      requestId,
      requestExpired(requestId, reason, now()),
    );
    await notifyPositions(this.deps, userId, await limiter.view(userId, undefined, now(), { fresh: false }));
  }

  private reservationOf(userId: string, view: LimiterView, requestId: string): TokenReservation | undefined {
    const pending = view.snap.reservations[requestId];
    if (!pending) return undefined;
    return {
      userId,
      requestId,
      dayNumber: pending.day,
      inputTokens: pending.inputTokens,
      outputAllowance: pending.outputAllowance,
      reservedTokens: pending.inputTokens + pending.outputAllowance,
      tokenEpoch: pending.tokenEpoch ?? 0,
      claimTier: view.snap.queued[requestId]?.claimTier,
    };
  }

  private async defer(record: QueueRecord, delayMs: number): Promise<ReplayResult> {
    await this.deps.queue.defer(record.receiptHandle, Math.max(0, delayMs));
    return 'retry';
  }

  private channel(userId: string, connectionId: string): ReplyChannel {
    return new ReplyChannel(userId, connectionId, this.deps);
  }
}
