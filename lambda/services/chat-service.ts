import { randomUUID } from 'node:crypto';
import { describeError } from '../core/errors';
import type { Identity } from '../core/identity';
import { isLimitName, limitKind } from '../core/limiter/kinds';
import type { AllowedDecision, DeniedDecision } from '../core/limiter/types';
import {
  chunk,
  fitMessage,
  limitWarning,
  messageAccepted,
  requestCancelled,
  requestQueued,
  splitChunkText,
} from '../core/protocol';
import { estimatedWaitSeconds } from '../core/queue/eta';
import { queueDeadlineEpochMs, type WaitingRequest, wakeUpCause } from '../core/queue/request';
import { estimateTokens } from '../core/tokens';
import {
  type ConnectionDirectory,
  type ConnectionSender,
  type EnqueueOutcome,
  type LimiterPort,
  type LogPort,
  type MetricsPort,
  OutcomeUnknownError,
  type OutgoingMessage,
  type ReplyHandoffPort,
  type ReplyStorePort,
  type RequestQueuePort,
  type SettleOutcome,
} from './ports';
import { ReplyChannel } from './reply-channel';
import { reportShadow } from './shared/admission-report';
import { notifyPositions } from './shared/queue-notices';
import { releaseWakeUps } from './shared/wake-ups';

export type { Identity } from '../core/identity';
/** Re-exported for the tests that import it from here; it lives in core. */
export { statusMessage } from '../core/status-message';

import { statusMessage } from '../core/status-message';

export interface ChatServiceDeps {
  readonly limiter: LimiterPort;
  readonly store: ReplyStorePort;
  readonly queue: RequestQueuePort;
  readonly sender: ConnectionSender;
  readonly directory: ConnectionDirectory;
  readonly handoff: ReplyHandoffPort;
  readonly metrics: MetricsPort;
  readonly log: LogPort;
  readonly settings: {
    readonly maxQueuedPerUser: number;
    readonly maxQueueWaitSeconds: number;
    /** The configured model's maximum output per reply: caps every allowance. */
    readonly modelMaxOutputTokens?: number;
  };
  readonly now: () => number;
}

export interface SendMessageInput {
  readonly message: string;
  readonly requestId?: string;
  readonly conversationId?: string;
  readonly maxTokens?: number;
  readonly model?: string;
}

/** A refusal, mapped to a protocol `error` by the handler. */
export interface Refusal {
  readonly kind: 'refused';
  readonly code: 'RATE_LIMIT_EXCEEDED' | 'QUEUE_FULL' | 'INVALID_REQUEST' | 'NOT_FOUND' | 'INTERNAL_ERROR';
  readonly message: string;
  readonly requestId?: string;
  readonly details?: Record<string, unknown>;
}

export type SendOutcome =
  /** Admitted and handed to the reply runner, which streams the reply. */
  | { readonly kind: 'handed-off'; readonly requestId: string }
  | { readonly kind: 'queued'; readonly requestId: string; readonly position: number }
  | Refusal;

/**
 * The chat flows of the Message function: admit-and-stream, queue, cancel, status and resume.
 * Flow messages (accepted, chunks, complete, queued, cancelled) are sent from here; refusals are
 * returned as values for the handler to turn into protocol errors.
 */
export class ChatService {
  constructor(private readonly deps: ChatServiceDeps) {}

  async sendMessage(identity: Identity, connectionId: string, input: SendMessageInput): Promise<SendOutcome> {
    const { limiter, settings, now } = this.deps;
    const requestId = input.requestId ?? randomUUID();
    const estimatedInputTokens = estimateTokens(input.message);
    const nowMs = now();
    const waiting: WaitingRequest = {
      requestId,
      connectionId,
      message: input.message,
      conversationId: input.conversationId,
      maxTokens: input.maxTokens,
      model: input.model,
      claimTier: identity.tier,
      estimatedInputTokens,
      enqueuedAtEpochMs: nowMs,
      expiresAtEpochMs: queueDeadlineEpochMs(nowMs, settings.maxQueueWaitSeconds),
    };
    // One step in the user's lane: the decision and, if it refuses, the place in the queue. The
    // position is fixed by that one write, before anything goes to SQS.
    let decided: Awaited<ReturnType<LimiterPort['decideOrQueue']>>;
    try {
      decided = await limiter.decideOrQueue(
        {
          userId: identity.userId,
          requestId,
          claimTier: identity.tier,
          estimatedInputTokens,
          maxTokens: input.maxTokens,
          model: input.model,
          modelMaxOutputTokens: settings.modelMaxOutputTokens,
          queue: { mode: 'direct' },
        },
        nowMs,
        (denied) =>
          this.mayWait(denied, nowMs)
            ? { request: waiting, maxQueued: settings.maxQueuedPerUser }
            : undefined,
      );
    } catch (err) {
      // Its write may have been counted: never "nothing was counted" (RATE_LIMIT_EXCEEDED), and
      // never a bare error the client cannot tie to its frame. `status` tells what the item holds.
      if (!(err instanceof OutcomeUnknownError)) throw err;
      this.deps.log.warn('the limiter could not tell whether a decision landed', {
        requestId,
        error: describeError(err),
      });
      return refused(
        'INTERNAL_ERROR',
        'The outcome of this request is unknown: it may have been counted. Check status before resending.',
        requestId,
        { retryAfter: 1, outcomeUnknown: true },
      );
    }
    const { decision, slot } = decided;
    if (decision.allowed) return this.answer(identity, connectionId, requestId, input, decision);
    if (decision.limit === 'model') {
      return refused(
        'INVALID_REQUEST',
        input.model === undefined
          ? 'No model is available for your tier.'
          : `Model "${input.model}" is not available for your tier.`,
        requestId,
        { field: 'model' },
      );
    }
    return this.queueOrRefuse(identity, connectionId, requestId, decision, slot, nowMs);
  }

