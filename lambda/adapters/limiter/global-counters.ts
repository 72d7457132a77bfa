import {
  ConditionalCheckFailedException,
  type DynamoDBClient,
  GetItemCommand,
  UpdateItemCommand,
} from '@aws-sdk/client-dynamodb';
import { marshall, unmarshall } from '@aws-sdk/util-dynamodb';
import { ExpressionWriter } from '../../core/limiter/expression';
import {
  GLOBAL_WAITING_KEY,
  type GlobalAsk,
  type GlobalLimit,
  type GlobalLimitState,
  type GlobalLimits,
  type GlobalReservation,
  type GlobalWaiter,
  globalRetryAfterMs,
  globalTotals,
  planGlobalAdmission,
  planGlobalRelease,
  priorityOrder,
  roomIn,
  shardKey,
  shareOf,
  WAITER_PREFIX,
  WAITER_STALE_MS,
  waitersFromItem,
  waiterValue,
} from '../../core/limiter/global';
import type { LimiterSnapshot } from '../../core/limiter/snapshot';
import { dayNumber, hourNumber } from '../../core/limiter/windows';
import { usdToMicroUsd } from '../../core/models';
import { LimiterStoreError } from './errors';
import { UNKNOWN, type UserItems } from './user-items';

export type GlobalAdmission =
  | {
      readonly ok: true;
      readonly taken: GlobalReservation;
      /** How full the shard's share of the daily cost limit is now (%), when there is one. */
      readonly costPercent?: number;
    }
  | { readonly ok: false; readonly limit: GlobalLimit; readonly retryAfterMs: number };

/** How long this instance trusts its view of who waits for global capacity (priority only). */
const WAITERS_TTL_MS = 1000;

/**
 * The global counters on DynamoDB: `shards` items of the limits table, each holding its share of
 * every global limit (lambda/core/limiter/global.ts), and the item where users held back by them
 * wait for their turn. A decision writes one shard; the settle gives back to the same one.
 */
export class GlobalCounters {
  private waitersSeen: { readonly at: number; readonly waiters: GlobalWaiter[] } | undefined;
  private waitersLoading: Promise<GlobalWaiter[]> | undefined;
  private refreshing: { readonly sentAtMs: number; readonly done: Promise<void> } | undefined;

  constructor(
    private readonly items: UserItems,
    private readonly client: DynamoDBClient,
    private readonly tableName: string,
    readonly limits: GlobalLimits,
    private readonly waitersTtlMs = WAITERS_TTL_MS,
  ) {}

