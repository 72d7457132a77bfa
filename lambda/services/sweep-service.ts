import type { TokenReservation } from '../core/limiter/types';
import { requestExpired, requestFailed } from '../core/protocol';
import { wakeUpCause } from '../core/queue/request';
import { planRepairs, REPAIR_KINDS, type Repair, type RepairKind, SWEEP_GRACE_MS } from '../core/queue/sweep';
import { describe } from './chat-service';
import type {
  ConnectionDirectory,
  ConnectionSender,
  DueUser,
  EventsPort,
  LogPort,
  MetricsPort,
  ReplyStorePort,
  RequestQueuePort,
  SweepIndexPort,
  SweepLimiterPort,
} from './ports';
import { notifyPositions } from './queue-notices';
import { ReplyChannel } from './reply-channel';
import { releaseWakeUps } from './run-reply';

export interface SweepSettings {
  /** Users looked at in one run at most (the rest, still due, are the next run's). @default 800 */
  readonly maxUsersPerRun: number;
  /** Users looked at side by side. @default 8 */
  readonly concurrency: number;
}

export const DEFAULT_SWEEP_SETTINGS: SweepSettings = Object.freeze({ maxUsersPerRun: 800, concurrency: 8 });

export interface SweepDeps {
  readonly limiter: SweepLimiterPort;
  readonly index: SweepIndexPort;
  readonly queue: Pick<RequestQueuePort, 'send' | 'depth' | 'defer'>;
  readonly store: ReplyStorePort;
  readonly sender: ConnectionSender;
  readonly directory: ConnectionDirectory;
  readonly events: EventsPort;
  readonly metrics: MetricsPort;
  readonly log: LogPort;
  readonly settings: SweepSettings;
  readonly now: () => number;
  /**
   * A model's price by id, so a reply a runner kept is charged what it cost. @default none: a
   * kept reply's cost is not charged (its tokens are)
   */
  readonly prices?: (modelId: string) => TokenReservation['price'];
}

