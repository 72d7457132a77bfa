import {
  type AttributeValue,
  ConditionalCheckFailedException,
  type DynamoDBClient,
  QueryCommand,
  UpdateItemCommand,
} from '@aws-sdk/client-dynamodb';
import { marshall, unmarshall } from '@aws-sdk/util-dynamodb';
import { describeError } from '../../core/errors';
import type { UpdatePlan } from '../../core/limiter/expression';
import {
  EMPTY_LINE,
  LINE_INDEX,
  LINE_MAX_PAGES,
  LINE_READ_LIMIT,
  type LinePart,
  type LineView,
  lineKey,
  linePartitions,
  lineWith,
  lineWithout,
  mayBeInLine,
  planLineEntry,
  planLineLeave,
  waiterFromItem,
  waitersFromLine,
} from '../../core/limiter/global/line';
import {
  type GlobalWaiter,
  isLiveWaiter,
  priorityOrder,
  sharesCapacity,
} from '../../core/limiter/global/priority';
import { KEY_ATTR, LINE_ORDER_ATTR, LINE_PARTITION_ATTR } from '../../core/limiter/item/attributes';
import { StoreFaultError, StoreThrottledError } from './errors';
import type { UserItems } from './user-items';

/** How long this instance trusts its view of who waits for global capacity (priority only). */
export const WAITERS_TTL_MS = 1000;

/** Entries the sweep looks at from the head of each bucket (dead ones past it end by TTL). */
const PRUNE_DEPTH = 200;
/** Removals the sweep keeps in flight at once. */
const PRUNE_AT_ONCE = 16;
/** A waiter woken by this instance is not woken again by it for this long (it looks within it). */
const WOKEN_MS = 5000;

/**
 * The line of users held back by a global limit (SPEC §2 v2; lambda/core/limiter/global/line.ts),
 * as this instance sees it: the head of each bucket, read once for every decision that
 * needs it and trusted for `waitersTtlMs`; each waiter writes only its own item.
 *
 * The index is eventually consistent (a GSI has no consistent read). A read may miss a waiter
 * that joined within the index's lag (typically well under a second), or still show one that just
 * left. The first lets a request go before a waiter that ranks before it — by the same margin as
 * the second this instance already trusts its view for, and only for a waiter that was refused
 * capacity a moment before; the second makes a request wait behind someone already gone for one
 * more look (its next in a second or a few). Neither holds anyone past its deadline: an entry
 * near its deadline is placed first in its bucket by its own look, written well before its deadline.
 */
export class GlobalLine {
  /** The line as last seen (a read, patched by this instance's own writes), and the read's send time. */
  private line: { readonly at: number; readonly view: LineView } | undefined;
  private lineLoading: Promise<LineView> | undefined;
  /** When a read of the line last got no answer: direct requests do without it for a while. */
  private lineFailedAt: number | undefined;
  /** The wake-ups (receipt handles) this instance released, and when (nextInLine). */
  private readonly woken = new Map<string, number>();

  constructor(
    private readonly items: UserItems,
    private readonly client: DynamoDBClient,
    private readonly tableName: string,
    private readonly waitersTtlMs = WAITERS_TTL_MS,
    private readonly onError?: (operation: string, cause: string) => void,
  ) {}

  /**
   * Who waits for global capacity (the head of every bucket): read fresh (a queued request's
   * turn), or (`fresh: false`, a direct request) as seen within the last second. A direct request
   * does without the line when it does not answer (throttled, timed out): priority is then this
   * instance's last view of it (for a second, before it asks again), while the counts stay exact
   * (the shards decide them). A queued request's read is retried like any limiter call and else
   * refused as busy.
   */
  async waiters(options: { readonly fresh: boolean; readonly nowMs: number }): Promise<GlobalWaiter[]> {
    const now = this.items.clock();
    const recent = (at: number | undefined) => at !== undefined && now - at < this.waitersTtlMs;
    if (!options.fresh && (recent(this.line?.at) || recent(this.lineFailedAt))) {
      return this.line ? waitersFromLine(this.line.view, options.nowMs) : [];
    }
    try {
      return waitersFromLine(await this.loadLine(options.nowMs), options.nowMs);
    } catch (err) {
      if (options.fresh || !(err instanceof StoreFaultError || err instanceof StoreThrottledError)) throw err;
      this.lineFailedAt = now;
      this.onError?.('line', describeError(err));
      return this.line ? waitersFromLine(this.line.view, options.nowMs) : [];
    }
  }

