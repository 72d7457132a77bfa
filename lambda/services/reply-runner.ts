import { randomUUID } from 'node:crypto';
import { describeError } from '../core/errors';
import type { TokenUsage } from '../core/limiter/types';
import type { ModelSpec } from '../core/models';
import type { ReplyUsage } from '../core/protocol';
import { errorMessage, requestFailed } from '../core/protocol';
import type { ProducedReply, ReplyJob } from '../core/reply-job';
import { ReplyInterruptedError, ReplyNotSettledError } from './errors';
import type {
  ClaimOutcome,
  ClaimTarget,
  ConnectionDirectory,
  ConnectionSender,
  LimiterPort,
  LogPort,
  MetricsPort,
  ModelPort,
  OutgoingMessage,
  ReplyStorePort,
  RequestQueuePort,
  SettleHolder,
} from './ports';
import { ReplyChannel } from './reply-channel';
import { streamReply } from './run-reply';
import { releaseWakeUp, releaseWakeUps } from './shared/wake-ups';

export { ReplyNotSettledError } from './errors';

export interface ReplyRunnerSettings {
  /** Retries of a model fault worth retrying (throttling, a timeout) that produced nothing. @default 2 */
  readonly modelRetries: number;
  /** Backoff of the first retry, doubled for the next. @default 1000 */
  readonly modelRetryBaseMs: number;
  /** The model is stopped this long before the function's Timeout, so the reply still settles. @default 15_000 */
  readonly stopBeforeTimeoutMs: number;
  /** Backoff of the settle's first retry when the store is out, doubled up to the cap, jittered. @default 250 */
  readonly settleRetryBaseMs: number;
  /** @default 4000 */
  readonly settleRetryCapMs: number;
  /**
   * The settle is retried until this much time is left (before the function's Timeout or the
   * lease, whichever is first): enough to keep what was produced for the attempt that settles it.
   * @default 3000
   */
  readonly keepMarginMs: number;
}

export const DEFAULT_RUNNER_SETTINGS: ReplyRunnerSettings = Object.freeze({
  modelRetries: 2,
  modelRetryBaseMs: 1000,
  stopBeforeTimeoutMs: 15_000,
  settleRetryBaseMs: 250,
  settleRetryCapMs: 4000,
  keepMarginMs: 3000,
});

export interface ReplyRunnerDeps {
  readonly limiter: Pick<LimiterPort, 'reconcile' | 'claim'>;
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
  /** Jitter of the backoffs. @default Math.random */
  readonly random?: () => number;
  /** A fresh claim id per invocation. @default 16 random hex digits */
  readonly newClaimId?: () => string;
}

/** Thrown by a model for errors worth another attempt (throttling, timeouts). */
export interface RetryableError {
  readonly retryable: true;
}

/**
 * Whose settle this runner makes: its own claim, the claim of a runner whose reply it adopted, or
 * (ending an event Lambda gave up on) no runner's; none for a request admitted failed open.
 */
type Holder = SettleHolder | undefined;

/**
 * The reply runner (its own function, invoked asynchronously): streams one admitted request's
 * reply, settles its reservation to what the model produced, sends the final message, and releases
 * what the request holds. No route waits for it, so a reply may take as long as the model needs;
 * the function's Timeout is sized for the longest reply, and the model is stopped a margin before
 * it so the request still settles (charged what was produced).
 *
 * Lambda may deliver its event twice, late (after a takeover), or retry it (issue 20, finding 15):
 * before the model runs, the runner claims the request for its attempt (one conditional write,
 * {@link LimiterPort.claim}); an event whose claim fails streams nothing, settles nothing and
 * sends nothing, and every settle names the claim it speaks for. The final message goes out only
 * after the settle landed (finding 8); a settle that cannot land in time keeps what was produced
 * for the attempt that settles it, so the model never runs twice for one request.
 */
export class ReplyRunner {
  constructor(private readonly deps: ReplyRunnerDeps) {}

