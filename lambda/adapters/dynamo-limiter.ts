import {
  ConditionalCheckFailedException,
  type DynamoDBClient,
  GetItemCommand,
  UpdateItemCommand,
} from '@aws-sdk/client-dynamodb';
import { marshall, unmarshall } from '@aws-sdk/util-dynamodb';
import { bucketOf, dayNumber, evaluate } from '../core/limiter/evaluate';
import {
  type AdmissionPlan,
  ExpressionWriter,
  POLICY_TTL_SECONDS,
  planAdmission,
  type UpdatePlan,
} from '../core/limiter/plan';
import { effectivePolicy, type TierLimits } from '../core/limiter/policy';
import {
  EMPTY_SNAPSHOT,
  type LimiterSnapshot,
  RESERVATION_PREFIX,
  snapshotFromItem,
  waitingEntry,
} from '../core/limiter/snapshot';
import type {
  AllowedDecision,
  DecideInput,
  Decision,
  DeniedDecision,
  Limiter,
  LimitOverride,
  LimitPolicy,
  ResetScope,
  Tier,
  TokenReservation,
  TokenUsage,
  UserStatus,
} from '../core/limiter/types';

export class LimiterStoreError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'LimiterStoreError';
  }
}

export interface DynamoLimiterOptions {
  readonly client: DynamoDBClient;
  readonly tableName: string;
  readonly tiers: TierLimits;
  /** What a decision does when DynamoDB fails or times out. @default 'open' */
  readonly failPolicy?: 'open' | 'closed';
  /** Per-call timeout of the decision's DynamoDB calls. @default 1000 */
  readonly timeoutMs?: number;
  /** Called when a decision fails open (log and metric). */
  readonly onFailOpen?: (err: unknown) => void;
  /** Users whose last known item is kept for planning. @default 10_000 */
  readonly cacheSize?: number;
}

/** Attempts per decision: each failed condition re-reads, so this only runs out under a storm. */
const MAX_ATTEMPTS = 8;

const userKey = (userId: string) => ({ pk: `user#${userId}` });

/**
 * The limiter on DynamoDB: every limit of a user in one item, every decision one conditional
 * UpdateItem (see docs/limiter.md). Plans are made from the last item this instance saw for the
 * user (a warm cache makes the steady state one call per decision); a failed condition means the
 * belief was stale, so it reads the item and plans again.
 */
export class DynamoLimiter implements Limiter {
  private readonly client: DynamoDBClient;
  private readonly tableName: string;
  private readonly tiers: TierLimits;
  private readonly failPolicy: 'open' | 'closed';
  private readonly timeoutMs: number;
  private readonly onFailOpen?: (err: unknown) => void;
  private readonly cacheSize: number;
  private readonly beliefs = new Map<string, LimiterSnapshot>();

  constructor(options: DynamoLimiterOptions) {
    this.client = options.client;
    this.tableName = options.tableName;
    this.tiers = options.tiers;
    this.failPolicy = options.failPolicy ?? 'open';
    this.timeoutMs = options.timeoutMs ?? 1000;
    this.onFailOpen = options.onFailOpen;
    this.cacheSize = options.cacheSize ?? 10_000;
  }

  async decide(input: DecideInput, nowMs: number): Promise<Decision> {
    try {
      return await this.decideOnStore(input, nowMs);
    } catch (err) {
      // A replay must leave the waiting list in the same write that admits it, so it never
      // fails open: the processor retries it once the store is back.
      if (input.queue?.mode === 'replay') throw err;
      return this.failed(input, err, nowMs);
    }
  }

