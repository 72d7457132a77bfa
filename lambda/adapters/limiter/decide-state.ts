import type { GlobalReservation } from '../../core/limiter/global/share-record';
import type { GlobalCounters, GlobalHold } from './global-counters';

/** What one decision carries across its rounds and retries. */
export interface DecideState extends GlobalHold {
  ambiguousWrite: boolean;
  /**
   * A write of this decision was cut by a connection reset: taken as never landed for busy and the
   * breaker (see `mayHaveLanded`), but the store may have applied it before the reset — so a later
   * round that finds this request's marker takes it as this decision's admission, never as a
   * duplicate (a client told "refused" while counted).
   */
  resetWrite?: boolean;
  /**
   * This decision has itself read the item, or had it returned by a write: the belief is then the
   * item as it was after the frame arrived, whatever the clock says (equal milliseconds tell
   * nothing of order).
   */
  sawItem?: boolean;
  /**
   * Taken from a global shard in this decision, not yet made permanent by the user's write
   * (`globalUnsure`: maybe taken — its write got no answer and the shard was not read since).
   */
  globalHeld?: GlobalReservation;
  /** The user was among those waiting for global capacity (unregistered once admitted). */
  waitedForGlobal?: boolean;
  /** How full the shard's share of the global daily cost is after this admission (%). */
  globalCostPercent?: number;
  /**
   * The user's team, when it has limits, and what this decision holds of its shards (as `globalHeld`
   * for the stack's): taken, not yet made permanent by the user's write.
   */
  team?: { readonly name: string; readonly counters: GlobalCounters; readonly hold: GlobalHold };
  /** The last try failed at a global item (a shard or the line), not at the user's own item. */
  globalFailed?: boolean;
}
