import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { shardCostPercent } from '../../core/limiter/decide/global-share';
import type { TokenReservation } from '../../core/limiter/decision';
import {
  type GlobalBound,
  type GlobalLimitState,
  type GlobalLimits,
  globalTotals,
} from '../../core/limiter/global/limits';
import type { GlobalWaiter } from '../../core/limiter/global/priority';
import {
  GLOBAL_SHARD_PREFIX,
  type GlobalAsk,
  holdsShare,
  planGlobalAdmission,
  planGlobalRelease,
  roomIn,
  shardKey,
} from '../../core/limiter/global/shards';
import type { GlobalReservation } from '../../core/limiter/global/share-record';
import type { LimiterSnapshot } from '../../core/limiter/item/state';
import { DAY_MS, hourNumber } from '../../core/limiter/windows';
import { UNKNOWN } from './beliefs';
import { LimiterBusyError, LimiterStoreError, StoreFaultError } from './errors';
import { GlobalLine } from './global-line';
import { GlobalOrphans } from './global-orphans';
import type { UserItems } from './user-items';

export { ORPHAN_MARGIN_MS } from './global-orphans';

export type GlobalAdmission =
  | {
      readonly ok: true;
      readonly taken: GlobalReservation;
      /** How full the shard's share of the daily cost limit is now (%), when there is one. */
      readonly costPercent?: number;
    }
  | { readonly ok: false; readonly limit: GlobalBound; readonly retryAfterMs: number };

/**
 * What one decision holds of a shard, across its rounds and retries: the share, and whether it is
 * only *maybe* held (a write of it got no answer, and the shard has not been read since).
 */
export interface GlobalHold {
  globalHeld?: GlobalReservation;
  globalUnsure?: boolean;
}

export interface GlobalCountersOptions {
  /** How long this instance trusts its view of who waits for global capacity. @default 1000 */
  readonly waitersTtlMs?: number;
  /** Called when the line does not answer a direct request (logs). */
  readonly onError?: (operation: string, cause: string) => void;
  /** Picks among the nearly emptiest shards, in [0, 1). @default Math.random */
  readonly random?: () => number;
  /**
   * Whose shards these are: their key prefix (`global`, or a team's `team#<name>`: one instance
   * per team, SPEC §9.4). @default 'global'
   */
  readonly keyPrefix?: string;
  /** The line to share (the stack's and every team's waiters wait in one). @default a new one */
  readonly line?: GlobalLine;
}

/**
 * The global counters on DynamoDB: `shards` items of the limits table, each holding its share of
 * every global limit (lambda/core/limiter/global/), and the line where users held back by them
 * wait for their turn, one item each ({@link GlobalLine}). A decision writes one shard; the settle gives back to
 * the same one; the sweep gives back what nobody holds ({@link GlobalOrphans}).
 */
export class GlobalCounters {
  private refreshing: { readonly sentAtMs: number; readonly done: Promise<void> } | undefined;
  private readonly random: () => number;
  private readonly line: GlobalLine;
  private readonly orphans: GlobalOrphans;
  /** Shard k's key. */
  readonly key: (k: number) => string;

  constructor(
    private readonly items: UserItems,
    client: DynamoDBClient,
    tableName: string,
    readonly limits: GlobalLimits,
    options: GlobalCountersOptions = {},
  ) {
    this.random = options.random ?? Math.random;
    this.line =
      options.line ?? new GlobalLine(items, client, tableName, options.waitersTtlMs, options.onError);
    const prefix = options.keyPrefix ?? GLOBAL_SHARD_PREFIX;
    this.key = (k) => shardKey(k, prefix);
    this.orphans = new GlobalOrphans(items, client, tableName, limits, this.key);
  }