/** What one run did. */
export interface SweepReport {
  /** Users the index said were due. */
  readonly looked: number;
  /** Repairs made, by kind. */
  readonly repaired: Readonly<Record<RepairKind, number>>;
  /** Users whose look failed (a fault): still due, the next run looks again. */
  readonly failed: number;
}

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
    const { limiter, index, settings, log } = this.deps;
    const repaired = Object.fromEntries(REPAIR_KINDS.map((k) => [k, 0])) as Record<RepairKind, number>;
    const pruned = await limiter
      .pruneGlobalLine(nowMs)
      .then(({ removed }) => removed.length)
      .catch((err) => {
        log.error('sweep: pruning the global waiting line failed; the next run tries again', {
          error: describe(err),
        });
        return 0;
      });
    if (pruned > 0) {
      repaired['stale-line-entry'] += pruned;
      await this.report('stale-line-entry', { entries: pruned }, pruned);
    }
    const orphans = await limiter.releaseOrphanedGlobalShares(nowMs).then(
      ({ released }) => released,
      (err) => {
        log.error('sweep: giving back orphaned global shares failed; the next run tries again', {
          error: describe(err),
        });
        return [];
      },
    );
    for (const { userId, requestId } of orphans) {
      repaired['orphaned-global-share']++;
      await this.report('orphaned-global-share', { userId, requestId });
    }
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
              error: describe(err),
            });
          }
        }),
      );
    }
    return { looked: due.length, repaired, failed };
  }

  /** Looks at one due user: repairs what needs it, then moves or clears its next look. */
  async sweepUser(user: DueUser, nowMs: number): Promise<RepairKind[]> {
    const { limiter, index } = this.deps;
    const view = await limiter.view(user.userId, undefined, nowMs, { fresh: true });
    const plan = planRepairs(view, nowMs);
    const made: RepairKind[] = [];
    for (const repair of plan.repairs) made.push(...(await this.repair(user.userId, repair, nowMs)));
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

  private async repair(userId: string, repair: Repair, nowMs: number): Promise<RepairKind[]> {
    switch (repair.kind) {
      case 'lapsed-slot': {
        if (!(await this.deps.index.dropSlots(userId, repair.slots))) return [];
        const requestIds = repair.slots.map(([id]) => id);
        await this.report('lapsed-slot', { userId, requestIds });
        return ['lapsed-slot'];
      }
      case 'lost-wake-up':
      case 'orphaned-active':
        await this.wake(userId, repair.requestId, nowMs);
        await this.report(repair.kind, { userId, requestId: repair.requestId });
        return [repair.kind];
      case 'expired-head':
        return this.expireHead(userId, repair.requestId, nowMs);
      case 'lapsed-direct-request':
        return this.endLapsedDirect(userId, repair, nowMs);
    }
  }

  /**
   * A direct request whose lease lapsed with its reservation still held: its runner crashed after
   * its claim (Lambda's retry finds the claim taken and does nothing, so no on-failure record
   * comes), or its event never ran. Ended once, in one conditional settle:
   * - a runner kept the reply it produced but could not settle: settled to that usage under that
   *   runner's claim, and the kept message sent;
   * - else, charging nothing, under the claim seen — or, when no runner claimed it, under a claim
   *   the sweep makes first, conditioned on the lease seen (so a client that reused the id since
   *   is not touched, and a runner event arriving late finds it taken and does nothing) — and the
   *   user told `request_failed` (kept for `resume` with no connection).
   * Only the write that applied tells the user; a settle that finds it ended changes nothing.
   */
  private async endLapsedDirect(
    userId: string,
    repair: Extract<Repair, { kind: 'lapsed-direct-request' }>,
    nowMs: number,
  ): Promise<RepairKind[]> {
    const { limiter, store, now } = this.deps;
    const { requestId } = repair;
    const view = await limiter.view(userId, undefined, nowMs, { fresh: false });
    const pending = view.snap.reservations[requestId];
    if (!pending) return [];
    let claim = repair.claim;
    if (claim === undefined) {
      const own = `sweep-${nowMs.toString(16)}`;
      const claimed = await limiter.claim(userId, requestId, own, {
        source: 'direct',
        inFlightUntilEpochMs: repair.leaseUntilEpochMs,
      });
      // Taken: a runner claimed it just now (an event run late); it ends it, or the next look does.
      if (claimed.kind !== 'claimed') return [];
      claim = own;
    }
    const kept = await store.producedReply(userId, requestId, now());
    const usable = kept && kept.claim === claim ? kept : undefined;
    const price = pending.model ? this.deps.prices?.(pending.model) : undefined;
    const reservation: TokenReservation = {
      userId,
      requestId,
      dayNumber: pending.day,
      inputTokens: pending.inputTokens,
      outputAllowance: pending.outputAllowance,
      reservedTokens: pending.inputTokens + pending.outputAllowance,
      reservedCostMicroUsd: pending.costMicroUsd,
      tokenEpoch: pending.tokenEpoch ?? 0,
      costEpoch: pending.costEpoch ?? 0,
      ...(price ? { price } : {}),
    };
    const usage = usable?.usage ?? { inputTokens: 0, outputTokens: 0 };
    const settled = await limiter.reconcile(reservation, usage, now(), {
      endsActive: false,
      holder: { claim },
    });
    if (!settled.applied) return [];
    await releaseWakeUps(this.deps, settled, requestId);
    const message =
      usable?.message ??
      requestFailed(requestId, 'The reply was not completed; nothing was charged for it.', now());
    await new ReplyChannel(userId, '', this.deps).deliverFinal(requestId, message);
    if (usable) await store.dropProduced(userId, requestId).catch(() => undefined);
    await this.report('lapsed-direct-request', {
      userId,
      requestId,
      outcome: usable ? 'kept-reply-delivered' : 'failed-nothing-charged',
    });
    return ['lapsed-direct-request'];
  }

  /**
   * A head past its deadline that no wake-up expired: it leaves the list (conditioned on its
   * index, so a live wake-up doing the same at this moment tells the user, not both), its sender
   * is told, the rest move up, and — no wake-up having served this list — one is sent for them.
   */
  private async expireHead(userId: string, requestId: string, nowMs: number): Promise<RepairKind[]> {
    const { limiter, now } = this.deps;
    const before = await limiter.view(userId, undefined, nowMs, { fresh: false });
    const request = before.snap.queued[requestId];
    const { removed } = await limiter.removeWaiting(userId, requestId);
    if (!removed) return [];
    if (request) {
      await new ReplyChannel(userId, request.connectionId, this.deps).deliverFinal(
        requestId,
        requestExpired(requestId, 'not started within MAX_QUEUE_WAIT', now()),
      );
    }
    await this.report('expired-head', { userId, requestId });
    const after = await limiter.view(userId, undefined, nowMs, { fresh: false });
    await notifyPositions(this.deps, userId, after);
    const next = after.snap.waiting[0];
    if (next === undefined || after.snap.active) return ['expired-head'];
    await this.wake(userId, next, nowMs);
    await this.report('lost-wake-up', { userId, requestId: next });
    return ['expired-head', 'lost-wake-up'];
  }

  private async wake(userId: string, requestId: string, nowMs: number): Promise<void> {
    await this.deps.queue.send({ v: 1, userId, requestId, cause: wakeUpCause.sweep(nowMs) });
  }

  /** One repair: a log line (ids only), the metric by kind, and the event. */
  private async report(kind: RepairKind, detail: Record<string, unknown>, count = 1): Promise<void> {
    const { log, metrics, events, now } = this.deps;
    log.warn('state repaired', { kind, ...detail });
    metrics.count('StateRepaired', count, { kind });
    await events
      .publish('State Repaired', { kind, ...detail, repairedAt: new Date(now()).toISOString() })
      .catch((err) => log.error('could not publish State Repaired', { kind, error: describe(err) }));
  }
}