  /** Whether the user may have an entry, as this instance last saw the line (see mayBeInLine). */
  mayBeInLine(w: Pick<GlobalWaiter, 'tier' | 'userId' | 'enqueuedAtEpochMs' | 'deadlineEpochMs'>): boolean {
    return mayBeInLine(this.line?.view ?? EMPTY_LINE, w);
  }

  /** One read at a time serves every decision of this instance that needs it. */
  private loadLine(nowMs: number): Promise<LineView> {
    this.lineLoading ??= this.readLine(nowMs).finally(() => {
      this.lineLoading = undefined;
    });
    return this.lineLoading;
  }

  /** The head of every bucket, read in parallel (one Query each, more past dead entries). */
  private async readLine(nowMs: number): Promise<LineView> {
    const sentAt = this.items.clock();
    const parts = await Promise.all(linePartitions().map((p) => this.readPart(p, nowMs)));
    const view = { parts };
    if (!this.line || this.line.at <= sentAt) this.line = { at: sentAt, view };
    return view;
  }

  /**
   * A bucket's head: LINE_READ_LIMIT entries, then larger pages while fewer than that are live
   * (waiters that stopped looking, not pruned yet), at most LINE_MAX_PAGES. Past that the rest of
   * the bucket is not seen this time: those waiters lose their place for a look, and block no one.
   */
  private async readPart(partition: string, nowMs: number): Promise<LinePart> {
    const entries: GlobalWaiter[] = [];
    let start: Record<string, AttributeValue> | undefined;
    for (let page = 0; page < LINE_MAX_PAGES; page++) {
      const out = await this.query(partition, page === 0 ? LINE_READ_LIMIT : LINE_READ_LIMIT * 10, start);
      for (const item of out.Items ?? []) {
        const waiter = waiterFromItem(unmarshall(item));
        if (waiter) entries.push(waiter);
      }
      start = out.LastEvaluatedKey;
      if (!start || entries.filter((e) => isLiveWaiter(e, nowMs)).length >= LINE_READ_LIMIT) break;
    }
    const readTo = start?.[LINE_ORDER_ATTR]?.S;
    return { partition, entries, ...(readTo !== undefined ? { readTo } : {}) };
  }

  private query(partition: string, limit: number, start: Record<string, AttributeValue> | undefined) {
    return this.items.call(() =>
      this.client.send(
        new QueryCommand({
          TableName: this.tableName,
          IndexName: LINE_INDEX,
          KeyConditionExpression: '#p = :p',
          ExpressionAttributeNames: { '#p': LINE_PARTITION_ATTR },
          ExpressionAttributeValues: { ':p': { S: partition } },
          Limit: limit,
          ExclusiveStartKey: start,
        }),
        // The same per-call timeout as every limiter call: a hung read never holds a decision.
        { abortSignal: AbortSignal.timeout(this.items.timeoutMs) },
      ),
    );
  }

  /**
   * Puts (or refreshes) the user's own entry (planLineEntry): one write of one small item, whoever
   * else waits. Always listed (there is no cap); returns true.
   */
  async register(waiter: GlobalWaiter, nowMs: number, urgentMs: number): Promise<boolean> {
    const plan = planLineEntry(waiter, nowMs, urgentMs);
    await this.items.withRetries(() => this.write(waiter.userId, plan));
    if (this.line) this.line = { at: this.line.at, view: lineWith(this.line.view, waiter, nowMs, urgentMs) };
    return true;
  }

  /** Takes the user's entry out (its head got its turn, or it has nothing waiting). */
  async unregister(userId: string): Promise<void> {
    await this.items.withRetries(() => this.write(userId, planLineLeave(this.items.clock())));
    if (this.line) this.line = { at: this.line.at, view: lineWithout(this.line.view, userId) };
  }