  async run(given: ReplyJob, remainingTimeMs: () => number): Promise<void> {
    const job = this.priced(given);
    const { now } = this.deps;
    // The model stops a margin before the function's Timeout and before the in-flight lease lapses
    // (after which the slot may be another request's), so the reply still settles in time.
    const timeLeftMs = () =>
      Math.min(remainingTimeMs(), (job.inFlightUntilEpochMs ?? Number.POSITIVE_INFINITY) - now());
    const channel = this.channel(job);
    let holds = false;
    try {
      // Failed open: the store was down at admission, nothing was reserved, nothing to claim.
      let holder: Holder;
      if (!job.failedOpen) {
        const claim = this.deps.newClaimId?.() ?? randomUUID().replaceAll('-', '').slice(0, 16);
        const claimed = await this.claim(job, claim, timeLeftMs);
        if (claimed.kind !== 'claimed') {
          holds = claimed.kind === 'taken' && (await this.adopt(job, claimed.claim, channel, timeLeftMs));
          return;
        }
        holds = true;
        holder = { claim };
        // A takeover: the attempt before may have produced the reply and only failed to settle it.
        if (job.source === 'queue' && (job.lease?.attempts ?? 1) > 1) {
          const kept = await this.deps.store.producedReply(job.userId, job.requestId, now());
          if (kept) {
            await this.finishKept(job, holder, kept, channel, timeLeftMs);
            return;
          }
        }
      }
      await this.answer(job, holder, channel, timeLeftMs);
    } finally {
      if (holds && job.wakeUpReceiptHandle) {
        await releaseWakeUp(this.deps, job.wakeUpReceiptHandle, job.requestId);
      }
    }
  }

  /**
   * Ends a request whose event Lambda gave up on (the runner's on-failure destination: its retries
   * failed, or it waited past the maximum event age), without running the model:
   * - a runner kept what it produced but could not settle: settled to that and sent (`kept`);
   * - no runner claimed it: nothing charged, the reservation and slot given back, the user told
   *   the request failed (`refunded`) — conditioned on no runner (of this attempt) having claimed
   *   it, so a runner that is answering it after all keeps it;
   * - else (`left`): a runner claimed it and answers it, or its lease lapses and the sweep ends
   *   it; or it ended already.
   */
  async endFailedEvent(
    given: ReplyJob,
    remainingTimeMs: () => number,
  ): Promise<'kept' | 'refunded' | 'left'> {
    const job = this.priced(given);
    const channel = this.channel(job);
    const kept = job.failedOpen
      ? undefined
      : await this.deps.store.producedReply(job.userId, job.requestId, this.deps.now());
    let ended: boolean;
    if (kept) {
      ended = await this.finishKept(job, { claim: kept.claim }, kept, channel, remainingTimeMs);
    } else {
      const holder: Holder = job.failedOpen
        ? undefined
        : {
            unclaimed: true,
            ...(job.source === 'queue' && job.lease
              ? { active: { attempts: job.lease.attempts, leaseUntilEpochMs: job.lease.untilEpochMs } }
              : {}),
          };
      ended = await this.fail(
        job,
        holder,
        channel,
        NOTHING,
        'the reply runner never started it',
        remainingTimeMs,
      );
    }
    if (ended && job.wakeUpReceiptHandle) {
      await releaseWakeUp(this.deps, job.wakeUpReceiptHandle, job.requestId);
    }
    if (!ended) return 'left';
    return kept ? 'kept' : 'refunded';
  }

  /** A reservation rebuilt after a takeover has no price: the model's, from the catalog. */
  private priced(given: ReplyJob): ReplyJob {
    const price =
      given.reservation.price ?? (given.model ? this.deps.catalog?.get(given.model)?.spec : undefined);
    return price ? { ...given, reservation: { ...given.reservation, price } } : given;
  }

