import { requestFailed } from '../core/protocol';
import type { ProducedReply, ReplyJob } from '../core/reply-job';
import type {
  ConnectionDirectory,
  ConnectionSender,
  LimiterPort,
  LogPort,
  MetricsPort,
  ReplyStorePort,
  RequestQueuePort,
} from './ports';
import { ReplyChannel } from './reply-channel';
import { releaseWakeUp, releaseWakeUps } from './shared/wake-ups';

/**
 * Why Lambda gave up on a reply job (`requestContext.condition` of its invocation record):
 * `EventAgeExceeded` (not started within the maximum event age: throttled, or never picked up),
 * `RetriesExhausted` (every attempt failed or timed out).
 */
export type DropCondition = 'EventAgeExceeded' | 'RetriesExhausted' | (string & {});

/** A reply job Lambda dropped, as its on-failure destination receives it. */
export interface DroppedReplyJob {
  readonly job: ReplyJob;
  readonly condition: DropCondition;
  /** Attempts Lambda made (0 when the event was never started). */
  readonly invokeCount?: number;
}

/**
 * What the destination did, as a value:
 * - `settled`: a direct request's reservation was settled charging nothing, its slot freed, the
 *   user told `request_failed` — or, when a runner kept the reply it could not settle, settled to
 *   that reply's usage under that runner's claim and the reply sent;
 * - `lease-ended`: a queued request's lease was ended now and its wake-up released, so the
 *   processor takes it over at once as a new attempt (or fails it for good, telling the user);
 * - `already-ended`: someone else ended it first (an earlier record, a late runner's settle, a
 *   takeover): nothing changed, nobody is told twice.
 */
export type ReplyFailureOutcome = 'settled' | 'lease-ended' | 'already-ended';

export interface ReplyFailureDeps {
  readonly limiter: Pick<LimiterPort, 'reconcile' | 'takeOver'>;
  readonly store: ReplyStorePort;
  readonly queue: Pick<RequestQueuePort, 'defer'>;
  readonly sender: ConnectionSender;
  readonly directory: ConnectionDirectory;
  readonly metrics: MetricsPort;
  readonly log: LogPort;
  readonly now: () => number;
}

const NOTHING_USED = { inputTokens: 0, outputTokens: 0 } as const;

/**
 * The reply runner's on-failure destination (SPEC §9.1: every state has an end). Without it, a
 * reply job Lambda drops ends nowhere: the user saw `message_accepted` and then nothing, and the
 * reservation and in-flight slot stay until their windows and lease end.
 *
 * Idempotent, because each end is one conditional write on the user's item: Lambda may deliver a
 * record twice, and a runner that was only late may settle too; whichever write lands first ends
 * the request, the others find it ended and change nothing.
 */
export class ReplyFailureService {
  constructor(private readonly deps: ReplyFailureDeps) {}

  async settleDropped(dropped: DroppedReplyJob): Promise<ReplyFailureOutcome> {
    const { job, condition } = dropped;
    const fields = { requestId: job.requestId, source: job.source, condition, attempts: dropped.invokeCount };
    const outcome = job.source === 'queue' ? await this.endLease(job) : await this.settleDirect(job);
    if (outcome === 'already-ended') this.deps.log.info('dropped reply job had already ended', fields);
    else this.deps.log.warn('reply job dropped by Lambda; its request was ended', { ...fields, outcome });
    return outcome;
  }

  /**
   * A direct request: what the model produced (if an attempt ran at all) is unknown, so nothing is
   * charged — the same rule as a queued request that failed for good. The settle's condition on
   * the reservation marker makes it happen once; only the write that applied tells the user.
   */
  private async settleDirect(job: ReplyJob): Promise<ReplyFailureOutcome> {
    const { limiter, now } = this.deps;
    // A runner produced the reply and could not settle it (its retry could not either): it is
    // settled to what it used under that runner's claim, and sent — not thrown away as a failure.
    const kept = job.failedOpen
      ? undefined
      : await this.deps.store.producedReply(job.userId, job.requestId, now());
    if (kept) return this.settleKept(job, kept);
    if (!job.failedOpen) {
      const settled = await limiter.reconcile(job.reservation, NOTHING_USED, now(), { endsActive: false });
      if (!settled.applied) return 'already-ended';
      // The slot it freed may be what a parked queue (this user's or the next in line) waits for.
      await releaseWakeUps(this.deps, settled, job.requestId);
    }
    // Admitted while the store was down (failed open): nothing was reserved and nothing marks it,
    // so a second record tells the user again; that is the only case without exactly-once.
    this.deps.metrics.count('RequestsFailed');
    const channel = new ReplyChannel(job.userId, job.connectionId, this.deps);
    await channel.deliverFinal(
      job.requestId,
      requestFailed(job.requestId, 'The reply could not be started; nothing was charged for it.', now()),
    );
    return 'settled';
  }

  private async settleKept(job: ReplyJob, kept: ProducedReply): Promise<ReplyFailureOutcome> {
    const { limiter, now } = this.deps;
    const settled = await limiter.reconcile(job.reservation, kept.usage, now(), {
      endsActive: false,
      holder: { claim: kept.claim },
    });
    if (!settled.applied) return 'already-ended';
    await releaseWakeUps(this.deps, settled, job.requestId);
    await new ReplyChannel(job.userId, job.connectionId, this.deps).deliverFinal(job.requestId, kept.message);
    await this.deps.store.dropProduced(job.userId, job.requestId).catch(() => undefined);
    return 'settled';
  }

  /**
   * A queued request: the user's active one, with a lease and a wake-up held in flight. Its lease
   * is ended now (conditioned on the lease this job carried, so a record of an attempt that was
   * taken over since changes nothing) and the wake-up released, so the processor takes it over at
   * once as the next attempt; after `maxAttempts` it fails for good, refunded, and the user is told
   * `request_failed` there (replay-service.ts).
   */
  private async endLease(job: ReplyJob): Promise<ReplyFailureOutcome> {
    const { limiter, now } = this.deps;
    if (!job.lease) return 'already-ended';
    const { ok } = await limiter.takeOver(
      job.userId,
      { requestId: job.requestId, leaseUntilEpochMs: job.lease.untilEpochMs, attempts: job.lease.attempts },
      now(),
      { endsLease: true },
    );
    if (!ok) return 'already-ended';
    if (job.wakeUpReceiptHandle) await releaseWakeUp(this.deps, job.wakeUpReceiptHandle, job.requestId);
    return 'lease-ended';
  }
}
