import {
  ConditionalCheckFailedException,
  type DynamoDBClient,
  GetItemCommand,
  UpdateItemCommand,
} from '@aws-sdk/client-dynamodb';
import { marshall, unmarshall } from '@aws-sdk/util-dynamodb';
import { describeError } from '../../core/errors';
import {
  GLOBAL_WAITING_KEY,
  type GlobalAsk,
  type GlobalLimit,
  type GlobalLimitState,
  type GlobalLimits,
  type GlobalReservation,
  type GlobalWaiter,
  globalTotals,
  type LineView,
  lineFromItem,
  planGlobalAdmission,
  planGlobalRelease,
  planLineWrite,
  planOrphanRelease,
  priorityOrder,
  type RecordedShare,
  recordedShares,
  roomIn,
  shardKey,
  shardWindows,
  shareOf,
  waitersFromLine,
} from '../../core/limiter/global';
import {
  type LimiterSnapshot,
  RESERVATION_PREFIX,
  SETTLED_SHARE_PREFIX,
  snapshotFromItem,
} from '../../core/limiter/snapshot';
import type { TokenReservation } from '../../core/limiter/types';
import { DAY_MS, hourNumber } from '../../core/limiter/windows';
import { usdToMicroUsd } from '../../core/models';
import { UNKNOWN } from './beliefs';
import { LimiterBusyError, LimiterStoreError, StoreFaultError, StoreThrottledError } from './errors';
import type { UserItems } from './user-items';

export type GlobalAdmission =
  | {
      readonly ok: true;
      readonly taken: GlobalReservation;
      /** How full the shard's share of the daily cost limit is now (%), when there is one. */
      readonly costPercent?: number;
    }
  | { readonly ok: false; readonly limit: GlobalLimit; readonly retryAfterMs: number };

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
}

/** How long this instance trusts its view of who waits for global capacity (priority only). */
const WAITERS_TTL_MS = 1000;

/**
 * A share is orphaned only this long after its lease ended: every decision and settle of it has
 * long given up by then (their calls time out in seconds), so nothing else will give it back.
 */
export const ORPHAN_MARGIN_MS = 120_000;

/** Rounds of plan-write-fail on the line item: each failed condition brings the item as it is. */
const LINE_ROUNDS = 8;

/**
 * The global counters on DynamoDB: `shards` items of the limits table, each holding its share of
 * every global limit (lambda/core/limiter/global.ts), and the item where users held back by them
 * wait for their turn. A decision writes one shard; the settle gives back to the same one.
 */
export class GlobalCounters {
  /** The line as last seen (a read, or a write's answer), and the send time of that call. */
  private line: { readonly at: number; readonly view: LineView } | undefined;
  private lineLoading: Promise<LineView> | undefined;
  /** When a read of the line last got no answer: direct requests do without it for a while. */
  private lineFailedAt: number | undefined;
  private refreshing: { readonly sentAtMs: number; readonly done: Promise<void> } | undefined;

  private readonly waitersTtlMs: number;
  private readonly onError?: (operation: string, cause: string) => void;
  private readonly random: () => number;

  constructor(
    private readonly items: UserItems,
    private readonly client: DynamoDBClient,
    private readonly tableName: string,
    readonly limits: GlobalLimits,
    options: GlobalCountersOptions = {},
  ) {
    this.waitersTtlMs = options.waitersTtlMs ?? WAITERS_TTL_MS;
    this.onError = options.onError;
    this.random = options.random ?? Math.random;
  }