  /**
   * The claim, retried with backoff while the store is out and the model would still have time to
   * run; then the fault is thrown (nothing was streamed or claimed: Lambda's retry, its on-failure
   * destination or the lease ends the request).
   */
  private async claim(job: ReplyJob, claim: string, timeLeftMs: () => number): Promise<ClaimOutcome> {
    const { settings } = this.deps;
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.deps.limiter.claim(job.userId, job.requestId, claim, claimTarget(job));
      } catch (err) {
        const pauseMs = this.backoffMs(attempt);
        if (timeLeftMs() - pauseMs < settings.stopBeforeTimeoutMs + settings.keepMarginMs) throw err;
        this.deps.log.warn('claim failed; retrying', {
          requestId: job.requestId,
          attempt,
          error: describeError(err),
        });
        await this.deps.sleep(pauseMs);
      }
    }
  }

  /** Exponential backoff with equal jitter, for the store's calls. */
  private backoffMs(attempt: number): number {
    const { settings } = this.deps;
    const ceiling = Math.min(settings.settleRetryCapMs, settings.settleRetryBaseMs * 2 ** (attempt - 1));
    return ceiling / 2 + (this.deps.random ?? Math.random)() * (ceiling / 2);
  }

  /** Runs the model (retrying what is worth it) and ends the request with its final message. */
  private async answer(
    job: ReplyJob,
    holder: Holder,
    channel: ReplyChannel,
    timeLeftMs: () => number,
  ): Promise<void> {
    const { settings, sleep } = this.deps;
    const deadline = new AbortController();
    const stopIn = Math.max(0, timeLeftMs() - settings.stopBeforeTimeoutMs);
    if (stopIn === 0) {
      // Started too late (an asynchronous retry long after the admission): the slot is no longer
      // surely its own. Nothing runs, nothing is charged.
      await this.fail(job, holder, channel, NOTHING, 'its lease lapsed before it started', timeLeftMs);
      return;
    }
    const timer = setTimeout(() => deadline.abort(new Error('stopped before its time ran out')), stopIn);
    timer.unref?.();
    try {
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
          await this.finish(job, holder, reply.usage, reply.complete, channel, timeLeftMs);
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
            error: describeError(err.cause),
          });
          if (worthRetrying) {
            await sleep(settings.modelRetryBaseMs * 2 ** (attempt - 1));
            continue;
          }
          await this.fail(job, holder, channel, err.usage, describeError(err.cause), timeLeftMs);
          return;
        }
      }
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Settles (the commit of a queued request), then sends the final message: exactly one final
   * message per request, and only once it is charged. A settle that cannot land in time keeps the
   * message and the usage for the attempt that settles it, and fails this invocation.
   */
  private async finish(
    job: ReplyJob,
    holder: Holder,
    usage: ReplyUsage,
    message: OutgoingMessage,
    channel: ReplyChannel,
    timeLeftMs: () => number,
  ): Promise<boolean> {
    const settled = await this.settle(job, holder, usage, timeLeftMs);
    if (settled === 'not-holder') {
      this.deps.log.warn('another attempt holds this request now; this one ends without a word', {
        requestId: job.requestId,
      });
      return false;
    }
    if (settled instanceof Error) {
      if (!holder || !('claim' in holder)) throw settled;
      await this.deps.store.keepProduced(
        job.userId,
        job.requestId,
        { claim: holder.claim, usage, message },
        this.deps.now(),
      );
      throw new ReplyNotSettledError(job.requestId, { cause: settled });
    }
    if (message.type === 'message_complete') {
      this.deps.metrics.count('TokensConsumed', usage.totalTokens);
      if (usage.costUsd) this.deps.metrics.count('CostUsd', usage.costUsd);
      if (job.source === 'direct') this.deps.metrics.count('RequestsProcessed');
    }
    await channel.deliverFinal(job.requestId, message);
    return true;
  }

  /**
   * Another runner holds this attempt's claim. A duplicate event while it runs: nothing to do. A
   * retry of an event whose runner kept its reply unsettled: settle it under that claim and send
   * it (of several such retries, one settle lands; only that one sends).
   */
  private async adopt(
    job: ReplyJob,
    claim: string,
    channel: ReplyChannel,
    timeLeftMs: () => number,
  ): Promise<boolean> {
    const kept = await this.deps.store.producedReply(job.userId, job.requestId, this.deps.now());
    if (!kept || kept.claim !== claim) {
      this.deps.log.info('another runner holds this request (a duplicate event): nothing to do', {
        requestId: job.requestId,
      });
      return false;
    }
    return this.finishKept(job, { claim }, kept, channel, timeLeftMs);
  }

  private async finishKept(
    job: ReplyJob,
    holder: Holder,
    kept: ProducedReply,
    channel: ReplyChannel,
    timeLeftMs: () => number,
  ): Promise<boolean> {
    this.deps.log.warn('settling a reply an earlier attempt produced but could not settle', {
      requestId: job.requestId,
    });
    const done = await this.finish(job, holder, kept.usage, kept.message, channel, timeLeftMs);
    // TTL ends it if this fails: a later attempt finds the request settled and ignores it.
    await this.deps.store.dropProduced(job.userId, job.requestId).catch(() => undefined);
    return done;
  }

  /**
   * Charged what was produced; for a queued request the same write ends it. Conditioned on this
   * runner's claim. Retried with backoff while the store is out, as long as time is left to keep
   * the reply if it never lands; the fault is returned then.
   */
  private async settle(
    job: ReplyJob,
    holder: Holder,
    usage: TokenUsage,
    timeLeftMs: () => number,
  ): Promise<'settled' | 'not-holder' | Error> {
    if (job.failedOpen) return 'settled'; // admitted while the store was down: nothing was reserved
    const { settings, log, sleep } = this.deps;
    for (let attempt = 1; ; attempt++) {
      try {
        const outcome = await this.deps.limiter.reconcile(job.reservation, usage, this.deps.now(), {
          endsActive: job.source === 'queue',
          holder,
        });
        if (outcome.notHolder) return 'not-holder';
        // Settled, but the global shard did not answer: the request is not over while it holds its
        // share there. The next reconcile says the same outcome and gives the share back; when time
        // runs out first, the share's lease ends it.
        const pauseMs = this.backoffMs(attempt);
        if (outcome.globalUnreleased && timeLeftMs() - pauseMs >= settings.keepMarginMs) {
          log.warn('settled, but the global share is still held; retrying its release', {
            requestId: job.requestId,
            attempt,
          });
          await sleep(pauseMs);
          continue;
        }
        // This reply freed a slot a queue was parked on (the user's, or the next in line's for
        // global capacity): wake it now.
        await releaseWakeUps(this.deps, outcome, job.requestId);
        return 'settled';
      } catch (err) {
        const pauseMs = this.backoffMs(attempt);
        const cause = err instanceof Error ? err : new Error(String(err));
        if (timeLeftMs() - pauseMs < settings.keepMarginMs) {
          log.error('settle failed until the time ran out; the reply is kept for the next attempt', {
            requestId: job.requestId,
            attempt,
            error: describeError(err),
          });
          return cause;
        }
        log.warn('settle failed; retrying', { requestId: job.requestId, attempt, error: describeError(err) });
        await sleep(pauseMs);
      }
    }
  }

  private async fail(
    job: ReplyJob,
    holder: Holder,
    channel: ReplyChannel,
    usage: ReplyUsage,
    reason: string,
    timeLeftMs: () => number,
  ): Promise<boolean> {
    const { now, metrics } = this.deps;
    const charged = usage.totalTokens
      ? `${usage.totalTokens} tokens the model produced were charged.`
      : 'nothing was charged.';
    const message =
      job.source === 'queue'
        ? requestFailed(job.requestId, `The request could not be completed; ${charged}`, now())
        : errorMessage(
            {
              code: 'INTERNAL_ERROR',
              requestId: job.requestId,
              message: `The model failed to answer; ${charged}`,
              details: { usage },
            },
            now(),
          );
    if (!(await this.finish(job, holder, usage, message, channel, timeLeftMs))) return false;
    metrics.count('RequestsFailed');
    if (usage.totalTokens > 0) metrics.count('TokensConsumed', usage.totalTokens);
    if (job.source === 'queue') {
      const body = JSON.stringify({ v: 1, userId: job.userId, requestId: job.requestId });
      await this.deps.queue
        .moveToDeadLetterQueue(body, job.userId, `failed-${job.requestId}`, reason)
        .catch((err) =>
          this.deps.log.error('could not park a failed request in the DLQ', { error: describeError(err) }),
        );
    }
    return true;
  }

  private modelOf(job: ReplyJob): ModelPort {
    return (job.model ? this.deps.catalog?.get(job.model)?.port : undefined) ?? this.deps.model;
  }

  private channel(job: ReplyJob): ReplyChannel {
    return new ReplyChannel(job.userId, job.connectionId, this.deps);
  }
}

const NOTHING: ReplyUsage = { inputTokens: 0, outputTokens: 0, totalTokens: 0 };

/** The attempt a job's runner claims: the active attempt of a queued request, or a direct admission. */
function claimTarget(job: ReplyJob): ClaimTarget {
  return job.source === 'queue' && job.lease
    ? { source: 'queue', attempts: job.lease.attempts, leaseUntilEpochMs: job.lease.untilEpochMs }
    : { source: 'direct', inFlightUntilEpochMs: job.inFlightUntilEpochMs };
}

export function isRetryable(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as Partial<RetryableError>).retryable === true;
}