  /**
   * Takes the ask from one shard with room: the one this instance believes emptiest (at random
   * among the nearly emptiest, so instances spread their writes). A shard that turns out full (its
   * condition fails, and the item it returned says why) sends the request to the next; refused
   * only when every shard, as seen after the request arrived, lacks room — the shards seen before it
   * are read again first (in parallel).
   */
  async admit(ask: GlobalAsk, nowMs: number, arrivedAtMs: number): Promise<GlobalAdmission> {
    const { shards } = this.limits;
    const keys = Array.from({ length: shards }, (_, k) => shardKey(k));
    for (let round = 0; round < 2 * shards + 2; round++) {
      const rooms = keys.map((key, k) =>
        roomIn(this.limits, k, (this.items.belief(key) ?? UNKNOWN).snap, ask, nowMs),
      );
      const open = rooms.filter((r) => !r.blocking);
      if (open.length === 0) {
        const stale = keys.filter(
          (key) => (this.items.belief(key)?.observedAtMs ?? Number.NEGATIVE_INFINITY) < arrivedAtMs,
        );
        if (stale.length === 0) {
          const limit = rooms[0]!.blocking!;
          return { ok: false, limit, retryAfterMs: globalRetryAfterMs(limit, nowMs) };
        }
        await this.refreshShards(keys, arrivedAtMs);
        continue;
      }
      const best = Math.max(...open.map((r) => r.free));
      const near = open.filter((r) => r.free >= best / 2);
      const { shard } = near[Math.floor(Math.random() * near.length)]!;
      const key = shardKey(shard);
      const belief = (this.items.belief(key) ?? UNKNOWN).snap;
      const result = await this.items.write(
        key,
        planGlobalAdmission({ limits: this.limits, shard, belief, ask, nowMs }),
      );
      if (result.ok) {
        const costLimit = this.limits.dailyCostUsd;
        const share = costLimit === undefined ? 0 : shareOf(usdToMicroUsd(costLimit), shards, shard);
        const usedNow = result.snap.cd === dayNumber(nowMs) ? (result.snap.cu ?? 0) : 0;
        return {
          ok: true,
          ...(share > 0 ? { costPercent: (100 * usedNow) / share } : {}),
          taken: {
            shard,
            tokens: ask.tokens,
            costMicroUsd: ask.costMicroUsd,
            weight: ask.weight,
            hour: hourNumber(nowMs),
            day: dayNumber(nowMs),
          },
        };
      }
    }
    throw new LimiterStoreError('global shards stayed contended');
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

  /** Gives back what a request took from its shard (see planGlobalRelease). */
  async release(
    requestId: string,
    taken: GlobalReservation,
    refund: { readonly tokens: number; readonly costMicroUsd: number },
    undo: boolean,
  ): Promise<void> {
    const key = shardKey(taken.shard);
    await this.items.withRetries(async () => {
      for (let round = 0; round < 8; round++) {
        // A belief that does not show this request's admission is older than it: read first.
        const known = this.items.belief(key)?.snap;
        const belief =
          known && reflects(known, requestId, taken, this.limits) ? known : await this.items.read(key);
        const plan = planGlobalRelease({
          belief,
          requestId,
          taken,
          refund,
          undo,
          inFlight: this.limits.requestsInFlight !== undefined,
        });
        // Nothing held there any more (a lapsed slot, a window rolled over): no call.
        if (!plan) return;
        const result = await this.items.write(key, plan);
        if (result.ok) return;
      }
      throw new LimiterStoreError(`global release of ${requestId} did not land`);
    });
  }

  /** Every global limit's total over the shards (one read per shard, in parallel). */
  async totals(nowMs: number): Promise<GlobalLimitState[]> {
    const keys = Array.from({ length: this.limits.shards }, (_, k) => shardKey(k));
    const snaps = await this.items.withRetries(() => this.items.readMany(keys));
    return globalTotals(this.limits, [...snaps.values()], nowMs);
  }

  /** Who waits for global capacity: read fresh, or (`fresh: false`) as seen within the last second. */
  async waiters(options: { readonly fresh: boolean; readonly nowMs: number }): Promise<GlobalWaiter[]> {
    const now = this.items.clock();
    const live = (ws: GlobalWaiter[]) =>
      ws.filter(
        (w) =>
          w.deadlineEpochMs > options.nowMs &&
          (w.seenAtEpochMs === undefined || w.seenAtEpochMs > options.nowMs - WAITER_STALE_MS),
      );
    if (!options.fresh && this.waitersSeen && now - this.waitersSeen.at < this.waitersTtlMs) {
      return live(this.waitersSeen.waiters);
    }
    // One read at a time serves every decision of this instance that needs it.
    this.waitersLoading ??= this.readWaiters(now).finally(() => {
      this.waitersLoading = undefined;
    });
    const waiters = await this.waitersLoading;
    return live(waiters);
  }

  private async readWaiters(now: number): Promise<GlobalWaiter[]> {
    const { Item } = await this.client.send(
      new GetItemCommand({
        TableName: this.tableName,
        Key: marshall({ pk: GLOBAL_WAITING_KEY }),
        ConsistentRead: true,
      }),
      // The same per-call timeout as every limiter call: a hung read never holds a decision.
      { abortSignal: AbortSignal.timeout(this.items.timeoutMs) },
    );
    const waiters = waitersFromItem(Item ? unmarshall(Item) : undefined);
    this.waitersSeen = { at: now, waiters };
    return waiters;
  }

  /** Puts (or refreshes) the user's entry among the waiters. */
  async register(waiter: GlobalWaiter): Promise<void> {
    const w = new ExpressionWriter();
    w.set(`${w.name(`${WAITER_PREFIX}${waiter.userId}`)} = ${w.value(waiterValue(waiter))}`);
    await this.update(w);
    this.waitersSeen = undefined;
  }

  /** Takes the user's entry out (its head got its turn, or it has nothing waiting). */
  async unregister(userId: string): Promise<void> {
    const w = new ExpressionWriter();
    w.remove(w.name(`${WAITER_PREFIX}${userId}`));
    await this.update(w);
    this.waitersSeen = undefined;
  }

  /**
   * Drops the line's entries whose waiter stopped looking (not refreshed for WAITER_STALE_MS) or
   * whose deadline passed — the sweep's upkeep of a shared list. Each removal is conditioned on
   * the entry's `s` (last seen) being the one read: a waiter that looked again meanwhile stays.
   */
  async prune(nowMs: number): Promise<number> {
    const stale = (await this.readWaiters(this.items.clock())).filter(
      (w) =>
        w.deadlineEpochMs <= nowMs ||
        (w.seenAtEpochMs !== undefined && w.seenAtEpochMs <= nowMs - WAITER_STALE_MS),
    );
    if (stale.length === 0) return 0;
    const w = new ExpressionWriter();
    for (const waiter of stale) {
      const entry = w.name(`${WAITER_PREFIX}${waiter.userId}`);
      const seen = waiter.seenAtEpochMs;
      w.condition(
        seen === undefined ? `attribute_exists(${entry})` : `${entry}.${w.name('s')} = ${w.value(seen)}`,
      );
      w.remove(entry);
    }
    const plan = w.build();
    try {
      await this.client.send(
        new UpdateItemCommand({
          TableName: this.tableName,
          Key: marshall({ pk: GLOBAL_WAITING_KEY }),
          UpdateExpression: plan.update,
          ConditionExpression: plan.condition,
          ExpressionAttributeNames: plan.names,
          ExpressionAttributeValues: Object.keys(plan.values).length ? marshall(plan.values) : undefined,
        }),
        { abortSignal: AbortSignal.timeout(this.items.timeoutMs) },
      );
    } catch (err) {
      // A waiter looked again since the read: the next sweep prunes the rest.
      if (err instanceof ConditionalCheckFailedException) return 0;
      throw err;
    }
    this.waitersSeen = undefined;
    return stale.length;
  }

  /** The first in line with a parked wake-up, to be woken when capacity frees. */
  async nextInLine(nowMs: number, urgentMs: number): Promise<GlobalWaiter | undefined> {
    const waiters = await this.waiters({ fresh: false, nowMs });
    return priorityOrder(waiters, nowMs, urgentMs).find((w) => w.wakeUp !== undefined);
  }

  private async update(w: ExpressionWriter): Promise<void> {
    const plan = w.build();
    await this.client.send(
      new UpdateItemCommand({
        TableName: this.tableName,
        Key: marshall({ pk: GLOBAL_WAITING_KEY }),
        UpdateExpression: plan.update,
        ExpressionAttributeNames: plan.names,
        ExpressionAttributeValues: Object.keys(plan.values).length ? marshall(plan.values) : undefined,
      }),
      { abortSignal: AbortSignal.timeout(this.items.timeoutMs) },
    );
  }
}

/** Does a shard belief show what the admission of `requestId` wrote (so it is not older)? */
function reflects(
  snap: LimiterSnapshot,
  requestId: string,
  taken: GlobalReservation,
  limits: GlobalLimits,
): boolean {
  if (limits.requestsInFlight !== undefined && snap.inFlight?.[requestId] === undefined) return false;
  const seen = (window: number | undefined, counted: number) => window !== undefined && window >= counted;
  if (limits.hourlyMessages !== undefined && !seen(snap.hw, taken.hour)) return false;
  if (limits.dailyTokens !== undefined && !seen(snap.td, taken.day)) return false;
  if (limits.dailyCostUsd !== undefined && !seen(snap.cd, taken.day)) return false;
  return true;
}