  /**
   * Takes the ask from one shard with room: the one this instance believes emptiest (at random
   * among the nearly emptiest, so instances spread their writes). A shard that turns out full (its
   * condition fails, and the item it returned says why) sends the request to the next; refused
   * only when every shard, as seen after the request arrived, lacks room — the shards seen before it
   * are read again first (in parallel).
   *
   * A shard write that gets no answer may have landed: the shard is read, and its entry for the
   * request (`fl.<id>`) says whether it did — so a lost answer neither loses the share nor takes a
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
    const keys = Array.from({ length: shards }, (_, k) => shardKey(k));
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
      const key = shardKey(shard);
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
        // No answer: did it land? The shard's entry for the request says (a failed read leaves
        // the share "maybe held" for the caller).
        const snap = await this.items.read(key);
        hold.globalUnsure = false;
        if (snap.inFlight?.[ask.requestId] !== undefined) return this.admitted(planned.taken, snap, nowMs);
        hold.globalHeld = undefined;
        continue;
      }
      hold.globalUnsure = false;
      if (result.ok) return this.admitted(planned.taken, result.snap, nowMs);
      hold.globalHeld = undefined;
      // An entry of this request id this decision did not write: an earlier request with the same
      // id still holds it. Not ours to count as taken (nor to give back): another shard.
      if (result.snap.inFlight?.[ask.requestId] !== undefined) taken.add(shard);
    }
    throw new LimiterBusyError({ cause: new LimiterStoreError('global shards stayed contended') });
  }

  private admitted(taken: GlobalReservation, snap: LimiterSnapshot, nowMs: number): GlobalAdmission {
    const costLimit = this.limits.dailyCostUsd;
    const share =
      costLimit === undefined ? 0 : shareOf(usdToMicroUsd(costLimit), this.limits.shards, taken.shard);
    const usedNow = snap.cd === shardWindows(snap, nowMs).day ? (snap.cu ?? 0) : 0;
    return { ok: true, ...(share > 0 ? { costPercent: (100 * usedNow) / share } : {}), taken };
  }

  /** Does the shard hold the request's share (a read: after a write of it got no answer)? */
  async holds(requestId: string, shard: number): Promise<boolean> {
    const snap = await this.items.read(shardKey(shard));
    return snap.inFlight?.[requestId] !== undefined;
  }

  /**
   * The share a request holds, found by the shards' entries (a read of each), for a reservation
   * that does not carry it: its tokens and cost as the reservation says (a cost it does not state
   * is not given back — never more than was taken), counted in the reservation's day.
   */
  async find(reservation: TokenReservation): Promise<GlobalReservation | undefined> {
    const keys = Array.from({ length: this.limits.shards }, (_, k) => shardKey(k));
    const snaps = await this.items.withRetries(() => this.items.readMany(keys));
    const shard = keys.findIndex((key) => snaps.get(key)?.inFlight?.[reservation.requestId] !== undefined);
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
    refund: { readonly tokens: number; readonly costMicroUsd: number },
    undo: boolean,
  ): Promise<void> {
    const key = shardKey(taken.shard);
    await this.items.withRetries(async () => {
      for (let round = 0; round < 8; round++) {
        // A belief without the request's entry is older than its admission (or the entry is gone):
        // read first. Nothing held there (released already, lapsed, never landed): no write.
        const known = this.items.belief(key)?.snap;
        const belief = known?.inFlight?.[requestId] !== undefined ? known : await this.items.read(key);
        const plan = planGlobalRelease({ belief, requestId, taken, refund, undo });
        if (!plan) return;
        const result = await this.items.write(key, plan);
        if (result.ok) return;
      }
      throw new LimiterStoreError(`global release of ${requestId} did not land`);
    });
  }

  /**
   * Gives back the shares nothing holds any more (SPEC §2 global limits: a share taken once is given
   * back once). Each shard records every share it holds (`ga_<id>`, planGlobalAdmission) until its
   * release; one whose lease ended more than ORPHAN_MARGIN_MS ago is looked up on its user's item:
   * a reservation of it there (`r_<id>`) is the user's, and its settle (or the sweep's repair of
   * the user) releases it — left alone; a settled request's charge (`gs_<id>`) means only the part
   * not charged goes back; neither means the request was never admitted (its decision's outcome was
   * unknown and its undo got no answer), and the whole share goes back, its message too. Each
   * give-back is one write conditioned on the record (planOrphanRelease), so it happens once even
   * with a release or another sweep racing it. Returns the requests given back.
   */
  async releaseOrphans(nowMs: number): Promise<{ readonly userId: string; readonly requestId: string }[]> {
    const released: { readonly userId: string; readonly requestId: string }[] = [];
    for (let k = 0; k < this.limits.shards; k++) {
      const key = shardKey(k);
      const item = await this.items.withRetries(() => this.rawItem(key));
      const lapsed = recordedShares(item).filter((s) => s.leaseUntilEpochMs + ORPHAN_MARGIN_MS <= nowMs);
      for (const share of lapsed) {
        const user = await this.items.withRetries(() => this.rawItem(`user#${share.userId}`));
        if (user?.[`${RESERVATION_PREFIX}${share.requestId}`] !== undefined) continue;
        const charged = chargeOf(user?.[`${SETTLED_SHARE_PREFIX}${share.requestId}`]);
        if (await this.items.withRetries(() => this.giveBackOrphan(key, share, charged))) {
          released.push({ userId: share.userId, requestId: share.requestId });
        }
        if (charged) await this.items.withRetries(() => this.forgetCharge(share));
      }
    }
    return released;
  }