  /**
   * Takes out the entries no longer live (overdue on their own schedule, or past their deadline)
   * among the first PRUNE_DEPTH of every bucket — where readers look; deeper ones reach the
   * head only as it moves, and end by TTL regardless. The sweep calls it every minute. Each removal
   * is pinned to the entry as seen (planLineLeave): a waiter that looked again meanwhile keeps its
   * entry. Returns whose entries it removed.
   */
  async prune(nowMs: number): Promise<string[]> {
    const stale: GlobalWaiter[] = [];
    for (const partition of linePartitions()) {
      let start: Record<string, AttributeValue> | undefined;
      let seen = 0;
      do {
        const out = await this.items.withRetries(() => this.query(partition, 100, start));
        for (const item of out.Items ?? []) {
          const waiter = waiterFromItem(unmarshall(item));
          if (waiter && !isLiveWaiter(waiter, nowMs)) stale.push(waiter);
        }
        seen += out.Items?.length ?? 0;
        start = out.LastEvaluatedKey;
      } while (start && seen < PRUNE_DEPTH);
    }
    const removed: string[] = [];
    for (let i = 0; i < stale.length; i += PRUNE_AT_ONCE) {
      const done = await Promise.all(
        stale.slice(i, i + PRUNE_AT_ONCE).map((w) => this.removeStale(w, nowMs)),
      );
      removed.push(
        ...stale
          .slice(i, i + PRUNE_AT_ONCE)
          .filter((_, k) => done[k])
          .map((w) => w.userId),
      );
    }
    if (this.line) {
      const view = removed.reduce(lineWithout, this.line.view);
      this.line = { at: this.line.at, view };
    }
    return removed;
  }

  /** Takes an entry out as seen (false: it was written again since, or is out already). */
  private async removeStale(w: GlobalWaiter, nowMs: number): Promise<boolean> {
    const done = await this.items.withRetries(() => this.write(w.userId, planLineLeave(nowMs, w)));
    return done;
  }

  /** One update of a waiter's item; false when its condition failed (planLineLeave's). */
  private async write(userId: string, plan: UpdatePlan): Promise<boolean> {
    try {
      await this.items.call(() =>
        this.client.send(
          new UpdateItemCommand({
            TableName: this.tableName,
            Key: marshall({ [KEY_ATTR]: lineKey(userId) }),
            UpdateExpression: plan.update,
            ConditionExpression: plan.condition || undefined,
            ExpressionAttributeNames: plan.names,
            ExpressionAttributeValues: marshall(plan.values, { removeUndefinedValues: true }),
          }),
          { abortSignal: AbortSignal.timeout(this.items.timeoutMs) },
        ),
      );
      return true;
    } catch (err) {
      if (err instanceof ConditionalCheckFailedException) return false;
      throw err;
    }
  }

  /**
   * The first in line with a parked wake-up, to be woken when capacity frees — passing over the
   * wake-ups this instance released within the last WOKEN_MS (they are looking now), so several slots freed
   * within one view of the line wake several waiters, not one waiter several times; a waiter far
   * back (looking again in a minute) is woken as soon as it is first among the rest.
   */
  async nextInLine(nowMs: number, urgentMs: number): Promise<GlobalWaiter | undefined> {
    return (await this.nextWakeUps(nowMs, urgentMs, 1))[0];
  }

  /**
   * The first `count` in line as {@link nextInLine} picks them: the first is marked woken; the
   * others are whom to wake instead when the first's wake-up is no longer held (its hold ended and
   * it is looking already, under a newer receipt: the view is up to a second old).
   */
  async nextWakeUps(
    nowMs: number,
    urgentMs: number,
    count: number,
    /** Whose capacity was freed (a team's `team:<name>`): only waiters for it, or for the stack's. */
    scopes: readonly string[] = [],
  ): Promise<GlobalWaiter[]> {
    const now = this.items.clock();
    for (const [handle, at] of this.woken) if (now - at >= WOKEN_MS) this.woken.delete(handle);
    // By handle, not by user: a waiter woken that lost the slot to another parks again under a new
    // handle, and is the first to wake when the next slot frees.
    const pick = (waiters: readonly GlobalWaiter[]) =>
      priorityOrder(
        waiters.filter((w) => sharesCapacity(w, scopes)),
        nowMs,
        urgentMs,
      )
        .filter((w) => w.wakeUp !== undefined && !this.woken.has(w.wakeUp))
        .slice(0, count);
    // Whom to wake is read fresh when anyone waits (one Query per bucket, a settle's only read of
    // the line): a view up to a second old misses a waiter that parked again since — under a new
    // handle, or rejoining first in line with its next request — and a wake-up sent to anyone
    // else is refused ("someone goes first") while the slot idles until that waiter's next look,
    // seconds later. A view with nobody waiting is not read again: no cost when the line is empty.
    const seen = await this.waiters({ fresh: false, nowMs });
    if (seen.length === 0) return [];
    const next = pick(await this.waiters({ fresh: true, nowMs }).catch(() => seen));
    if (next[0]?.wakeUp) this.woken.set(next[0].wakeUp, now);
    return next;
  }
}
