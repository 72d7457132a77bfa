import type { UpdatePlan } from '../../lambda/core/limiter/expression';
import type { GlobalBound, GlobalLimits } from '../../lambda/core/limiter/global/limits';
import { quotaTokens } from '../../lambda/core/limiter/global/model-quotas';
import {
  type GlobalAsk,
  type GlobalReservation,
  planGlobalAdmission,
  planGlobalRelease,
  roomIn,
  shardKey,
} from '../../lambda/core/limiter/global/shards';
import { idMap, snapshotFromItem } from '../../lambda/core/limiter/item/codec';
import type { LimiterSnapshot } from '../../lambda/core/limiter/item/state';
import type { AdmissionPlan } from '../../lambda/core/limiter/plan/admission';
import type { ModelSpec } from '../../lambda/core/models';
import { applyPlan, type Item } from './memory-item';

/** Sees each write the store applied: the item's key, the plan, the item after it. */
export type WriteObserver = (key: string, plan: UpdatePlan, after: Readonly<Item>) => void;

/**
 * One stored item of the Limits table and the snapshot the codec reads from it. The snapshot is
 * read again only when it is asked for after a write (a user's item is often written twice — an
 * admission, a settle — between two looks at it), never kept from before one.
 */
export class StoredItem {
  /** A dictionary from the start: its keys name requests (`r_<id>`, …), new on every request (idMap). */
  readonly item: Item = idMap();
  private snapshot: LimiterSnapshot | undefined = snapshotFromItem(undefined);

  constructor(
    /** The item's key (`user#<id>`, `global#<k>`, `team#<name>#<k>`). */
    readonly key: string,
    private readonly onWrite?: WriteObserver,
  ) {}

  get snap(): LimiterSnapshot {
    this.snapshot ??= snapshotFromItem(this.item);
    return this.snapshot;
  }

  /** Applies the plan; its condition must hold (the simulation's belief is always the item). */
  write(plan: UpdatePlan, what: string): void {
    if (!applyPlan(this.item, plan)) {
      throw new Error(`simulate: the ${what} write's condition failed on the item it was planned from`);
    }
    this.snapshot = undefined;
    this.onWrite?.(this.key, plan, this.item);
  }
}

export type ShareTaken =
  | { readonly ok: true; readonly taken: GlobalReservation }
  | { readonly ok: false; readonly limit: GlobalBound; readonly retryAfterMs: number };

/**
 * One scope's shards in memory — the stack's (`global#<k>`) or a team's (`team#<name>#<k>`) — kept
 * as GlobalCounters keeps them on DynamoDB (lambda/adapters/limiter/global-counters.ts): roomIn
 * says which shards have room, planGlobalAdmission takes the share from one, planGlobalRelease
 * gives it back.
 */
export class MemoryShards {
  private readonly shards: StoredItem[];

  constructor(
    readonly limits: GlobalLimits,
    prefix: string | undefined,
    onWrite?: WriteObserver,
  ) {
    this.shards = Array.from(
      { length: limits.shards },
      (_, k) => new StoredItem(shardKey(k, prefix), onWrite),
    );
  }

  snapOf(shard: number): LimiterSnapshot {
    return this.shards[shard]!.snap;
  }

  /** Takes the ask from the emptiest shard with room (the product picks at random among the nearly emptiest: here the first). */
  take(ask: GlobalAsk, nowMs: number): ShareTaken {
    const rooms = this.shards.map((s, k) => roomIn(this.limits, k, s.snap, ask, nowMs));
    let best: (typeof rooms)[number] | undefined;
    let soonest: (typeof rooms)[number] | undefined;
    for (const r of rooms) {
      if (!r.blocking) {
        if (best === undefined || r.free > best.free) best = r;
      } else if (soonest === undefined || r.retryAfterMs! < soonest.retryAfterMs!) soonest = r;
    }
    // No shard with room: the one that may have room soonest says when to try again (GlobalCounters.admit).
    if (!best) return { ok: false, limit: soonest!.blocking!, retryAfterMs: soonest!.retryAfterMs! };
    const shard = this.shards[best.shard]!;
    const share = planGlobalAdmission({
      limits: this.limits,
      shard: best.shard,
      belief: shard.snap,
      ask,
      nowMs,
    });
    shard.write(share.plan, 'shard admission');
    return { ok: true, taken: share.taken };
  }

  /**
   * Gives back what a request took (GlobalCounters.release): its slot, the unused part, or all of
   * it (`undo`). False: the shard held nothing of it.
   */
  release(
    requestId: string,
    taken: GlobalReservation,
    refund: Parameters<typeof planGlobalRelease>[0]['refund'],
    undo: boolean,
  ): boolean {
    const shard = this.shards[taken.shard]!;
    const plan = planGlobalRelease({ belief: shard.snap, requestId, taken, refund, undo });
    if (plan) shard.write(plan, undo ? 'shard undo' : 'shard release');
    return plan !== undefined;
  }
}

/** A model's account quota counts on the global shard: input + the output allowance × burndown. */
export function quotaAsk(
  model: ModelSpec,
  planned: Extract<AdmissionPlan, { kind: 'write' }>,
): Pick<GlobalAsk, 'quota'> {
  if (!model.accountQuota) return {};
  const { inputTokens, outputAllowance } = planned.evaluation.reservation!;
  return {
    quota: { modelId: model.id, quotaTokens: quotaTokens(model.accountQuota, inputTokens, outputAllowance) },
  };
}
