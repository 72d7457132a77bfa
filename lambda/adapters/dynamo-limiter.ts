import type { StoreBreaker } from '../core/limiter/breaker';
import type { Limiter } from '../core/limiter/decision';
import type { SweepLimiterPort } from '../services/ports';
import { AdminOps } from './limiter/admin-ops';
import { Admission } from './limiter/admission';
import { LimiterContext } from './limiter/context';
import type { GlobalCounters } from './limiter/global-counters';
import { markGlobalCrossings, markTeamCrossings, teamsWithLimits } from './limiter/global-events';
import type { DynamoLimiterOptions } from './limiter/options';
import { QueueOps } from './limiter/queue-ops';
import { Settles } from './limiter/settle';

export {
  LimiterBusyError,
  LimiterOutcomeUnknownError,
  LimiterStoreError,
  LimiterUnavailableError,
} from './limiter/errors';
export type { DynamoLimiterOptions } from './limiter/options';

/**
 * The limiter on DynamoDB: every limit of a user, and the user's waiting queue, in one item; every
 * decision one conditional UpdateItem (see docs/limiter.md). Plans are made from the last item this
 * instance saw for the user; a failed condition returns the item as it is, and the next plan is
 * made from that.
 *
 * Faults are never permission (SPEC §2 Bursts, §6): contention, throttling or slowness on one
 * user's item are retried a bounded number of times and then refused as `busy`; only when the
 * breaker says the store is down for everyone does the fail policy apply.
 *
 * A facade over four parts sharing one {@link LimiterContext} (the store, the breaker, the policy,
 * the models, the global counters): decisions in {@link Admission}, settles and the runner's claim
 * in {@link Settles}, the waiting list, active request and global line in {@link QueueOps}, status
 * and the admin's writes in {@link AdminOps}. The decisions they build, the model they choose and
 * the amounts a settle moves are core's (lambda/core/limiter/decide).
 */
export class DynamoLimiter implements Limiter, SweepLimiterPort {
  readonly breaker: StoreBreaker;
  /** The global counters, when the stack has global limits. */
  readonly global?: GlobalCounters;
  private readonly admission: Admission;
  private readonly settles: Settles;
  private readonly queue: QueueOps;
  private readonly admin: AdminOps;
  private readonly ctx: LimiterContext;

  constructor(options: DynamoLimiterOptions) {
    const ctx = new LimiterContext(options);
    this.ctx = ctx;
    this.breaker = ctx.breaker;
    this.global = ctx.global;
    this.queue = new QueueOps(ctx);
    this.admission = new Admission(ctx, this.queue);
    this.settles = new Settles(ctx);
    this.admin = new AdminOps(ctx);
  }

  // Decisions (Admission).
  decide(...args: Parameters<Admission['decide']>) {
    return this.admission.decide(...args);
  }
  decideOrQueue(...args: Parameters<Admission['decideOrQueue']>) {
    return this.admission.decideOrQueue(...args);
  }

  // Settles and claims (Settles).
  reconcile(...args: Parameters<Settles['reconcile']>) {
    return this.settles.reconcile(...args);
  }
  claim(...args: Parameters<Settles['claim']>) {
    return this.settles.claim(...args);
  }

  // The waiting list, the active request, the global line (QueueOps).
  enqueue(...args: Parameters<QueueOps['enqueue']>) {
    return this.queue.enqueue(...args);
  }
  removeWaiting(...args: Parameters<QueueOps['removeWaiting']>) {
    return this.queue.removeWaiting(...args);
  }
  takeOver(...args: Parameters<QueueOps['takeOver']>) {
    return this.queue.takeOver(...args);
  }
  endStuckActive(...args: Parameters<QueueOps['endStuckActive']>) {
    return this.queue.endStuckActive(...args);
  }
  park(...args: Parameters<QueueOps['park']>) {
    return this.queue.park(...args);
  }
  joinGlobalLine(...args: Parameters<QueueOps['joinGlobalLine']>) {
    return this.queue.joinGlobalLine(...args);
  }
  leaveGlobalLine(...args: Parameters<QueueOps['leaveGlobalLine']>) {
    return this.queue.leaveGlobalLine(...args);
  }
  /** The wait for global or team capacity of a user's head, as this instance knows it (no call). */
  globalWait(...args: Parameters<QueueOps['globalWait']>) {
    return this.queue.globalWait(...args);
  }
  pruneGlobalLine(...args: Parameters<QueueOps['pruneGlobalLine']>) {
    return this.queue.pruneGlobalLine(...args);
  }
  releaseOrphanedGlobalShares(...args: Parameters<QueueOps['releaseOrphanedGlobalShares']>) {
    return this.queue.releaseOrphanedGlobalShares(...args);
  }
  /** The global budgets' threshold crossings not yet marked this window, marked (the sweep's). */
  markGlobalCrossings(nowMs: number) {
    return markGlobalCrossings(this.ctx, nowMs);
  }
  /** The teams with limits the configuration names or the index has seen (the sweep's). */
  teamsWithLimits() {
    return teamsWithLimits(this.ctx);
  }
  /** A team's budgets' threshold crossings not yet marked this window, marked (the sweep's). */
  markTeamCrossings(team: string, nowMs: number) {
    return markTeamCrossings(this.ctx, team, nowMs);
  }

  // What status and the admin read and write (AdminOps).
  view(...args: Parameters<AdminOps['view']>) {
    return this.admin.view(...args);
  }
  status(...args: Parameters<AdminOps['status']>) {
    return this.admin.status(...args);
  }
  top(...args: Parameters<AdminOps['top']>) {
    return this.admin.top(...args);
  }
  reset(...args: Parameters<AdminOps['reset']>) {
    return this.admin.reset(...args);
  }
  setTier(...args: Parameters<AdminOps['setTier']>) {
    return this.admin.setTier(...args);
  }
  setTeam(...args: Parameters<AdminOps['setTeam']>) {
    return this.admin.setTeam(...args);
  }
  teamUsage(...args: Parameters<AdminOps['teamUsage']>) {
    return this.admin.teamUsage(...args);
  }
  setOverride(...args: Parameters<AdminOps['setOverride']>) {
    return this.admin.setOverride(...args);
  }
  clearOverride(...args: Parameters<AdminOps['clearOverride']>) {
    return this.admin.clearOverride(...args);
  }
}
