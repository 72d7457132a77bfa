import { GLOBAL_LIMITS, type GlobalLimits } from '../../core/limiter/global/limits';
import { type GlobalWaiter, priorityOrder, sharesCapacity } from '../../core/limiter/global/priority';
import { shardKey } from '../../core/limiter/global/shards';
import { limitKind } from '../../core/limiter/kinds/registry';
import { teamScope } from '../../core/limiter/teams';
import type { GlobalWait } from '../../core/queue/global-eta';
import type { Belief } from './beliefs';

/** Slot holds this instance remembers while it watches them (the oldest go first past it). */
const MAX_WATCHED = 1000;
/** Weight of the newest hold seen in the running estimate of how long a slot is held. */
const HOLD_WEIGHT = 0.3;
/** A hold is measured only between two views at most this far apart (off by half of it at most). */
const MAX_VIEW_SPACING_MS = 2000;
/** Admissions the turnover is measured over: the latest this many, within TURNOVER_WINDOW_MS. */
const TURNOVER_SAMPLES = 20;
const TURNOVER_WINDOW_MS = 60_000;
/** A gap between admissions longer than this is idle capacity, not turnover (no hold seen yet). */
const IDLE_GAP_MS = 5000;
/** Once a hold is seen: longer than two holds and a hand-over (a wake-up received, decided) is idle. */
const HAND_OVER_MS = 1000;

/** What the estimate reads: the shards as this instance last saw them, and the line. */
export interface GlobalWaitSources {
  readonly limits: GlobalLimits;
  readonly belief: (key: string) => Belief | undefined;
  readonly waiters: (options: { readonly fresh: boolean; readonly nowMs: number }) => Promise<GlobalWaiter[]>;
  /** The lease a global slot is taken with: its admission is the lease's end less this. */
  readonly leaseMs: number;
  readonly urgentMs: number;
  /** Shard k's key. @default the stack's (`global#<k>`) */
  readonly key?: (k: number) => string;
  /**
   * The team whose shards these are (SPEC §9.4): only its waiters (scope `team:<name>`) count as
   * ahead, and the wait is named `team.<limit>`. Absent: the stack's, whose waiters have no scope.
   */
  readonly team?: string;
}

/**
 * What this instance knows of the wait for a global in-flight slot (lambda/core/queue/global-eta.ts),
 * without a call of its own: the shards as its last decisions saw them (each `fl` entry's lease
 * says when its request was admitted), how long it has seen slots held (an entry present in one
 * view of its shard and gone in the next ended in between: the middle is taken, off by at most
 * half the views' spacing, small while the limit binds, as every refusal round reads the shards
 * again), and the line's head as last read (trusted for a second, like every decision's view).
 */
export class GlobalWaitEstimate {
  /** Requests seen holding a slot: their shard and admission (epoch ms). */
  private readonly watched = new Map<string, { shard: number; admittedAtMs: number; seenAtMs: number }>();
  private holdMs: number | undefined;
  /** When the latest requests seen holding a slot were admitted (epoch ms), oldest first. */
  private admissions: number[] = [];

  constructor(private readonly sources: GlobalWaitSources) {}

