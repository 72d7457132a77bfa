import type { TierSource } from '../decision';
import { evaluate } from '../evaluate';
import type { LimiterSnapshot } from '../item/state';
import type { LimitPolicy, LimitState } from '../kinds/registry';
import { effectivePolicy, type TierLimits } from '../policy';
import type { Tier } from '../tiers';

/** The record's tier wins over the token's claim (SPEC §2); `free` when neither says. */
export function tierOf(snap: LimiterSnapshot, claimTier: Tier | undefined): Tier {
  return snap.tier ?? claimTier ?? 'free';
}

/** Where {@link tierOf}'s answer comes from, `claimTier` being the last token's when `lastToken`. */
export function tierSourceOf(
  snap: LimiterSnapshot,
  claimTier: Tier | undefined,
  lastToken: boolean,
): TierSource {
  if (snap.tier) return 'record';
  if (claimTier) return lastToken ? 'last token' : 'token';
  return 'default';
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