  /**
   * May a refused request wait in the queue? Not when queueing is off, the queue is full (as the
   * decision saw it, after this frame arrived: no write needed to say so), or the wait would be
   * longer than `MAX_QUEUE_WAIT`; never a duplicate or a refusal of an unavailable store; and not
   * when the user's item is busy (the queue lives in that same item: the write would fail too).
   */
  private mayWait(decision: DeniedDecision, nowMs: number): boolean {
    const { settings } = this.deps;
    if (['duplicate', 'unavailable', 'busy', 'model'].includes(decision.limit)) return false;
    if (settings.maxQueuedPerUser === 0 || decision.queued >= settings.maxQueuedPerUser) return false;
    return waitSeconds(decision, decision.queued + 1, nowMs) <= settings.maxQueueWaitSeconds;
  }

  /**
   * An admitted request: told `message_accepted`, then handed to the reply runner. The route
   * function never waits for the model (API Gateway gives a route 29 s at most).
   */
  private async answer(
    identity: Identity,
    connectionId: string,
    requestId: string,
    input: SendMessageInput,
    decision: AllowedDecision,
  ): Promise<SendOutcome> {
    const { metrics, now } = this.deps;
    if (decision.failedOpen) metrics.count('LimiterFailOpen');
    if (decision.globalCostPercent !== undefined)
      metrics.count('GlobalCostPercent', decision.globalCostPercent);
    reportShadow(this.deps, identity.userId, requestId, decision);
    const channel = this.channel(identity.userId, connectionId);
    await channel.deliver(messageAccepted(requestId, now()));
    for (const warning of decision.warnings ?? []) await channel.deliver(limitWarning(warning, now()));
    try {
      await this.deps.handoff.handOff({
        v: 1,
        userId: identity.userId,
        claimTier: identity.tier,
        requestId,
        connectionId,
        prompt: input.message,
        reservation: decision.reservation,
        model: decision.model,
        fallbackFrom: decision.fallbackFrom,
        source: 'direct',
        inFlightUntilEpochMs: decision.inFlightUntilEpochMs,
        failedOpen: decision.failedOpen || undefined,
      });
      return { kind: 'handed-off', requestId };
    } catch (err) {
      return this.handOffFailed(requestId, decision, err);
    }
  }

  /**
   * The Invoke failed. A definite failure (Lambda answered with an error: throttled
   * `TooManyRequestsException`, a refused payload, a missing function) started no runner. An
   * ambiguous one (a timeout, a connection reset: the event may have been queued, and the SDK may
   * even have sent it twice) may have started one that is running now. Either way the refund is
   * conditioned on no runner having claimed the request (issue 20, finding 15): the refund and the
   * runner's claim are each one conditional write on the reservation marker, so whichever lands
   * first wins — a refund first means any runner that starts later claims nothing and does
   * nothing (the client is told nothing was charged, truly); a claim first means the refund
   * changes nothing and the runner answers. A refund that cannot be written (the store is out
   * too) leaves the reservation to a runner's claim, or to its lease and the sweep.
   */
  private async handOffFailed(
    requestId: string,
    decision: AllowedDecision,
    err: unknown,
  ): Promise<SendOutcome> {
    const { log, metrics, limiter, now } = this.deps;
    log.error('reply hand-off failed', { requestId, error: describeError(err) });
    if (decision.failedOpen) {
      metrics.count('RequestsFailed');
      return refused('INTERNAL_ERROR', 'The reply could not be started; nothing was charged.', requestId, {
        retryAfter: 1,
      });
    }
    let outcome: SettleOutcome;
    try {
      outcome = await limiter.reconcile(decision.reservation, { inputTokens: 0, outputTokens: 0 }, now(), {
        holder: { unclaimed: true },
      });
    } catch (refundErr) {
      log.error('could not refund a failed hand-off; its lease and the sweep end it', {
        requestId,
        error: describeError(refundErr),
      });
      return { kind: 'handed-off', requestId };
    }
    if (!outcome.applied) {
      // A runner claimed it (the Invoke did go through): it answers, and settles.
      log.warn('the hand-off failed but a runner holds the request', { requestId });
      return { kind: 'handed-off', requestId };
    }
    await releaseWakeUps(this.deps, outcome, requestId);
    metrics.count('RequestsFailed');
    return refused('INTERNAL_ERROR', 'The reply could not be started; nothing was charged.', requestId, {
      retryAfter: 1,
    });
  }

