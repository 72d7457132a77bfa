import {
  ConditionalCheckFailedException,
  type DynamoDBClient,
  GetItemCommand,
  UpdateItemCommand,
} from '@aws-sdk/client-dynamodb';
import { marshall, unmarshall } from '@aws-sdk/util-dynamodb';
import { describeError } from '../../core/errors';
import type { StoreBreaker } from '../../core/limiter/breaker';
import type { UpdatePlan } from '../../core/limiter/expression';
import { snapshotFromItem } from '../../core/limiter/item/codec';
import { EMPTY_SNAPSHOT, type LimiterSnapshot } from '../../core/limiter/item/state';
import {
  type Belief,
  MAX_CONTENTION_ROUNDS,
  MAX_TRANSIENT_RETRIES,
  type UpdateStep,
  type WriteResult,
} from './beliefs';
import { classifyStoreError, mayHaveLanded } from './classify';
import {
  LimiterBusyError,
  LimiterStoreError,
  LimiterUnavailableError,
  StoreFaultError,
  StoreThrottledError,
} from './errors';

export { describeError } from '../../core/errors';
export {
  type Belief,
  MAX_CONTENTION_ROUNDS,
  MAX_TRANSIENT_RETRIES,
  UNKNOWN,
  type UpdateStep,
  type WriteResult,
} from './beliefs';
export { classifyStoreError } from './classify';

export interface UserItemsOptions {
  readonly client: DynamoDBClient;
  readonly tableName: string;
  readonly breaker: StoreBreaker;
  /** Per-call timeout. @default 2000 */
  readonly timeoutMs?: number;
  /** Users whose last known item is kept. @default 10_000 */
  readonly cacheSize?: number;
  readonly clock?: () => number;
  /** Jitter of the retry backoff, in [0, 1). @default Math.random */
  readonly random?: () => number;
  /** Waits between retries. @default a timer */
  readonly sleep?: (ms: number) => Promise<void>;
}

/**
 * The limiter table as the limiter sees it: one item per subject, read and written by key, with
 * this instance's belief of each item kept for planning, every call watched by the breaker, and
 * every error sorted into an answer (condition failed, throttled) or a fault (no answer).
 *
 * Operations on one user's item are run one after the other in a *lane*: within an instance,
 * concurrent frames of one user then never race each other's conditions, and each plans from the
 * item as the previous one left it. (In AWS an instance serves one invocation at a time, so lanes
 * only matter where one process serves many, as locally; exactness never depends on them: every
 * write's condition does.)
 */
export class UserItems {
  private readonly client: DynamoDBClient;
  private readonly tableName: string;
  private readonly breaker: StoreBreaker;
  readonly timeoutMs: number;
  private readonly cacheSize: number;
  readonly clock: () => number;
  readonly random: () => number;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly beliefs = new Map<string, Belief>();
  private probing: Promise<void> | undefined;
  private readonly lanes = new Map<string, Promise<unknown>>();

  constructor(options: UserItemsOptions) {
    this.client = options.client;
    this.tableName = options.tableName;
    this.breaker = options.breaker;
    this.timeoutMs = options.timeoutMs ?? 2000;
    this.cacheSize = options.cacheSize ?? 10_000;
    this.clock = options.clock ?? Date.now;
    this.random = options.random ?? Math.random;
    this.sleep = options.sleep ?? sleep;
  }

  /** `lane(withRetries(operation))`: one operation on a user's item, in its lane, with retries. */
  run<T>(key: string, operation: () => Promise<T>, retries = MAX_TRANSIENT_RETRIES): Promise<T> {
    return this.lane(key, () => this.withRetries(operation, retries));
  }

  /**
   * read → plan → write in the key's lane with retries: `step` plans from the item (`start`: read
   * fresh, the belief if any, or nothing), and a failed condition plans again from the item it
   * returned, for at most MAX_CONTENTION_ROUNDS rounds; then `busy` (`what` says which contention).
   */
  update<T>(
    key: string,
    start: 'read' | 'belief' | 'none',
    step: (snap: LimiterSnapshot) => UpdateStep<T>,
    what = 'contention outlasted every round',
  ): Promise<T> {
    return this.run(key, async () => {
      let snap =
        start === 'read'
          ? await this.read(key)
          : start === 'belief'
            ? (this.belief(key)?.snap ?? (await this.read(key)))
            : EMPTY_SNAPSHOT;
      for (let round = 0; round < MAX_CONTENTION_ROUNDS; round++) {
        const next = step(snap);
        if ('done' in next) return next.done;
        const result = await this.write(key, next.plan);
        const answer = next.after(result);
        if (answer !== undefined) return answer;
        snap = result.snap;
      }
      throw new LimiterBusyError({ cause: new LimiterStoreError(what) });
    });
  }

  /** Runs `work` after every earlier operation of this key on this instance has finished. */
  lane<T>(key: string, work: () => Promise<T>): Promise<T> {
    const previous = this.lanes.get(key) ?? Promise.resolve();
    const run = previous.then(work, work);
    const tail = run.then(
      () => undefined,
      () => undefined,
    );
    this.lanes.set(key, tail);
    void tail.then(() => {
      if (this.lanes.get(key) === tail) this.lanes.delete(key);
    });
    return run;
  }

  belief(key: string): Belief | undefined {
    return this.beliefs.get(key);
  }

  forget(key: string): void {
    this.beliefs.delete(key);
  }

