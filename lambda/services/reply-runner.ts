import { randomUUID } from 'node:crypto';
import type { ReplyJob } from '../core/reply-job';
import { answer } from './runner/answer';
import { adopt, claimAttempt } from './runner/claim';
import { channelOf, type Holder, NOTHING, type ReplyRunnerDeps } from './runner/deps';
import { fail, finishKept } from './runner/endings';
import { releaseWakeUp } from './shared/wake-ups';

export { ReplyNotSettledError } from './errors';
export { DEFAULT_RUNNER_SETTINGS, type ReplyRunnerDeps, type ReplyRunnerSettings } from './runner/deps';

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
    const job = priced(this.deps, given);
    const { now } = this.deps;
    // The model stops a margin before the function's Timeout and before the in-flight lease lapses
    // (after which the slot may be another request's), so the reply still settles in time.
    const timeLeftMs = () =>
      Math.min(remainingTimeMs(), (job.inFlightUntilEpochMs ?? Number.POSITIVE_INFINITY) - now());
    const channel = channelOf(this.deps, job);
    let holds = false;
    try {
      // Failed open: the store was down at admission, nothing was reserved, nothing to claim.
      let holder: Holder;
      if (!job.failedOpen) {
        const claim = this.deps.newClaimId?.() ?? randomUUID().replaceAll('-', '').slice(0, 16);
        const claimed = await claimAttempt(this.deps, job, claim, timeLeftMs);
        if (claimed.kind !== 'claimed') {
          holds =
            claimed.kind === 'taken' && (await adopt(this.deps, job, claimed.claim, channel, timeLeftMs));
          return;
        }
        holds = true;
        holder = { claim };
        // A takeover: the attempt before may have produced the reply and only failed to settle it.
        if (job.source === 'queue' && (job.lease?.attempts ?? 1) > 1) {
          const kept = await this.deps.store.producedReply(job.userId, job.requestId, now());
          if (kept) {
            await finishKept(this.deps, job, holder, kept, channel, timeLeftMs);
            return;
          }
        }
      }
      await answer(this.deps, job, holder, channel, timeLeftMs);
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
    const job = priced(this.deps, given);
    const channel = channelOf(this.deps, job);
    const kept = job.failedOpen
      ? undefined
      : await this.deps.store.producedReply(job.userId, job.requestId, this.deps.now());
    let ended: boolean;
    if (kept) {
      ended = await finishKept(this.deps, job, { claim: kept.claim }, kept, channel, remainingTimeMs);
    } else {
      const holder: Holder = job.failedOpen
        ? undefined
        : {
            unclaimed: true,
            ...(job.source === 'queue' && job.lease
              ? { active: { attempts: job.lease.attempts, leaseUntilEpochMs: job.lease.untilEpochMs } }
              : {}),
          };
      ended = await fail(
        this.deps,
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
}

/** A reservation rebuilt after a takeover has no price: the model's, from the catalog. */
function priced(deps: ReplyRunnerDeps, given: ReplyJob): ReplyJob {
  const price = given.reservation.price ?? (given.model ? deps.catalog?.get(given.model)?.spec : undefined);
  return price ? { ...given, reservation: { ...given.reservation, price } } : given;
}