  private async queueOrRefuse(
    identity: Identity,
    connectionId: string,
    requestId: string,
    decision: DeniedDecision,
    slot: EnqueueOutcome | undefined,
    nowMs: number,
  ): Promise<SendOutcome> {
    const { limiter, queue, settings, metrics, now } = this.deps;
    if (decision.limit === 'duplicate' || slot?.kind === 'duplicate') {
      return refused(
        'INVALID_REQUEST',
        'A request with this requestId is still in flight or waiting.',
        requestId,
      );
    }
    if (decision.limit === 'unavailable') {
      return refused('INTERNAL_ERROR', 'The limiter is unavailable; try again shortly.', requestId, {
        retryAfter: Math.ceil(decision.retryAfterMs / 1000),
      });
    }
    // Each limit kind names the metric its refusals count in.
    if (isLimitName(decision.limit)) metrics.count(limitKind(decision.limit).metric);
    if (decision.limit.startsWith('global.')) metrics.count('GlobalLimitExceeded');

    const overLimit = (retryAfterMs = decision.retryAfterMs) =>
      refused(
        'RATE_LIMIT_EXCEEDED',
        decision.limit === 'busy'
          ? 'Too many requests at once; try again shortly.'
          : `Limit ${decision.limit} reached.`,
        requestId,
        {
          limit: decision.limit,
          retryAfter: Math.max(1, Math.ceil(retryAfterMs / 1000)),
          resetAt: decision.resetAtEpochMs,
        },
      );
    if (!slot) {
      if (settings.maxQueuedPerUser > 0 && decision.queued >= settings.maxQueuedPerUser) {
        return queueFull(requestId, decision.queued, settings);
      }
      return overLimit();
    }
    if (slot.kind === 'full') return queueFull(requestId, slot.queued, settings);
    // The user's item stayed busy: nothing was written for this request.
    if (slot.kind === 'busy') return overLimit(1000);

    try {
      // The user's queue needs one wake-up, not one per request: the processor serves the head
      // with whatever wake-up it holds and keeps it until the list is empty. So only the request
      // that starts the list sends one (linearized on the item: an append after the processor saw
      // the list empty is at position 1).
      // The wake-up's deduplication id includes the enqueue instant: a request id reused after its
      // request ended is a new wake-up (issue 20, finding 1).
      const cause = wakeUpCause.enqueue(slot.snap.queued[requestId]?.enqueuedAtEpochMs ?? nowMs);
      if (slot.position === 1) await queue.send({ v: 1, userId: identity.userId, requestId, cause });
    } catch (err) {
      // Without its wake-up the request must not stay in the list: take it out again.
      this.deps.log.error('enqueue failed', { requestId, error: describeError(err) });
      const undone = await limiter.removeWaiting(identity.userId, requestId).catch((removeErr) => {
        // Left in the list without a wake-up: the sweep sends one (its enqueue put the user in
        // the sweep index), so it is served or expires — never lost.
        this.deps.log.error('could not take a request back out of the queue', {
          requestId,
          error: describeError(removeErr),
        });
        return undefined;
      });
      if (undone?.removed) {
        await this.wakeNewHead(identity.userId, undone.snap.waiting[0]);
        return refused('INTERNAL_ERROR', 'The queue is unavailable; the request was not queued.', requestId, {
          retryAfter: 1,
        });
      }
    }
    metrics.count('RequestsQueued');
    const totalInQueue = await queue.depth().catch(() => slot.snap.waiting.length);
    const place = {
      requestId,
      position: slot.position,
      totalInQueue: Math.max(totalInQueue, slot.snap.waiting.length),
      estimatedWaitTime: waitSeconds(decision, slot.position, nowMs),
      // The enqueue write's own version of the list: a queue_position computed from a later write
      // (the processor admitted the head meanwhile) may reach the client first, and wins.
      queueVersion: slot.snap.queueVersion ?? 0,
    };
    await this.channel(identity.userId, connectionId).deliver(
      requestQueued(place, queuedReason(decision), now()),
    );
    return { kind: 'queued', requestId, position: slot.position };
  }