  /**
   * The wait of a user whose head is `me` (its tier, queued time and deadline), when a global
   * in-flight limit binds: its slots all held, or others in line for them. Undefined when not.
   */
  async estimate(
    me: Pick<GlobalWaiter, 'userId' | 'tier' | 'enqueuedAtEpochMs' | 'deadlineEpochMs'>,
    nowMs: number,
  ): Promise<GlobalWait | undefined> {
    const { limits } = this.sources;
    // The enforced global limit that frees by slots (requests in flight), if configured.
    const slot = GLOBAL_LIMITS.find(
      (name) => limitKind(name).waitsFor === 'slot' && !limits.shadow?.includes(name),
    );
    const limit = slot === undefined ? undefined : limits[slot];
    if (slot === undefined || limit === undefined) return undefined;
    const holders = this.observe(nowMs);
    // Only those waiting for this capacity: the stack's (a team's waiters wait for their team's,
    // §9.4), or this team's (the stack's waiters wait for the stack's slots, not the team's).
    const { team } = this.sources;
    const scope = team === undefined ? undefined : teamScope(team);
    const waiters = (await this.sources.waiters({ fresh: false, nowMs })).filter((w) =>
      scope === undefined ? sharesCapacity(w, []) : w.scope === scope,
    );
    const self: GlobalWaiter = { ...me, limit: slot };
    const order = priorityOrder(
      [...waiters.filter((w) => w.userId !== me.userId), self],
      nowMs,
      this.sources.urgentMs,
    );
    const ahead = order.slice(
      0,
      order.findIndex((w) => w.userId === me.userId),
    );
    // It binds while its slots are all held, or others wait in line for them.
    if (holders.length < limit && order.length === 1) return undefined;
    return {
      name: team === undefined ? `global.${slot}` : `team.${slot}`,
      ...(team === undefined ? {} : { team }),
      limit,
      usersAhead: ahead.length,
      requestsAhead: ahead.reduce((sum, w) => sum + Math.max(1, w.queued ?? 1), 0),
      holdersAdmittedAtEpochMs: holders.sort((a, b) => a - b),
      holdMs: this.holdMs,
      turnEveryMs: this.turnEveryMs(nowMs),
    };
  }

  /**
   * The mean time between admissions over the latest seen (three at least). A gap longer than
   * two holds and a hand-over (IDLE_GAP_MS before a hold is seen) is idle capacity, not
   * turnover: while every slot is held, one frees at least once per hold. A request admitted and
   * ended between two views of its shard is not seen: the turnover then looks slower than it is,
   * and the ETA longer.
   */
  private turnEveryMs(nowMs: number): number | undefined {
    this.admissions = this.admissions
      .filter((at) => at > nowMs - TURNOVER_WINDOW_MS)
      .sort((a, b) => a - b)
      .slice(-TURNOVER_SAMPLES);
    const idleMs = this.holdMs === undefined ? IDLE_GAP_MS : 2 * this.holdMs + HAND_OVER_MS;
    const gaps = this.admissions.slice(1).map((at, i) => at - this.admissions[i]!);
    const busy = gaps.filter((gap) => gap <= idleMs);
    const total = busy.reduce((sum, gap) => sum + gap, 0);
    if (busy.length < 2 || total < 1000) return undefined;
    return total / busy.length;
  }

  /** Reads the shards' beliefs: who holds a slot now (admission times), and which holds ended. */
  private observe(nowMs: number): number[] {
    const holders: number[] = [];
    const key = this.sources.key ?? ((k: number) => shardKey(k));
    const views = Array.from({ length: this.sources.limits.shards }, (_, k) => this.sources.belief(key(k)));
    for (const [k, view] of views.entries()) {
      for (const [requestId, lease] of Object.entries(view?.snap.inFlight ?? {})) {
        if (lease <= nowMs) continue;
        const admittedAtMs = lease - this.sources.leaseMs;
        holders.push(admittedAtMs);
        const held = this.watched.get(requestId);
        if (held) held.seenAtMs = Math.max(held.seenAtMs, view!.observedAtMs);
        else {
          this.watched.set(requestId, { shard: k, admittedAtMs, seenAtMs: view!.observedAtMs });
          this.admissions.push(admittedAtMs);
        }
      }
    }
    for (const [requestId, held] of this.watched) {
      const view = views[held.shard];
      // Only a view sent after the one that showed it holding can show it gone.
      if (!view || view.observedAtMs <= held.seenAtMs) continue;
      const lease = view.snap.inFlight?.[requestId];
      if (lease !== undefined && lease > view.observedAtMs) continue;
      this.watched.delete(requestId);
      // Views too far apart (an idle stretch nobody read the shards in) say little: not a sample.
      if (view.observedAtMs - held.seenAtMs > MAX_VIEW_SPACING_MS) continue;
      // Held when a view showed it, gone in a later one: it ended in between (the middle is taken).
      const heldMs = (held.seenAtMs + view.observedAtMs) / 2 - held.admittedAtMs;
      this.holdMs = this.holdMs === undefined ? heldMs : this.holdMs + HOLD_WEIGHT * (heldMs - this.holdMs);
    }
    while (this.watched.size > MAX_WATCHED) this.watched.delete(this.watched.keys().next().value!);
    return holders;
  }
}
