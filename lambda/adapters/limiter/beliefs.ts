import type { UpdatePlan } from '../../core/limiter/expression';
import { EMPTY_SNAPSHOT, type LimiterSnapshot } from '../../core/limiter/item/state';

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

/** Retries of one user-item operation hit by throttling or faults before it gives up. */
export const MAX_TRANSIENT_RETRIES = 3;

/** Rounds of plan-write-fail per operation: each failed condition brings the item as it is. */
export const MAX_CONTENTION_ROUNDS = 8;

/**
 * One step of an {@link UserItems.update}: the answer without a write (`done`), or a write and what
 * its result means (`after`: the answer, or undefined to plan again from the item it returned).
 */
export type UpdateStep<T> =
  | { readonly done: T }
  | { readonly plan: UpdatePlan; readonly after: (result: WriteResult) => T | undefined };

/** A belief of nothing: plan as for a new item; it is never fresh enough to refuse from. */
export const UNKNOWN: Belief = Object.freeze({
  snap: EMPTY_SNAPSHOT,
  observedAtMs: Number.NEGATIVE_INFINITY,
});