  /**
   * A request queued behind this one while its wake-up failed did not send one (it was not first):
   * now it is the head of a list nobody wakes, so it gets a wake-up of its own (issue 20,
   * finding 3). If that send fails too, the sweep sends one within two minutes.
   */
  private async wakeNewHead(userId: string, head: string | undefined): Promise<void> {
    if (head === undefined) return;
    try {
      await this.deps.queue.send({ v: 1, userId, requestId: head, cause: wakeUpCause.head(this.deps.now()) });
    } catch (err) {
      this.deps.log.error('could not wake the queue after a failed enqueue; the sweep will', {
        requestId: head,
        error: describeError(err),
      });
    }
  }

  /** Cancels one of the user's queued requests; someone else's request id is simply not found. */
  async cancel(
    identity: Identity,
    connectionId: string,
    requestId: string,
  ): Promise<Refusal | { kind: 'cancelled' }> {
    const { limiter, now } = this.deps;
    const before = await limiter.view(identity.userId, identity.tier, now());
    const request = before.snap.queued[requestId];
    const index = before.snap.waiting.indexOf(requestId);
    if (!request || index < 0) return refused('NOT_FOUND', 'No queued request with this id.', requestId);
    // The processor may admit it a moment before: then it is no longer waiting, and not cancelled.
    const { removed } = await limiter.removeWaiting(identity.userId, requestId);
    if (!removed) return refused('NOT_FOUND', 'No queued request with this id.', requestId);
    const message = requestCancelled(requestId, now());
    await this.channel(identity.userId, connectionId).deliver(message);
    if (request.connectionId !== connectionId) {
      await this.channel(identity.userId, request.connectionId).deliver(message);
    }
    const after = await limiter.view(identity.userId, identity.tier, now(), { fresh: false });
    await notifyPositions(this.deps, identity.userId, after, index);
    return { kind: 'cancelled' };
  }

  /** The user's limits, usage and queue (`status`), consuming nothing. */
  async status(identity: Identity): Promise<OutgoingMessage> {
    const nowMs = this.deps.now();
    return statusMessage(await this.deps.limiter.status(identity.userId, identity.tier, nowMs), nowMs);
  }

  /** Re-delivers finished replies kept while the user had no connection (`resume`). */
  async resume(identity: Identity, connectionId: string): Promise<number> {
    const { store, sender, now } = this.deps;
    let delivered = 0;
    replies: for (const reply of await store.listReplies(identity.userId, now())) {
      for (const message of resumeMessages(reply.message, now())) {
        if ((await sender.send(connectionId, message)) === 'gone') break replies;
      }
      await store.deleteReply(identity.userId, reply.requestId);
      delivered++;
    }
    return delivered;
  }

  private channel(userId: string, connectionId: string): ReplyChannel {
    return new ReplyChannel(userId, connectionId, this.deps);
  }
}

/**
 * What `resume` sends for a kept reply: the reply itself, or, when its text would not fit one
 * message, the text as `chunk`s first and then the `message_complete` without it.
 */
function resumeMessages(message: OutgoingMessage, nowMs: number): OutgoingMessage[] {
  if (message.type !== 'message_complete' || typeof message.text !== 'string') return [message];
  if (!('textOmitted' in fitMessage(message))) return [message];
  const chunks = splitChunkText(message.text).map((piece, index) =>
    chunk(message.requestId, index, piece, nowMs),
  );
  return [...chunks, message];
}

/**
 * Seconds until the request at `position` of the user's queue is admitted, from the limiter's
 * state; never less than the refusal's own `retryAfter`, which is exact for the head.
 */
function waitSeconds(decision: DeniedDecision, position: number, nowMs: number): number {
  return Math.max(
    estimatedWaitSeconds(position, decision.limits, decision.policy, nowMs),
    Math.ceil(decision.retryAfterMs / 1000),
  );
}

function queueFull(
  requestId: string,
  queued: number,
  settings: { readonly maxQueuedPerUser: number },
): Refusal {
  return refused('QUEUE_FULL', `You already have ${queued} requests waiting.`, requestId, {
    queued,
    maxQueued: settings.maxQueuedPerUser,
  });
}

function queuedReason(decision: DeniedDecision): string {
  if (decision.limit === 'queue') return 'Queued behind your earlier requests.';
  if (decision.limit === 'busy') return 'Queued: too many of your requests arrived at once.';
  return `Limit ${decision.limit} reached; your request is queued and will run automatically.`;
}

function refused(
  code: Refusal['code'],
  message: string,
  requestId?: string,
  details?: Record<string, unknown>,
): Refusal {
  return { kind: 'refused', code, message, requestId, details };
}