  private async decideOnStore(input: DecideInput, nowMs: number): Promise<Decision> {
    const mode = input.queue?.mode ?? 'direct';
    let belief = this.beliefs.get(input.userId);
    let fresh = false;
    if (!belief) {
      // Nothing known: plan as for a new user (one call creates the item); if the item exists the
      // conditions fail and the item is read.
      belief = EMPTY_SNAPSHOT;
    }
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const policy = this.policyOf(belief, input.claimTier, nowMs);
      const planned = planAdmission({ policy, belief, ask: input, requestId: input.requestId, mode, nowMs });
      if (planned.kind !== 'write') {
        if (!fresh && planned.kind !== 'already-admitted') {
          belief = await this.read(input.userId);
          fresh = true;
          continue;
        }
        return this.settle(input, planned, belief, policy, nowMs);
      }
      try {
        const item = await this.update(input.userId, planned.plan, 'ALL_NEW');
        const after = this.remember(input.userId, snapshotFromItem(item));
        return this.allowed(input, after, policy, planned.evaluation.reservation!, planned.day, nowMs);
      } catch (err) {
        if (!(err instanceof ConditionalCheckFailedException)) throw err;
        // The belief was stale. Real DynamoDB returns the item with the failure; emulators may not.
        belief = err.Item
          ? this.remember(input.userId, snapshotFromItem(unmarshall(err.Item)))
          : await this.read(input.userId);
        fresh = true;
      }
    }
    throw new LimiterStoreError(`no decision for ${input.userId} after ${MAX_ATTEMPTS} attempts`);
  }

  /** Turns a non-write plan (made from a fresh read) into a decision. */
  private settle(
    input: DecideInput,
    planned: Exclude<AdmissionPlan, { kind: 'write' }>,
    snap: LimiterSnapshot,
    policy: LimitPolicy,
    nowMs: number,
  ): Decision {
    const tier = this.tierOf(snap, input.claimTier);
    if (planned.kind === 'already-admitted') {
      return this.allowed(
        input,
        snap,
        policy,
        {
          inputTokens: planned.inputTokens,
          outputAllowance: planned.outputAllowance,
          reservedTokens: planned.inputTokens + planned.outputAllowance,
        },
        planned.day,
        nowMs,
      );
    }
    const { evaluation } = planned;
    const blocking = evaluation.blocking;
    const denied: DeniedDecision = {
      allowed: false,
      tier,
      policy,
      limit: blocking && planned.kind === 'reject' ? blocking.limit : 'queue',
      retryAfterMs: blocking && planned.kind === 'reject' ? blocking.retryAfterMs : 0,
      resetAtEpochMs: blocking?.resetAtEpochMs ?? nowMs,
      limits: evaluation.limits,
      queued: snap.waiting.length,
    };
    return denied;
  }

  private allowed(
    input: DecideInput,
    snap: LimiterSnapshot,
    policy: LimitPolicy,
    reservation: { inputTokens: number; outputAllowance: number; reservedTokens: number },
    day: number,
    nowMs: number,
  ): AllowedDecision {
    return {
      allowed: true,
      tier: this.tierOf(snap, input.claimTier),
      policy,
      waiting: snap.waiting,
      reservation: { userId: input.userId, requestId: input.requestId, dayNumber: day, ...reservation },
      limits: evaluate(policy, snap, { estimatedInputTokens: 0, maxTokens: policy.minOutputTokens }, nowMs)
        .limits,
      failedOpen: false,
    };
  }

  private failed(input: DecideInput, err: unknown, nowMs: number): Decision {
    const policy = this.policyOf(this.beliefs.get(input.userId) ?? EMPTY_SNAPSHOT, input.claimTier, nowMs);
    const tier = input.claimTier ?? 'free';
    if (this.failPolicy === 'closed') {
      return {
        allowed: false,
        tier,
        policy,
        limit: 'unavailable',
        retryAfterMs: 1000,
        resetAtEpochMs: nowMs + 1000,
        limits: [],
        queued: 0,
      };
    }
    this.onFailOpen?.(err);
    const outputAllowance = input.maxTokens ?? policy.defaultMaxOutputTokens;
    return {
      allowed: true,
      tier,
      policy,
      waiting: [],
      reservation: {
        userId: input.userId,
        requestId: input.requestId,
        dayNumber: dayNumber(nowMs),
        inputTokens: input.estimatedInputTokens,
        outputAllowance,
        reservedTokens: input.estimatedInputTokens + outputAllowance,
      },
      limits: [],
      failedOpen: true,
    };
  }

  async reconcile(
    reservation: TokenReservation,
    usage: TokenUsage,
    nowMs: number,
  ): Promise<{ applied: boolean }> {
    const marker = `${RESERVATION_PREFIX}${reservation.requestId}`;
    const actual = Math.max(0, usage.inputTokens) + Math.max(0, usage.outputTokens);
    const delta = reservation.reservedTokens - actual; // > 0 refund, < 0 charge
    const sameDay = dayNumber(nowMs) === reservation.dayNumber;
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const w = new ExpressionWriter();
      const m = w.name(marker);
      // The marker exists until the first reconcile removes it: a second one changes nothing.
      w.condition(`attribute_exists(${m})`);
      w.remove(m);
      if (sameDay && delta !== 0) {
        const td = w.name('td');
        const tu = w.name('tu');
        w.condition(`${td} = ${w.value(reservation.dayNumber)}`);
        if (delta > 0) {
          w.set(`${tu} = ${tu} - ${w.value(delta)}`);
        } else {
          // Charging more than reserved (the input estimate was low) never takes used past the
          // budget: the condition pins the value we computed the capped charge from.
          const snap =
            attempt === 0 ? this.beliefs.get(reservation.userId) : await this.read(reservation.userId);
          const used = snap?.td === reservation.dayNumber ? (snap.tu ?? 0) : 0;
          const budget = this.policyOf(snap ?? EMPTY_SNAPSHOT, undefined, nowMs).dailyTokens;
          const charge = Math.max(0, Math.min(-delta, budget - used));
          w.condition(`${tu} = ${w.value(used)}`);
          w.set(`${tu} = ${tu} + ${w.value(charge)}`);
        }
      }
      try {
        const item = await this.update(reservation.userId, w.build(), 'ALL_NEW');
        this.remember(reservation.userId, snapshotFromItem(item));
        return { applied: true };
      } catch (err) {
        if (!(err instanceof ConditionalCheckFailedException)) throw err;
        const snap = await this.read(reservation.userId);
        if (!snap.reservations[reservation.requestId]) return { applied: false };
        if (snap.td !== reservation.dayNumber) {
          // The day rolled over (or tokens were reset): nothing to give back, drop the marker.
          return this.dropMarker(reservation.userId, marker);
        }
      }
    }
    throw new LimiterStoreError(`reconcile of ${reservation.requestId} did not settle`);
  }

  private async dropMarker(userId: string, marker: string): Promise<{ applied: boolean }> {
    const w = new ExpressionWriter();
    const m = w.name(marker);
    w.condition(`attribute_exists(${m})`);
    w.remove(m);
    try {
      await this.update(userId, w.build(), 'NONE');
      return { applied: true };
    } catch (err) {
      if (err instanceof ConditionalCheckFailedException) return { applied: false };
      throw err;
    }
  }

  async status(userId: string, claimTier: Tier | undefined, nowMs: number): Promise<UserStatus> {
    const snap = await this.read(userId);
    const policy = this.policyOf(snap, claimTier, nowMs);
    const override =
      snap.override && (snap.override.expiresAtEpochMs ?? Number.POSITIVE_INFINITY) > nowMs
        ? snap.override
        : undefined;
    return {
      userId,
      tier: this.tierOf(snap, claimTier),
      policy,
      limits: evaluate(policy, snap, { estimatedInputTokens: 0, maxTokens: policy.minOutputTokens }, nowMs)
        .limits,
      queued: snap.waiting,
      override,
      known: snap.exists,
    };
  }

  async reset(userId: string, scope: ResetScope, _nowMs: number): Promise<void> {
    const attributes = {
      messages: ['tat', 'hw', 'hc', 'dw', 'dc'],
      tokens: ['td', 'tu'],
      all: ['tat', 'hw', 'hc', 'dw', 'dc', 'td', 'tu'],
    }[scope];
    const w = new ExpressionWriter();
    w.remove(...attributes.map((a) => w.name(a)));
    w.condition(`attribute_exists(${w.name('pk')})`);
    await this.updateIgnoringMissing(userId, w.build());
    this.beliefs.delete(userId);
  }

  /** Sets (or with `null` removes) the user's own tier; it wins over the token's claim. */
  async setTier(
    userId: string,
    tier: Tier | null,
  ): Promise<{ before: LimiterSnapshot; after: LimiterSnapshot }> {
    const w = new ExpressionWriter();
    if (tier === null) w.remove(w.name('tier'));
    else w.set(`${w.name('tier')} = ${w.value(tier)}`);
    return this.changePolicy(userId, w);
  }

  async setOverride(
    userId: string,
    override: LimitOverride,
  ): Promise<{ before: LimiterSnapshot; after: LimiterSnapshot }> {
    const w = new ExpressionWriter();
    w.set(`${w.name('ovr')} = ${w.value(JSON.parse(JSON.stringify(override)))}`);
    return this.changePolicy(userId, w);
  }

  async clearOverride(userId: string): Promise<{ before: LimiterSnapshot; after: LimiterSnapshot }> {
    const w = new ExpressionWriter();
    w.remove(w.name('ovr'));
    return this.changePolicy(userId, w);
  }

  /** A policy write bumps `pv`, so every decision planned from the old policy fails its condition. */
  private async changePolicy(
    userId: string,
    w: ExpressionWriter,
  ): Promise<{ before: LimiterSnapshot; after: LimiterSnapshot }> {
    const before = await this.read(userId);
    w.set(`${w.name('pv')} = if_not_exists(${w.name('pv')}, ${w.value(0)}) + ${w.value(1)}`);
    w.set(`${w.name('ttlEpochSeconds')} = ${w.value(Math.floor(Date.now() / 1000) + POLICY_TTL_SECONDS)}`);
    const plan = w.build();
    const item = await this.update(userId, { ...plan, condition: '' }, 'ALL_NEW');
    const after = this.remember(userId, snapshotFromItem(item));
    return { before, after };
  }

  /**
   * Puts a request in the user's waiting list if there is room, in the order of its SQS sequence
   * number (so the list is the order the FIFO queue will hand the messages out). Its position is
   * its place in the list.
   */
  async enqueue(
    userId: string,
    requestId: string,
    sequenceNumber: string,
    maxQueued: number,
  ): Promise<
    { accepted: true; position: number; queued: readonly string[] } | { accepted: false; queued: number }
  > {
    const entry = waitingEntry(sequenceNumber, requestId);
    // Concurrent sends of one user race here; each round one of them wins, so allow one round per
    // possible waiting request, with a little jitter.
    for (let attempt = 0; attempt < maxQueued + MAX_ATTEMPTS; attempt++) {
      if (attempt > 0) await new Promise((resolve) => setTimeout(resolve, Math.random() * 15));
      const snap = await this.read(userId);
      if (snap.waiting.length >= maxQueued) return { accepted: false, queued: snap.waiting.length };
      if (snap.waiting.includes(requestId)) {
        return { accepted: true, position: snap.waiting.indexOf(requestId) + 1, queued: snap.waiting };
      }
      const w = new ExpressionWriter();
      const wv = w.name('wv');
      // The list is rewritten whole, so it must be the list we read: its version pins it.
      w.condition(snap.wv === 0 ? `attribute_not_exists(${wv})` : `${wv} = ${w.value(snap.wv)}`);
      w.set(`${w.name('waiting')} = ${w.value([...snap.waitingEntries, entry].sort())}`);
      w.set(`${wv} = ${w.value(snap.wv + 1)}`);
      try {
        const item = await this.update(userId, w.build(), 'ALL_NEW');
        const after = this.remember(userId, snapshotFromItem(item));
        return { accepted: true, position: after.waiting.indexOf(requestId) + 1, queued: after.waiting };
      } catch (err) {
        if (!(err instanceof ConditionalCheckFailedException)) throw err;
      }
    }
    throw new LimiterStoreError(`could not queue ${requestId} for ${userId}`);
  }

  /** Takes a request out of the waiting list (cancel, expiry, purge). */
  async removeQueued(
    userId: string,
    requestId: string,
  ): Promise<{ removed: boolean; queued: readonly string[] }> {
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const snap = await this.read(userId);
      const index = snap.waiting.indexOf(requestId);
      if (index < 0) return { removed: false, queued: snap.waiting };
      const w = new ExpressionWriter();
      const waiting = w.name('waiting');
      const wv = w.name('wv');
      // The list may have moved since the read: remove by index only if it still holds this entry.
      w.condition(`${waiting}[${index}] = ${w.value(snap.waitingEntries[index])}`);
      w.remove(`${waiting}[${index}]`);
      w.set(`${wv} = if_not_exists(${wv}, ${w.value(0)}) + ${w.value(1)}`);
      try {
        const item = await this.update(userId, w.build(), 'ALL_NEW');
        const after = this.remember(userId, snapshotFromItem(item));
        return { removed: true, queued: after.waiting };
      } catch (err) {
        if (!(err instanceof ConditionalCheckFailedException)) throw err;
      }
    }
    throw new LimiterStoreError(`could not remove ${requestId} from the queue of ${userId}`);
  }

  /**
   * Connection attempts per source address at `$connect`: a GCRA bucket of `perMinute` attempts
   * refilled one every 60/perMinute s, in the `ip#<addr>` item, one conditional write per attempt.
   */
  async consumeConnectAttempt(
    sourceIp: string,
    perMinute: number,
    nowMs: number,
  ): Promise<{ allowed: boolean; retryAfterMs: number }> {
    const { intervalMs, toleranceMs } = bucketOf({ messagesPerMinute: perMinute, burst: 0 } as LimitPolicy);
    const key = { pk: `ip#${sourceIp}` };
    let tat: number | undefined;
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      if (tat !== undefined && tat - nowMs > toleranceMs) {
        return { allowed: false, retryAfterMs: Math.ceil(tat - toleranceMs - nowMs) };
      }
      const w = new ExpressionWriter();
      const t = w.name('tat');
      if (tat === undefined || tat <= nowMs) {
        w.condition(`(attribute_not_exists(${t}) OR ${t} <= ${w.value(nowMs)})`);
        w.set(`${t} = ${w.value(nowMs + intervalMs)}`);
      } else {
        w.condition(`(${t} > ${w.value(nowMs)} AND ${t} <= ${w.value(nowMs + toleranceMs)})`);
        w.set(`${t} = ${t} + ${w.value(intervalMs)}`);
      }
      w.set(`${w.name('ttlEpochSeconds')} = ${w.value(Math.floor(nowMs / 1000) + 3600)}`);
      try {
        await this.send(key, w.build(), 'NONE');
        return { allowed: true, retryAfterMs: 0 };
      } catch (err) {
        if (!(err instanceof ConditionalCheckFailedException)) throw err;
        const item = err.Item ? unmarshall(err.Item) : await this.get(key);
        tat = typeof item?.tat === 'number' ? item.tat : undefined;
      }
    }
    throw new LimiterStoreError(`connection limit for ${sourceIp} did not settle`);
  }

  private policyOf(snap: LimiterSnapshot, claimTier: Tier | undefined, nowMs: number): LimitPolicy {
    return effectivePolicy(this.tiers[this.tierOf(snap, claimTier)], snap.override, nowMs);
  }

  /** The record's tier wins over the token's claim (SPEC §2); `free` when neither says. */
  private tierOf(snap: LimiterSnapshot, claimTier: Tier | undefined): Tier {
    return snap.tier ?? claimTier ?? 'free';
  }

  private remember(userId: string, snap: LimiterSnapshot): LimiterSnapshot {
    this.beliefs.delete(userId);
    this.beliefs.set(userId, snap);
    if (this.beliefs.size > this.cacheSize) this.beliefs.delete(this.beliefs.keys().next().value!);
    return snap;
  }

  private async read(userId: string): Promise<LimiterSnapshot> {
    return this.remember(userId, snapshotFromItem(await this.get(userKey(userId))));
  }

  private async get(key: Record<string, string>): Promise<Record<string, unknown> | undefined> {
    const { Item } = await this.client.send(
      new GetItemCommand({ TableName: this.tableName, Key: marshall(key), ConsistentRead: true }),
      { abortSignal: AbortSignal.timeout(this.timeoutMs) },
    );
    return Item ? unmarshall(Item) : undefined;
  }

  private update(
    userId: string,
    plan: UpdatePlan,
    returnValues: 'ALL_NEW' | 'NONE',
  ): Promise<Record<string, unknown>> {
    return this.send(userKey(userId), plan, returnValues);
  }

  private async updateIgnoringMissing(userId: string, plan: UpdatePlan): Promise<void> {
    try {
      await this.update(userId, plan, 'NONE');
    } catch (err) {
      if (!(err instanceof ConditionalCheckFailedException)) throw err;
    }
  }

  private async send(
    key: Record<string, string>,
    plan: UpdatePlan,
    returnValues: 'ALL_NEW' | 'NONE',
  ): Promise<Record<string, unknown>> {
    const { Attributes } = await this.client.send(
      new UpdateItemCommand({
        TableName: this.tableName,
        Key: marshall(key),
        UpdateExpression: plan.update,
        ConditionExpression: plan.condition || undefined,
        ExpressionAttributeNames: plan.names,
        ExpressionAttributeValues: Object.keys(plan.values).length
          ? marshall(plan.values, { removeUndefinedValues: true, convertClassInstanceToMap: true })
          : undefined,
        ReturnValues: returnValues,
        ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
      }),
      { abortSignal: AbortSignal.timeout(this.timeoutMs) },
    );
    return Attributes ? unmarshall(Attributes) : {};
  }
}