  /**
   * Takes the ask from one shard with room: the one this instance believes emptiest (at random
   * among the nearly emptiest, so instances spread their writes). A shard that turns out full (its
   * condition fails, and the item it returned says why) sends the request to the next; refused
   * only when every shard, as seen after the request arrived, lacks room — the shards seen before it
   * are read again first (in parallel).
   *
   * A shard write that gets no answer may have landed: the shard is read, and its record of the
   * request (`gr.<id>`, with its `fl.<id>` entry) says whether it did — so a lost answer neither loses the share nor takes a
   * second one. While that is not known (the read failed too), `hold` says the share is maybe held
   * (the caller confirms it, or gives it back, which is harmless if it never landed).
   */
  async admit(
    ask: GlobalAsk,
    nowMs: number,
    arrivedAtMs: number,
    hold: GlobalHold,
  ): Promise<GlobalAdmission> {
    const { shards } = this.limits;
    const keys = Array.from({ length: shards }, (_, k) => this.key(k));
    /** Shards that hold an entry of this request id that is not this decision's (a reused id). */
    const taken = new Set<number>();
    for (let round = 0; round < 2 * shards + 2; round++) {
      const rooms = keys.map((key, k) =>
        roomIn(this.limits, k, (this.items.belief(key) ?? UNKNOWN).snap, ask, nowMs),
      );
      const open = rooms.filter((r) => !r.blocking && !taken.has(r.shard));
      if (open.length === 0) {
        const stale = keys.filter(
          (key, k) =>
            !taken.has(k) && (this.items.belief(key)?.observedAtMs ?? Number.NEGATIVE_INFINITY) < arrivedAtMs,
        );
        if (stale.length === 0) {
          // The shard that may have room soonest says when to try again (a shard already in the
          // next window, seen from a clock behind it, is full until *that* window ends).
          const soonest = rooms
            .filter((r) => r.blocking)
            .reduce<(typeof rooms)[number] | undefined>(
              (a, r) => (a === undefined || r.retryAfterMs! < a.retryAfterMs! ? r : a),
              undefined,
            );
          if (!soonest) break;
          return { ok: false, limit: soonest.blocking!, retryAfterMs: soonest.retryAfterMs! };
        }
        await this.refreshShards(keys, arrivedAtMs);
        continue;
      }
      const best = Math.max(...open.map((r) => r.free));
      const near = open.filter((r) => r.free >= best / 2);
      const { shard } = near[Math.floor(this.random() * near.length)]!;
      const key = this.key(shard);
      const belief = (this.items.belief(key) ?? UNKNOWN).snap;
      const planned = planGlobalAdmission({ limits: this.limits, shard, belief, ask, nowMs });
      hold.globalHeld = planned.taken;
      hold.globalUnsure = true;
      let result: Awaited<ReturnType<UserItems['write']>>;
      try {
        result = await this.items.write(key, planned.plan);
      } catch (err) {
        // An answer (throttling, a refusal): nothing landed.
        if (!(err instanceof StoreFaultError)) {
          hold.globalHeld = undefined;
          hold.globalUnsure = false;
          throw err;
        }
        // No answer: did it land? The shard's record of the request says (a failed read leaves
        // the share "maybe held" for the caller).
        const snap = await this.items.read(key);
        hold.globalUnsure = false;
        if (holdsShare(snap, ask.requestId)) return this.admitted(planned.taken, snap, nowMs);
        hold.globalHeld = undefined;
        continue;
      }
      hold.globalUnsure = false;
      if (result.ok) return this.admitted(planned.taken, result.snap, nowMs);
      hold.globalHeld = undefined;
      // An entry of this request id this decision did not write: an earlier request with the same
      // id still holds it. Not ours to count as taken (nor to give back): another shard.
      if (holdsShare(result.snap, ask.requestId)) taken.add(shard);
    }
    throw new LimiterBusyError({ cause: new LimiterStoreError('global shards stayed contended') });
  }

  private admitted(taken: GlobalReservation, snap: LimiterSnapshot, nowMs: number): GlobalAdmission {
    const costPercent = shardCostPercent(this.limits, taken.shard, snap, nowMs);
    return { ok: true, ...(costPercent !== undefined ? { costPercent } : {}), taken };
  }

  /** Does the shard hold the request's share (a read: after a write of it got no answer)? */
  async holds(requestId: string, shard: number): Promise<boolean> {
    const snap = await this.items.read(this.key(shard));
    return holdsShare(snap, requestId);
  }