  /** One conditioned write; false when the record is gone (released meanwhile). */
  private async giveBackOrphan(
    key: string,
    share: RecordedShare,
    charged: { readonly tokens: number; readonly costMicroUsd: number } | undefined,
  ): Promise<boolean> {
    for (let round = 0; round < 8; round++) {
      const item = await this.rawItem(key);
      // Released meanwhile (by the request's own release, or another sweep): nothing to give.
      if (!recordedShares(item).some((s) => s.requestId === share.requestId)) return false;
      const belief = snapshotFromItem(item);
      if ((await this.items.write(key, planOrphanRelease({ belief, share, charged }))).ok) return true;
    }
    throw new LimiterStoreError(`orphaned share ${share.requestId} stayed contended`);
  }

  /** The settled charge was used: it goes (only if still there, so no empty item is made). */
  private async forgetCharge(share: RecordedShare): Promise<void> {
    try {
      await this.items.call(() =>
        this.client.send(
          new UpdateItemCommand({
            TableName: this.tableName,
            Key: marshall({ pk: `user#${share.userId}` }),
            UpdateExpression: 'REMOVE #gs',
            ConditionExpression: 'attribute_exists(#gs)',
            ExpressionAttributeNames: { '#gs': `${SETTLED_SHARE_PREFIX}${share.requestId}` },
          }),
          { abortSignal: AbortSignal.timeout(this.items.timeoutMs) },
        ),
      );
    } catch (err) {
      if (!(err instanceof ConditionalCheckFailedException)) throw err;
    }
  }

  /** A consistent read of an item as stored (the snapshot does not keep the share records). */
  private async rawItem(key: string): Promise<Record<string, unknown> | undefined> {
    const { Item } = await this.items.call(() =>
      this.client.send(
        new GetItemCommand({ TableName: this.tableName, Key: marshall({ pk: key }), ConsistentRead: true }),
        { abortSignal: AbortSignal.timeout(this.items.timeoutMs) },
      ),
    );
    return Item ? unmarshall(Item) : undefined;
  }

  /** Every global limit's total over the shards (one read per shard, in parallel). */
  async totals(nowMs: number): Promise<GlobalLimitState[]> {
    const keys = Array.from({ length: this.limits.shards }, (_, k) => shardKey(k));
    const snaps = await this.items.withRetries(() => this.items.readMany(keys));
    return globalTotals(this.limits, [...snaps.values()], nowMs);
  }

  /**
   * Who waits for global capacity: read fresh (a queued request's turn), or (`fresh: false`, a
   * direct request) as seen within the last second. A direct request does without the line when
   * it does not answer (throttled, timed out): priority is then this instance's last view of it
   * (for a second, before it asks again), while the counts stay exact (the shards decide them). A
   * queued request's read is retried like any limiter call and else refused as busy.
   */
  async waiters(options: { readonly fresh: boolean; readonly nowMs: number }): Promise<GlobalWaiter[]> {
    const now = this.items.clock();
    const recent = (at: number | undefined) => at !== undefined && now - at < this.waitersTtlMs;
    if (!options.fresh && (recent(this.line?.at) || recent(this.lineFailedAt))) {
      return this.line ? waitersFromLine(this.line.view, options.nowMs) : [];
    }
    try {
      return waitersFromLine(await this.loadLine(), options.nowMs);
    } catch (err) {
      if (options.fresh || !(err instanceof StoreFaultError || err instanceof StoreThrottledError)) throw err;
      this.lineFailedAt = now;
      this.onError?.('line', describeError(err));
      return this.line ? waitersFromLine(this.line.view, options.nowMs) : [];
    }
  }

  /** One read at a time serves every decision of this instance that needs it. */
  private loadLine(): Promise<LineView> {
    this.lineLoading ??= this.readLine().finally(() => {
      this.lineLoading = undefined;
    });
    return this.lineLoading;
  }

  private async readLine(): Promise<LineView> {
    const sentAt = this.items.clock();
    const { Item } = await this.items.call(() =>
      this.client.send(
        new GetItemCommand({
          TableName: this.tableName,
          Key: marshall({ pk: GLOBAL_WAITING_KEY }),
          ConsistentRead: true,
        }),
        // The same per-call timeout as every limiter call: a hung read never holds a decision.
        { abortSignal: AbortSignal.timeout(this.items.timeoutMs) },
      ),
    );
    return this.rememberLine(lineFromItem(Item ? unmarshall(Item) : undefined), sentAt);
  }

