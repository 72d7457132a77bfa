import type { TokenUsage } from '../core/limiter/types';
import type { ModelSpec } from '../core/models';
import { errorMessage, requestFailed } from '../core/protocol';
import type { ReplyJob } from '../core/reply-job';
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
import { ReplyChannel } from './reply-channel';
import {
  ReplyInterruptedError,
  type ReplyUsage,
  releaseWakeUp,
  releaseWakeUps,
  streamReply,
} from './run-reply';

export interface ReplyRunnerSettings {
  /** Retries of a model fault worth retrying (throttling, a timeout) that produced nothing. @default 2 */
  readonly modelRetries: number;
  /** Backoff of the first retry, doubled for the next. @default 1000 */
  readonly modelRetryBaseMs: number;
  /** The model is stopped this long before the function's Timeout, so the reply still settles. @default 15_000 */
  readonly stopBeforeTimeoutMs: number;
  /** Attempts at the settle when the store blips, a second apart. @default 5 */
  readonly settleAttempts: number;
}

export const DEFAULT_RUNNER_SETTINGS: ReplyRunnerSettings = Object.freeze({
  modelRetries: 2,
  modelRetryBaseMs: 1000,
  stopBeforeTimeoutMs: 15_000,
  settleAttempts: 5,
});

export interface ReplyRunnerDeps {
  readonly limiter: Pick<LimiterPort, 'reconcile'>;
  readonly store: ReplyStorePort;
  readonly queue: Pick<RequestQueuePort, 'defer' | 'moveToDeadLetterQueue'>;
  readonly sender: ConnectionSender;
  readonly directory: ConnectionDirectory;
  /** The model of a job that names none (or names one not in `catalog`). */
  readonly model: ModelPort;
  /** The configured models by id, each with its adapter. */
  readonly catalog?: ReadonlyMap<string, { readonly spec: ModelSpec; readonly port: ModelPort }>;
  readonly metrics: MetricsPort;
  readonly log: LogPort;
  readonly settings: ReplyRunnerSettings;
  readonly now: () => number;
  readonly sleep: (ms: number) => Promise<void>;
}

/** Thrown by a model for errors worth another attempt (throttling, timeouts). */
export interface RetryableError {
  readonly retryable: true;
}

/**
 * The reply runner (its own function, invoked asynchronously): streams one admitted request's
 * reply, settles its reservation to what the model produced, sends the final message, and releases
 * what the request holds. No route waits for it, so a reply may take as long as the model needs;
 * the function's Timeout is sized for the longest reply, and the model is stopped a margin before
 * it so the request still settles (charged what was produced).
 */
export class ReplyRunner {
  constructor(private readonly deps: ReplyRunnerDeps) {}

