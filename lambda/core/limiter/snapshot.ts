/** Moved to item/ (issue 21): the readable state, its codec, and the stored names. */
export {
  QUEUED_PREFIX,
  RESERVATION_PREFIX,
  SETTLED_SHARE_PREFIX,
  WARNED_PREFIX,
} from './item/attributes';
export { queuedItemValue, snapshotFromItem } from './item/codec';
export {
  EMPTY_SNAPSHOT,
  type LimiterSnapshot,
  type LimiterView,
  liveInFlight,
  type PendingReservation,
  SETTLED_SHARE_LIFE_MS,
} from './item/state';
