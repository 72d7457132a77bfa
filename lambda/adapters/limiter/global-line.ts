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
  type LineView,
  lineFromItem,
  planLineWrite,
  waitersFromLine,
} from '../../core/limiter/global/line';
import { type GlobalWaiter, priorityOrder } from '../../core/limiter/global/priority';
import { LimiterBusyError, LimiterStoreError, StoreFaultError, StoreThrottledError } from './errors';
import type { UserItems } from './user-items';

/** How long this instance trusts its view of who waits for global capacity (priority only). */
export const WAITERS_TTL_MS = 1000;

/** Rounds of plan-write-fail on the line item: each failed condition brings the item as it is. */
const LINE_ROUNDS = 8;

/**
 * The item where users held back by a global limit wait for their turn (SPEC §2 v2), as this
 * instance sees it: read once for every decision that needs it, trusted for `waitersTtlMs`, and
 * written with conditions on what each write changes.
 */
export class GlobalLine {
  /** The line as last seen (a read, or a write's answer), and the send time of that call. */
  private line: { readonly at: number; readonly view: LineView } | undefined;
  private lineLoading: Promise<LineView> | undefined;
  /** When a read of the line last got no answer: direct requests do without it for a while. */
  private lineFailedAt: number | undefined;

  constructor(
    private readonly items: UserItems,
    private readonly client: DynamoDBClient,
    private readonly tableName: string,
    private readonly waitersTtlMs = WAITERS_TTL_MS,
    private readonly onError?: (operation: string, cause: string) => void,
  ) {}

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