  async run(given: ReplyJob, remainingTimeMs: () => number): Promise<void> {
    // A reservation rebuilt after a takeover has no price: the model's, from the catalog.
    const price =
      given.reservation.price ?? (given.model ? this.deps.catalog?.get(given.model)?.spec : undefined);
    const job: ReplyJob = price ? { ...given, reservation: { ...given.reservation, price } } : given;
    const { settings, sleep } = this.deps;
    const channel = this.channel(job);
    const deadline = new AbortController();
    // The model stops a margin before the function's Timeout and before the in-flight lease lapses
    // (after which the slot may be another request's), so the reply still settles in time.
    const leaseLeftMs = (job.inFlightUntilEpochMs ?? Number.POSITIVE_INFINITY) - this.deps.now();
    const stopIn = Math.max(0, Math.min(remainingTimeMs(), leaseLeftMs) - settings.stopBeforeTimeoutMs);
    const timer = setTimeout(() => deadline.abort(new Error('stopped before its time ran out')), stopIn);
    timer.unref?.();
    try {
      if (stopIn === 0) {
        // Started too late (an asynchronous retry long after the admission): the slot is no longer
        // surely its own. Nothing runs, nothing is charged.
        await this.fail(
          job,
          channel,
          { inputTokens: 0, outputTokens: 0, totalTokens: 0 },
          'its lease lapsed before it started',
        );
        return;
      }
      for (let attempt = 1; ; attempt++) {
        try {
          const reply = await streamReply({
            requestId: job.requestId,
            prompt: job.prompt,
            reservation: job.reservation,
            model: this.modelOf(job),
            served: { model: job.model, fallbackFrom: job.fallbackFrom },
            channel,
            now: this.deps.now,
            signal: deadline.signal,
          });
          // Settle first (the commit of a queued request), then the final message: a crash in
          // between loses that frame, never the charge, and never runs the model twice.
          await this.settle(job, reply.usage);
          this.deps.metrics.count('TokensConsumed', reply.usage.totalTokens);
          if (reply.usage.costUsd) this.deps.metrics.count('CostUsd', reply.usage.costUsd);
          if (job.source === 'direct') this.deps.metrics.count('RequestsProcessed');
          await channel.deliverFinal(job.requestId, reply.complete);
          return;
        } catch (err) {
          if (!(err instanceof ReplyInterruptedError)) throw err;
          const worthRetrying =
            isRetryable(err.cause) &&
            !err.produced &&
            !deadline.signal.aborted &&
            attempt <= settings.modelRetries;
          this.deps.log.warn('model fault', {
            requestId: job.requestId,
            attempt,
            retrying: worthRetrying,
            error: describe(err.cause),
          });
          if (worthRetrying) {
            await sleep(settings.modelRetryBaseMs * 2 ** (attempt - 1));
            continue;
          }
          await this.fail(job, channel, err.usage, describe(err.cause));
          return;
        }
      }
    } finally {
      clearTimeout(timer);
      if (job.wakeUpReceiptHandle) await releaseWakeUp(this.deps, job.wakeUpReceiptHandle, job.requestId);
    }
  }

  /** Charged what was produced; for a queued request the same write ends it. */
  private async settle(job: ReplyJob, usage: TokenUsage): Promise<void> {
    if (job.failedOpen) return; // admitted while the store was down: nothing was reserved
    for (let attempt = 1; ; attempt++) {
      try {
        const outcome = await this.deps.limiter.reconcile(job.reservation, usage, this.deps.now(), {
          endsActive: job.source === 'queue',
        });
        // This reply freed a slot a queue was parked on (the user's, or the next in line's for
        // global capacity): wake it now.
        await releaseWakeUps(this.deps, outcome, job.requestId);
        return;
      } catch (err) {
        if (attempt >= this.deps.settings.settleAttempts) {
          // The reply is delivered regardless; the reservation stays charged (never overdrawn).
          this.deps.log.error('settle failed; the reservation stays charged', {
            requestId: job.requestId,
            error: describe(err),
          });
          return;
        }
        await this.deps.sleep(1000);
      }
    }
  }

  private async fail(job: ReplyJob, channel: ReplyChannel, usage: ReplyUsage, reason: string): Promise<void> {
    const { now, metrics } = this.deps;
    await this.settle(job, usage);
    metrics.count('RequestsFailed');
    if (usage.totalTokens > 0) metrics.count('TokensConsumed', usage.totalTokens);
    const charged = usage.totalTokens
      ? `${usage.totalTokens} tokens the model produced were charged.`
      : 'nothing was charged.';
    let message: OutgoingMessage;
    if (job.source === 'queue') {
      const body = JSON.stringify({ v: 1, userId: job.userId, requestId: job.requestId });
      await this.deps.queue
        .moveToDeadLetterQueue(body, job.userId, `failed-${job.requestId}`, reason)
        .catch((err) =>
          this.deps.log.error('could not park a failed request in the DLQ', { error: describe(err) }),
        );
      message = requestFailed(job.requestId, `The request could not be completed; ${charged}`, now());
    } else {
      message = errorMessage(
        {
          code: 'INTERNAL_ERROR',
          requestId: job.requestId,
          message: `The model failed to answer; ${charged}`,
          details: { usage },
        },
        now(),
      );
    }
    await channel.deliverFinal(job.requestId, message);
  }

  private modelOf(job: ReplyJob): ModelPort {
    return (job.model ? this.deps.catalog?.get(job.model)?.port : undefined) ?? this.deps.model;
  }

  private channel(job: ReplyJob): ReplyChannel {
    return new ReplyChannel(job.userId, job.connectionId, this.deps);
  }
}

export function isRetryable(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as Partial<RetryableError>).retryable === true;
}
