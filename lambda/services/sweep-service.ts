import { describeError } from '../core/errors';
import { EVENT_TYPES, globalBudgetCrossedDetail, teamBudgetCrossedDetail } from '../core/events';
import { planRepairs, REPAIR_KINDS, type RepairKind, SWEEP_GRACE_MS } from '../core/queue/sweep';
import type { DueUser } from './ports';
import type { SweepDeps, SweepReport } from './sweep/deps';
import { repair, report } from './sweep/repairs';

export { DEFAULT_SWEEP_SETTINGS, type SweepDeps, type SweepReport, type SweepSettings } from './sweep/deps';

/**
 * The self-healing sweep (SPEC §9.1; design in docs/queue.md, "The sweep"). Each run prunes the
 * shared global waiting line, then looks at every user the sparse `bySweep` index says is due
 * (no scan), decides from the user's item alone what a lost message or a crash left behind
 * (lambda/core/queue/sweep.ts `planRepairs`) and repairs it: a fresh wake-up for a queue nobody
 * wakes or an active request nobody takes over, the expiry of a head nobody expired, the drop of
 * slots whose runner never settled. Every repair is one log line, one `StateRepaired` metric (by
 * `kind`) and one `State Repaired` event. Each write is conditioned on what was read, and a wake-up
 * sent in excess is harmless (one message of a user's FIFO group runs at a time, and the processor
 * serves the list, not the message), so a run racing with live traffic repairs nothing twice that
 * matters and breaks no order.
 */
export class SweepService {
  constructor(private readonly deps: SweepDeps) {}

  async run(nowMs: number): Promise<SweepReport> {
    const { index, settings, log } = this.deps;
    const repaired = Object.fromEntries(REPAIR_KINDS.map((k) => [k, 0])) as Record<RepairKind, number>;
    await this.sweepGlobal(nowMs, repaired);
    await this.publishGlobalCrossings(nowMs);
    await this.publishTeamCrossings(nowMs);
    const due = await index.due(nowMs, settings.maxUsersPerRun);
    let failed = 0;
    for (let i = 0; i < due.length; i += settings.concurrency) {
      await Promise.all(
        due.slice(i, i + settings.concurrency).map(async (user) => {
          try {
            for (const kind of await this.sweepUser(user, nowMs)) repaired[kind]++;
          } catch (err) {
            failed++;
            log.error('sweep: a user could not be looked at; the next run tries again', {
              userId: user.userId,
              error: describeError(err),
            });
          }
        }),
      );
    }
    return { looked: due.length, repaired, failed };
  }

  /** Prunes the global waiting line and gives back orphaned global shares; a failure waits a run. */
  private async sweepGlobal(nowMs: number, repaired: Record<RepairKind, number>): Promise<void> {
    const { limiter, log } = this.deps;
    const pruned = await limiter
      .pruneGlobalLine(nowMs)
      .then(({ removed }) => removed.length)
      .catch((err) => {
        log.error('sweep: pruning the global waiting line failed; the next run tries again', {
          error: describeError(err),
        });
        return 0;
      });
    if (pruned > 0) {
      repaired['stale-line-entry'] += pruned;
      await report(this.deps, 'stale-line-entry', { entries: pruned }, pruned);
    }
    const orphans = await limiter.releaseOrphanedGlobalShares(nowMs).then(
      ({ released }) => released,
      (err) => {
        log.error('sweep: giving back orphaned global shares failed; the next run tries again', {
          error: describeError(err),
        });
        return [];
      },
    );
    for (const { userId, requestId } of orphans) {
      repaired['orphaned-global-share']++;
      await report(this.deps, 'orphaned-global-share', { userId, requestId });
    }
  }

  /**
   * `Budget Threshold Crossed` for the global budgets at 80 % / 100 %: only the shards' totals know
   * them, so the sweep reads them once a run and publishes each crossing whose once-per-window mark
   * it wrote (at most a sweep period late). A failure is logged; the next run tries again.
   */
  private async publishGlobalCrossings(nowMs: number): Promise<void> {
    const { limiter } = this.deps;
    const crossings = await this.marked(
      'the global budgets',
      () => limiter.markGlobalCrossings?.(nowMs) ?? [],
    );
    for (const crossing of crossings) await this.publish(globalBudgetCrossedDetail(crossing, nowMs));
  }

  /**
   * The same for each team's budgets (scope `team`), team by team over the teams with limits: a
   * team whose totals or marks fail is logged and waits a run; the others are published.
   */
  private async publishTeamCrossings(nowMs: number): Promise<void> {
    const { limiter } = this.deps;
    const teams = await this.marked('the teams with limits', () => limiter.teamsWithLimits?.() ?? []);
    for (const team of teams) {
      const crossings = await this.marked(
        `team ${team}'s budgets`,
        () => limiter.markTeamCrossings?.(team, nowMs) ?? [],
      );
      for (const crossing of crossings) await this.publish(teamBudgetCrossedDetail(crossing, nowMs));
    }
  }

  /** What a read of shared budgets gave; [] (logged) when it failed: the next run tries again. */
  private async marked<T>(what: string, read: () => Promise<T[]> | T[]): Promise<T[]> {
    return Promise.resolve()
      .then(read)
      .catch((err) => {
        this.deps.log.error(`sweep: reading ${what} failed; the next run tries again`, {
          error: describeError(err),
        });
        return [];
      });
  }

  private async publish(
    detail: Readonly<Record<string, unknown>> & { readonly limit: string; readonly thresholdPercent: number },
  ): Promise<void> {
    await this.deps.events.publish(EVENT_TYPES.budgetThresholdCrossed, detail).catch((err) =>
      this.deps.log.error('could not publish Budget Threshold Crossed', {
        ...(detail.team === undefined ? {} : { team: detail.team }),
        limit: detail.limit,
        thresholdPercent: detail.thresholdPercent,
        error: describeError(err),
      }),
    );
  }

  /** Looks at one due user: repairs what needs it, then moves or clears its next look. */
  async sweepUser(user: DueUser, nowMs: number): Promise<RepairKind[]> {
    const { limiter, index } = this.deps;
    const view = await limiter.view(user.userId, undefined, nowMs, { fresh: true });
    const plan = planRepairs(view, nowMs);
    const made: RepairKind[] = [];
    for (const needed of plan.repairs) made.push(...(await repair(this.deps, user.userId, needed, nowMs)));
    // The next look is computed from the item as read: if the list changed since (a repair here,
    // or live traffic), the write's condition fails and the look stays due — the next run reads
    // the item again.
    const waiting = view.snap.waiting.length;
    if (plan.nextLookEpochMs !== undefined) {
      await index.reschedule(user, Math.max(plan.nextLookEpochMs, nowMs + 1000), waiting);
    } else if (!(await index.clear(user))) {
      // Something needing an end arrived since the read: look again after a grace.
      await index.reschedule(user, nowMs + SWEEP_GRACE_MS, waiting);
    }
    return made;
  }
}
