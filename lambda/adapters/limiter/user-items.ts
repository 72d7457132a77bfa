import {
  ConditionalCheckFailedException,
  type DynamoDBClient,
  GetItemCommand,
  UpdateItemCommand,
} from '@aws-sdk/client-dynamodb';
import { marshall, unmarshall } from '@aws-sdk/util-dynamodb';
import type { StoreBreaker } from '../../core/limiter/breaker';
import type { UpdatePlan } from '../../core/limiter/plan';
import { EMPTY_SNAPSHOT, type LimiterSnapshot, snapshotFromItem } from '../../core/limiter/snapshot';
import { LimiterBusyError, LimiterUnavailableError, StoreFaultError, StoreThrottledError } from './errors';

/** What this instance last saw of a user's item, and when the call that saw it was sent. */
export interface Belief {
  readonly snap: LimiterSnapshot;
  /**
   * Send time of the call that returned it (this instance's clock). The item was in this state at
   * some moment after it, so a decision for a frame that arrived before it may be made from it.
   */
  readonly observedAtMs: number;
}

export type WriteResult =
  | { readonly ok: true; readonly snap: LimiterSnapshot }
  /** The condition failed: nothing moved. `snap` is the item as it is (read if need be). */
  | { readonly ok: false; readonly snap: LimiterSnapshot };

export interface UserItemsOptions {
  readonly client: DynamoDBClient;
  readonly tableName: string;
  readonly breaker: StoreBreaker;
  /** Per-call timeout. @default 2000 */
  readonly timeoutMs?: number;
  /** Users whose last known item is kept. @default 10_000 */
  readonly cacheSize?: number;
  readonly clock?: () => number;
}

/** Retries of one user-item operation hit by throttling or faults before it gives up. */
export const MAX_TRANSIENT_RETRIES = 3;

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
      if (attempt > 0) await sleep(backoffMs(attempt));
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

/** A belief of nothing: plan as for a new item; it is never fresh enough to refuse from. */
export const UNKNOWN: Belief = Object.freeze({
  snap: EMPTY_SNAPSHOT,
  observedAtMs: Number.NEGATIVE_INFINITY,
});

const THROTTLING = new Set([
  'ThrottlingException',
  'ProvisionedThroughputExceededException',
  'RequestLimitExceeded',
  'TooManyRequestsException',
]);
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
]);

/**
 * An answer of the store (`throttled`, or `other`: a refusal such as a validation error) or a
 * `fault` (no answer: a timeout, a broken connection, a 5xx). Conditional-check failures are
 * handled before this by their class.
 */
export function classifyStoreError(err: unknown): 'throttled' | 'fault' | 'other' {
  const e = err as {
    name?: string;
    code?: string;
    $metadata?: { httpStatusCode?: number };
    $fault?: string;
    cause?: unknown;
  };
  if (!e || typeof e !== 'object') return 'fault';
  if (e.name && THROTTLING.has(e.name)) return 'throttled';
  if (e.name === 'AbortError' || e.name === 'TimeoutError') return 'fault';
  if (e.code && NETWORK_CODES.has(e.code)) return 'fault';
  const status = e.$metadata?.httpStatusCode;
  if (status === undefined && e.$fault === undefined) return 'fault'; // never reached the service
  if (status !== undefined && status >= 500) return 'fault';
  if (e.name === 'InternalServerError' || e.name === 'ServiceUnavailable') return 'fault';
  return 'other';
}

/**
 * Connection errors after which a request is taken as never read by the store: refused, reset or
 * broken before an answer, unresolvable. A timeout (`ETIMEDOUT`, or this limiter's own abort) and a
 * 5xx are not among them: the write may have been applied, and the item must tell (issue 20,
 * finding 7). A reset after the store applied a write is possible but rare next to a timeout; it
 * is the one case taken as not landed, so that a store cut off for everyone still gets `busy`
 * refusals until the breaker opens (SPEC §6).
 */
const NEVER_READ_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
]);

function mayHaveLanded(err: unknown): boolean {
  const code = (err as { code?: string } | undefined)?.code;
  return !(code && NEVER_READ_CODES.has(code));
}

export function describeError(err: unknown): string {
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}

function backoffMs(attempt: number): number {
  // Full jitter on 25, 50, 100 ms: contenders spread out, and a burst's retries stay short.
  return Math.random() * 25 * 2 ** (attempt - 1);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
