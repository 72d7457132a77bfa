/**
 * The limiter's vocabulary, re-exported from where each part now lives (issue 21): tiers in
 * tiers.ts, the limit names and the policy in kinds/registry.ts, decisions and reservations in
 * decision.ts. Import from those; this shim goes when every track has moved.
 */
export type {
  AllowedDecision,
  DecideInput,
  Decision,
  DeniedDecision,
  Limiter,
  LimitWarning,
  ResetScope,
  TokenReservation,
  TokenUsage,
  UserStatus,
} from './decision';
export {
  LIMIT_NAMES,
  type LimitName,
  type LimitOverride,
  type LimitPolicy,
  type LimitState,
} from './kinds/registry';
export { isTier, TIERS, type Tier } from './tiers';