  /** A consistent read of the item; becomes the belief. */
  async read(key: string): Promise<LimiterSnapshot> {
    const sentAtMs = this.clock();
    const { Item } = await this.call(() =>
      this.client.send(
        new GetItemCommand({ TableName: this.tableName, Key: marshall({ pk: key }), ConsistentRead: true }),
        { abortSignal: AbortSignal.timeout(this.timeoutMs) },
      ),
    );
    return this.remember(key, snapshotFromItem(Item ? unmarshall(Item) : undefined), sentAtMs);
  }

  /**
   * Consistent reads of several items, in parallel (GetItem each: no function is granted a batch
   * read, which could reach any item of the table); each becomes its belief.
   */
  async readMany(keys: readonly string[]): Promise<Map<string, LimiterSnapshot>> {
    const snaps = await Promise.all(keys.map((key) => this.read(key)));
    return new Map(keys.map((key, i) => [key, snaps[i]!] as const));
  }

  /**
   * One conditional UpdateItem. On success the new item becomes the belief; on a failed condition
   * the item as it is does (real DynamoDB returns it with the failure; emulators may not, and then
   * it is read). Faults and throttling throw {@link StoreFaultError} / {@link StoreThrottledError}.
   */
  async write(key: string, plan: UpdatePlan): Promise<WriteResult> {
    const sentAtMs = this.clock();
    try {
      const { Attributes } = await this.call(() =>
        this.client.send(
          new UpdateItemCommand({
            TableName: this.tableName,
            Key: marshall({ pk: key }),
            UpdateExpression: plan.update,
            ConditionExpression: plan.condition || undefined,
            ExpressionAttributeNames: plan.names,
            ExpressionAttributeValues: Object.keys(plan.values).length
              ? marshall(plan.values, { removeUndefinedValues: true, convertClassInstanceToMap: true })
              : undefined,
            ReturnValues: 'ALL_NEW',
            ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
          }),
          { abortSignal: AbortSignal.timeout(this.timeoutMs) },
        ),
      );
      return { ok: true, snap: this.remember(key, snapshotFromItem(unmarshall(Attributes ?? {})), sentAtMs) };
    } catch (err) {
      if (!(err instanceof ConditionalCheckFailedException)) throw err;
      const snap = err.Item
        ? this.remember(key, snapshotFromItem(unmarshall(err.Item)), sentAtMs)
        : await this.read(key);
      return { ok: false, snap };
    }
  }

  /**
   * Runs one operation on a user's item with bounded retries for what is transient on one item
   * (throttling, a fault while the breaker stays closed), with jittered backoff. When they run out
   * it throws {@link LimiterBusyError}; when the breaker is open, {@link LimiterUnavailableError}.
   * `retries`: how many tries after the first (fewer for an item just found busy).
   */
  async withRetries<T>(operation: () => Promise<T>, retries = MAX_TRANSIENT_RETRIES): Promise<T> {
    let lastError: unknown;
    for (let attempt = 0; attempt <= retries; attempt++) {
      if (attempt > 0) await this.sleep(backoffMs(attempt, this.random));
      try {
        return await operation();
      } catch (err) {
        if (err instanceof StoreThrottledError || err instanceof StoreFaultError) {
          if (this.breaker.state === 'open') throw new LimiterUnavailableError({ cause: err });
          lastError = err;
          continue;
        }
        throw err;
      }
    }
    throw new LimiterBusyError({ cause: lastError });
  }

  /**
   * Sends one call through the breaker and sorts what came back (also used for the global line
   * item, whose calls are limiter calls like any other).
   */
  async call<T>(send: () => Promise<T>): Promise<T> {
    if (!this.breaker.allowsCall()) throw new LimiterUnavailableError();
    try {
      const result = await send();
      this.breaker.recordAnswer();
      return result;
    } catch (err) {
      const kind = classifyStoreError(err);
      if (kind === 'fault') {
        if (this.breaker.recordFault()) await this.probeOtherItem(describeError(err));
        throw new StoreFaultError(describeError(err), { cause: err, mayHaveLanded: mayHaveLanded(err) });
      }
      this.breaker.recordAnswer();
      if (kind === 'throttled') throw new StoreThrottledError(describeError(err), { cause: err });
      throw err;
    }
  }

  /**
   * Before the breaker opens: does the store answer for an item no user writes? If it does, only
   * some items are slow (a hot user), and nothing may fail open; if not, the store is down.
   */
  private probeOtherItem(cause: string): Promise<void> {
    this.probing ??= this.client
      .send(
        new GetItemCommand({
          TableName: this.tableName,
          Key: marshall({ pk: PROBE_KEY }),
          ConsistentRead: true,
        }),
        { abortSignal: AbortSignal.timeout(this.timeoutMs) },
      )
      .then(
        () => this.breaker.recordAnswer(),
        (err) => {
          if (classifyStoreError(err) === 'fault') this.breaker.open(cause);
          else this.breaker.recordAnswer();
        },
      )
      .finally(() => {
        this.probing = undefined;
      });
    return this.probing;
  }

  private remember(key: string, snap: LimiterSnapshot, observedAtMs: number): LimiterSnapshot {
    const known = this.beliefs.get(key);
    // Keep the later observation: a slow read sent before a write must not undo what it taught.
    if (known && known.observedAtMs > observedAtMs) return snap;
    this.beliefs.delete(key);
    this.beliefs.set(key, { snap, observedAtMs });
    if (this.beliefs.size > this.cacheSize) this.beliefs.delete(this.beliefs.keys().next().value!);
    return snap;
  }
}

/** The item the breaker reads to tell one slow item from a store that is down (never written). */
export const PROBE_KEY = 'breaker#probe';

function backoffMs(attempt: number, random: () => number): number {
  // Full jitter on 25, 50, 100 ms: contenders spread out, and a burst's retries stay short.
  return random() * 25 * 2 ** (attempt - 1);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