  /**
   * The share a request holds, found by the shards' entries (a read of each), for a reservation
   * that does not carry it: its tokens and cost as the reservation says (a cost it does not state
   * is not given back — never more than was taken), counted in the reservation's day.
   */
  async find(reservation: TokenReservation): Promise<GlobalReservation | undefined> {
    const keys = Array.from({ length: this.limits.shards }, (_, k) => this.key(k));
    const snaps = await this.items.withRetries(() => this.items.readMany(keys));
    const shard = keys.findIndex((key) => {
      const snap = snaps.get(key);
      return snap !== undefined && holdsShare(snap, reservation.requestId);
    });
    if (shard < 0) return undefined;
    return {
      shard,
      tokens: reservation.reservedTokens,
      costMicroUsd: reservation.reservedCostMicroUsd ?? 0,
      // Only an undo gives the message back; a settle does not need it.
      weight: 0,
      hour: hourNumber(reservation.dayNumber * DAY_MS),
      day: reservation.dayNumber,
    };
  }

  /**
   * Reads every shard again, once for all the decisions waiting on it: a read already under way
   * that was sent after this request arrived serves it too, so a burst of refusals costs one round
   * of reads, not one per refusal.
   */
  private async refreshShards(keys: readonly string[], arrivedAtMs: number): Promise<void> {
    const running = this.refreshing;
    if (running && running.sentAtMs >= arrivedAtMs) return running.done;
    const sentAtMs = this.items.clock();
    const done = this.items.readMany(keys).then(() => undefined);
    this.refreshing = { sentAtMs, done };
    try {
      await done;
    } finally {
      if (this.refreshing?.done === done) this.refreshing = undefined;
    }
  }

  /**
   * Gives back what a request took from its shard (see planGlobalRelease): once, whatever the
   * retries — a release whose answer was lost fails its condition on the retry, and the item it
   * returns shows nothing held any more.
   */
  async release(
    requestId: string,
    taken: GlobalReservation,
    refund: Parameters<typeof planGlobalRelease>[0]['refund'],
    undo: boolean,
  ): Promise<void> {
    const key = this.key(taken.shard);
    await this.items.withRetries(async () => {
      for (let round = 0; round < 8; round++) {
        // A belief without the request's entry is older than its admission (or the entry is gone):
        // read first. Nothing held there (released already, lapsed, never landed): no write.
        const known = this.items.belief(key)?.snap;
        const belief = known && holdsShare(known, requestId) ? known : await this.items.read(key);
        const plan = planGlobalRelease({ belief, requestId, taken, refund, undo });
        if (!plan) return;
        const result = await this.items.write(key, plan);
        if (result.ok) return;
      }
      throw new LimiterStoreError(`global release of ${requestId} did not land`);
    });
  }

  /** Every global limit's total over the shards (one read per shard, in parallel). */
  async totals(nowMs: number): Promise<GlobalLimitState[]> {
    const keys = Array.from({ length: this.limits.shards }, (_, k) => this.key(k));
    const snaps = await this.items.withRetries(() => this.items.readMany(keys));
    return globalTotals(this.limits, [...snaps.values()], nowMs);
  }

  /** Who waits for global capacity (see {@link GlobalLine.waiters}). */
  waiters(options: { readonly fresh: boolean; readonly nowMs: number }): Promise<GlobalWaiter[]> {
    return this.line.waiters(options);
  }

  /** Puts (or refreshes) the user's own entry in the line. */
  register(waiter: GlobalWaiter, nowMs: number, urgentMs: number): Promise<boolean> {
    return this.line.register(waiter, nowMs, urgentMs);
  }

  unregister(userId: string): Promise<void> {
    return this.line.unregister(userId);
  }

  /** Whether the user may have an entry in the line (see {@link GlobalLine.mayBeInLine}). */
  mayBeInLine(w: Pick<GlobalWaiter, 'tier' | 'userId' | 'enqueuedAtEpochMs' | 'deadlineEpochMs'>): boolean {
    return this.line.mayBeInLine(w);
  }

  prune(nowMs: number): Promise<string[]> {
    return this.line.prune(nowMs);
  }

  nextInLine(nowMs: number, urgentMs: number): Promise<GlobalWaiter | undefined> {
    return this.line.nextInLine(nowMs, urgentMs);
  }

  /** The first `count` in line to wake (see {@link GlobalLine.nextWakeUps}). */
  nextWakeUps(nowMs: number, urgentMs: number, count: number): Promise<GlobalWaiter[]> {
    return this.line.nextWakeUps(nowMs, urgentMs, count);
  }

  /** Gives back the shares nothing holds any more (see {@link GlobalOrphans.release}). */
  releaseOrphans(nowMs: number): Promise<{ readonly userId: string; readonly requestId: string }[]> {
    return this.orphans.release(nowMs);
  }
}
