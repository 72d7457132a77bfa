/**
 * The limit kinds now live one per module in kinds/ (issue 21): kinds/kind.ts is the contract,
 * kinds/registry.ts the list and what is derived from it, kinds/shapes/ the writes they share.
 * This shim keeps the old names while the other tracks move; import from kinds/… instead.
 */

export type { Blocking } from './evaluate';
export type {
  Amount,
  KindInput,
  LimitKind,
  LimitUnit,
  ModelPrice,
  SettleInput,
} from './kinds/kind';
export { isLimitName, LIMIT_KINDS, limitKind, resetAttributes } from './kinds/registry';
export { takeInFlightSlot } from './kinds/shapes/in-flight';
export { countInWindow } from './kinds/shapes/window-counter';
export { movesTokenBucket } from './kinds/tokens-per-minute';
