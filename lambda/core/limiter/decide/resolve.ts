import { evaluate } from '../evaluate';
import type { LimiterSnapshot } from '../item/state';
import type { LimitPolicy, LimitState } from '../kinds/registry';
import { effectivePolicy, type TierLimits } from '../policy';
import type { Tier } from '../tiers';

/** The record's tier wins over the token's claim (SPEC §2); `free` when neither says. */
export function tierOf(snap: LimiterSnapshot, claimTier: Tier | undefined): Tier {
  return snap.tier ?? claimTier ?? 'free';
}

/** The limits that apply to the user now: its tier's, with an unexpired override on top. */
export function policyOf(
  tiers: TierLimits,
  snap: LimiterSnapshot,
  claimTier: Tier | undefined,
  nowMs: number,
): LimitPolicy {
  return effectivePolicy(tiers[tierOf(snap, claimTier)], snap.override, nowMs);
}

/** Every limit's state as `status` and a decision report it (a request of no input, minimum output). */
export function limitsOf(policy: LimitPolicy, snap: LimiterSnapshot, nowMs: number): LimitState[] {
  return evaluate(policy, snap, { estimatedInputTokens: 0, maxTokens: policy.minOutputTokens }, nowMs).limits;
}
