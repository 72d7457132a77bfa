import { randomUUID } from 'node:crypto';
import type { DeniedDecision, Tier, UserStatus } from '../core/limiter/types';
import { estimatedWaitSeconds } from '../core/queue/eta';
import { queueDeadlineEpochMs } from '../core/queue/request';
import { estimateTokens } from '../core/tokens';
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

export interface Identity {
  readonly userId: string;
  readonly tier?: Tier;
}

export interface ChatServiceDeps {
  readonly limiter: LimiterPort;
  readonly store: RequestStorePort;
  readonly queue: RequestQueuePort;
  readonly sender: ConnectionSender;
  readonly directory: ConnectionDirectory;
  readonly model: ModelPort;
  readonly metrics: MetricsPort;
  readonly log: LogPort;
  readonly settings: { readonly maxQueuedPerUser: number; readonly maxQueueWaitSeconds: number };
  readonly now: () => number;
}

export interface SendMessageInput {
  readonly message: string;
  readonly requestId?: string;
  readonly conversationId?: string;
  readonly maxTokens?: number;
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
  | { readonly kind: 'completed'; readonly requestId: string }
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
    const { limiter, metrics, now } = this.deps;
    const requestId = input.requestId ?? randomUUID();
    const estimatedInputTokens = estimateTokens(input.message);
    const decision = await limiter.decide(
      {
        userId: identity.userId,
        requestId,
        claimTier: identity.tier,
        estimatedInputTokens,
        maxTokens: input.maxTokens,
        queue: { mode: 'direct' },
      },
      now(),
    );
    const channel = this.channel(identity.userId, connectionId);
    if (decision.allowed) {
      if (decision.failedOpen) metrics.count('LimiterFailOpen');
      await channel.deliver({ type: 'message_accepted', timestamp: now(), requestId });
      let reply: StreamedReply;
      try {
        reply = await streamReply({
          requestId,
          prompt: input.message,
          reservation: decision.reservation,
          model: this.deps.model,
          channel,
          now,
        });
      } catch (err) {
        this.deps.log.error('model failed', { requestId, error: describe(err) });
        metrics.count('RequestsFailed');
        if (!decision.failedOpen)
          await refundUnused(limiter, decision.reservation, now()).catch(() => undefined);
        return refused('INTERNAL_ERROR', 'The model failed to answer; nothing was charged.', requestId);
      }
      await channel.deliverFinal(requestId, reply.complete);
      metrics.count('RequestsProcessed');
      metrics.count('TokensConsumed', reply.usage.totalTokens);
      // A request admitted while the store was down reserved nothing, so there is nothing to settle.
      if (!decision.failedOpen)
        await settleUsage(limiter, this.deps.log, decision.reservation, reply.usage, now());
      return { kind: 'completed', requestId };
    }
    return this.queueOrRefuse(identity, connectionId, requestId, estimatedInputTokens, input, decision);
  }

  private async queueOrRefuse(
    identity: Identity,
    connectionId: string,
    requestId: string,
    estimatedInputTokens: number,
    input: SendMessageInput,
    decision: DeniedDecision,
  ): Promise<SendOutcome> {
    const { limiter, store, queue, settings, metrics, now } = this.deps;
    if (decision.limit === 'unavailable') {
      return refused('INTERNAL_ERROR', 'The limiter is unavailable; try again shortly.', requestId, {
        retryAfter: Math.ceil(decision.retryAfterMs / 1000),
      });
    }
    if (decision.limit === 'dailyTokens') metrics.count('TokenRateLimitExceeded');
    else if (decision.limit !== 'queue') metrics.count('MessageRateLimitExceeded');

    const overLimit = () =>
      refused('RATE_LIMIT_EXCEEDED', `Limit ${decision.limit} reached.`, requestId, {
        limit: decision.limit,
        retryAfter: Math.ceil(decision.retryAfterMs / 1000),
        resetAt: decision.resetAtEpochMs,
      });
    // MAX_QUEUED_PER_USER = 0 turns queueing off: an over-limit message is simply refused.
    if (settings.maxQueuedPerUser === 0) return overLimit();
    if (decision.queued >= settings.maxQueuedPerUser) {
      return refused('QUEUE_FULL', `You already have ${decision.queued} requests waiting.`, requestId, {
        queued: decision.queued,
        maxQueued: settings.maxQueuedPerUser,
      });
    }
    const nowMs = now();
    // The refusal's own retryAfter is exact for this request; requests ahead can only add to it.
    const waitFor = (position: number) =>
      Math.max(
        estimatedWaitSeconds(position, decision.limits, decision.policy, nowMs),
        Math.ceil(decision.retryAfterMs / 1000),
      );
    if (waitFor(decision.queued + 1) > settings.maxQueueWaitSeconds) return overLimit();

    const created = await store.create({
      userId: identity.userId,
      requestId,
      connectionId,
      message: input.message,
      conversationId: input.conversationId,
      maxTokens: input.maxTokens,
      claimTier: identity.tier,
      estimatedInputTokens,
      enqueuedAtEpochMs: nowMs,
      expiresAtEpochMs: queueDeadlineEpochMs(nowMs, settings.maxQueueWaitSeconds),
      status: 'queued',
      attempts: 0,
    });
    if (!created) return refused('INVALID_REQUEST', 'This requestId was already used.', requestId);

    // Send first: the SQS sequence number orders the user's waiting list, so positions are the
    // order the FIFO queue hands requests out, even when two sends of one user race.
    let sequenceNumber: string;
    try {
      sequenceNumber = await queue.send({ v: 1, userId: identity.userId, requestId });
    } catch (err) {
      // Nothing half-written: the record goes, nothing else was touched.
      this.deps.log.error('enqueue failed', { requestId, error: describe(err) });
      await store.delete(identity.userId, requestId);
      return refused('INTERNAL_ERROR', 'The queue is unavailable; the request was not queued.', requestId, {
        retryAfter: 1,
      });
    }
    const slot = await limiter.enqueue(identity.userId, requestId, sequenceNumber, settings.maxQueuedPerUser);
    if (!slot.accepted) {
      // The message already sent finds no record and is dropped by the processor.
      await store.delete(identity.userId, requestId);
      return refused('QUEUE_FULL', `You already have ${slot.queued} requests waiting.`, requestId, {
        queued: slot.queued,
        maxQueued: settings.maxQueuedPerUser,
      });
    }
    const totalInQueue = await store.addToTotal(1);
    metrics.count('RequestsQueued');
    await this.channel(identity.userId, connectionId).deliver({
      type: 'request_queued',
      timestamp: now(),
      requestId,
      message: queuedReason(decision),
      position: slot.position,
      totalInQueue,
      estimatedWaitTime: waitFor(slot.position),
    });
    // Landing ahead of a request that raced it moves that one back: tell those behind.
    await notifyPositions(this.deps, identity, slot.queued, slot.position);
    return { kind: 'queued', requestId, position: slot.position };
  }

  /** Cancels one of the user's queued requests; someone else's request id is simply not found. */
  async cancel(
    identity: Identity,
    connectionId: string,
    requestId: string,
  ): Promise<Refusal | { kind: 'cancelled' }> {
    const { store, limiter, now } = this.deps;
    const moved = await store.transition(identity.userId, requestId, ['queued'], 'cancelled', now());
    if (!moved.ok) return refused('NOT_FOUND', 'No queued request with this id.', requestId);
    // The processor may have admitted it a moment ago; then it is no longer waiting nor counted.
    const { removed, queued } = await limiter.removeQueued(identity.userId, requestId);
    if (removed) await store.addToTotal(-1);
    const message = { type: 'request_cancelled', timestamp: now(), requestId };
    await this.channel(identity.userId, connectionId).deliver(message);
    if (moved.record.connectionId !== connectionId) {
      await this.channel(identity.userId, moved.record.connectionId).deliver(message);
    }
    await notifyPositions(this.deps, identity, queued);
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
    for (const reply of await store.listReplies(identity.userId, now())) {
      const sent = await sender.send(connectionId, reply.message as OutgoingMessage);
      if (sent === 'gone') break;
      await store.deleteReply(identity.userId, reply.requestId);
      delivered++;
    }
    return delivered;
  }

  private channel(userId: string, connectionId: string): ReplyChannel {
    const { sender, directory, store, now } = this.deps;
    return new ReplyChannel(userId, connectionId, { sender, directory, store, now });
  }
}

/** The protocol `status` message for a user's status. */
export function statusMessage(status: UserStatus, nowMs: number): OutgoingMessage {
  return {
    type: 'status',
    timestamp: nowMs,
    userId: status.userId,
    tier: status.tier,
    limits: status.limits.map((l) => ({
      name: l.name,
      limit: l.limit,
      used: l.used,
      remaining: l.remaining,
      resetAt: l.resetAtEpochMs,
    })),
    queue: {
      queued: status.queued.length,
      requests: status.queued.map((requestId, i) => ({ requestId, position: i + 1 })),
    },
  };
}

function queuedReason(decision: DeniedDecision): string {
  if (decision.limit === 'queue') return 'Queued behind your earlier requests.';
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

export function describe(err: unknown): string {
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}