  private rememberLine(view: LineView, at: number): LineView {
    if (!this.line || this.line.at <= at) this.line = { at, view };
    return view;
  }

  /**
   * Puts (or refreshes) the user's entry in the line. `false` when the line is full of waiters
   * that go before it (see planLineWrite): it is not listed, and goes when nobody listed is before it.
   */
  async register(waiter: GlobalWaiter, nowMs: number, urgentMs: number): Promise<boolean> {
    return (await this.writeLine({ join: waiter }, nowMs, urgentMs)).listed;
  }

  /** Takes the user's entry out (its head got its turn, or it has nothing waiting). */
  async unregister(userId: string, nowMs: number, urgentMs: number): Promise<void> {
    await this.writeLine({ leave: userId }, nowMs, urgentMs);
  }

  /**
   * Takes every entry out that is no longer live (overdue on its own schedule, or past its
   * deadline), from a fresh read; the sweep calls it every minute. Returns whose entries it removed.
   */
  async prune(nowMs: number, urgentMs: number): Promise<string[]> {
    const removed: string[] = [];
    await this.items.withRetries(() => this.loadLine());
    // Each write takes out at most MAX_PRUNED_PER_WRITE (a bounded line needs a handful).
    for (let round = 0; round < 10; round++) {
      const write = await this.writeLine({}, nowMs, urgentMs);
      if (write.removed.length === 0) break;
      removed.push(...write.removed);
    }
    return removed;
  }

  /** The first in line with a parked wake-up, to be woken when capacity frees. */
  async nextInLine(nowMs: number, urgentMs: number): Promise<GlobalWaiter | undefined> {
    const waiters = await this.waiters({ fresh: false, nowMs });
    return priorityOrder(waiters, nowMs, urgentMs).find((w) => w.wakeUp !== undefined);
  }

  /**
   * One write to the line (planLineWrite: the change, and the stale entries pruned with it), from
   * the line as this instance saw it within the last second (else read); a failed condition brings
   * the item as it is and the write is planned again. Throttling and faults are retried like any
   * limiter call; a lost answer is harmless (every part is conditioned on what it changes).
   */
  private writeLine(
    change: { readonly join?: GlobalWaiter; readonly leave?: string },
    nowMs: number,
    urgentMs: number,
  ): Promise<{ readonly listed: boolean; readonly removed: readonly string[] }> {
    return this.items.withRetries(async () => {
      const now = this.items.clock();
      let view = this.line && now - this.line.at < this.waitersTtlMs ? this.line.view : await this.loadLine();
      for (let round = 0; round < LINE_ROUNDS; round++) {
        const planned = planLineWrite({ line: view, nowMs, urgentMs, ...change });
        if (!planned) return { listed: false, removed: [] };
        const { plan } = planned;
        const sentAt = this.items.clock();
        try {
          const { Attributes } = await this.items.call(() =>
            this.client.send(
              new UpdateItemCommand({
                TableName: this.tableName,
                Key: marshall({ pk: GLOBAL_WAITING_KEY }),
                UpdateExpression: plan.update,
                ConditionExpression: plan.condition || undefined,
                ExpressionAttributeNames: plan.names,
                ExpressionAttributeValues: marshall(plan.values, { removeUndefinedValues: true }),
                ReturnValues: 'ALL_NEW',
                ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
              }),
              { abortSignal: AbortSignal.timeout(this.items.timeoutMs) },
            ),
          );
          this.rememberLine(lineFromItem(unmarshall(Attributes ?? {})), sentAt);
          return planned;
        } catch (err) {
          if (!(err instanceof ConditionalCheckFailedException)) throw err;
          view = err.Item
            ? this.rememberLine(lineFromItem(unmarshall(err.Item)), sentAt)
            : await this.readLine();
        }
      }
      throw new LimiterBusyError({ cause: new LimiterStoreError('the global line stayed contended') });
    });
  }
}

/** A settled request's charge as its settle left it (`gs_<id>`), if it did. */
function chargeOf(value: unknown): { readonly tokens: number; readonly costMicroUsd: number } | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const { t, c } = value as Record<string, unknown>;
  return { tokens: typeof t === 'number' ? t : 0, costMicroUsd: typeof c === 'number' ? c : 0 };
}
