import type { ResetScope } from '../decision';
import { ExpressionWriter, type UpdatePlan } from '../expression';
import {
  COST_EPOCH_ATTR,
  KEY_ATTR,
  OVERRIDE_ATTR,
  POLICY_VERSION_ATTR,
  TEAM_ATTR,
  TIER_ATTR,
  TOKEN_EPOCH_ATTR,
} from '../item/attributes';
import type { LimitOverride } from '../kinds/registry';
import { resetAttributes, resetFrees } from '../kinds/registry';
import { freeWindow } from '../kinds/shapes/window-counter';
import { POLICY_TTL_SECONDS } from '../plan/ttl';
import type { Tier } from '../tiers';

/**
 * The admin's `reset`: clears what the scope's limit kinds keep and starts a new epoch per scope
 * reset, so reservations made before it refund nothing into that scope's new counts and keep
 * refunding into the other scope's (issue 20, finding 9). Only an item that exists: a reset never
 * makes an empty one. A reset changes limits, never the accounting (SPEC §9.5): the daily counters
 * `top` and the history read stay, their limits freed of what they hold (issue 23, item 6).
 */
export function planReset(scope: ResetScope): UpdatePlan {
  const w = new ExpressionWriter();
  // Each limit kind declares the attributes it keeps, and which scope clears them.
  w.remove(...resetAttributes(scope).map((a) => w.name(a)));
  for (const { count, freed } of resetFrees(scope)) freeWindow(w, { countAttr: count, freedAttr: freed });
  const epochs = {
    tokens: [TOKEN_EPOCH_ATTR],
    cost: [COST_EPOCH_ATTR],
    all: [TOKEN_EPOCH_ATTR, COST_EPOCH_ATTR],
    messages: [],
  }[scope];
  for (const epoch of epochs) {
    const name = w.name(epoch);
    w.set(`${name} = if_not_exists(${name}, ${w.value(0)}) + ${w.value(1)}`);
  }
  w.condition(`attribute_exists(${w.name(KEY_ATTR)})`);
  return w.build();
}

/** What an admin's policy write changes: the user's own tier, or its override (`null` removes). */
export type PolicyChange =
  | { readonly tier: Tier | null }
  | { readonly override: LimitOverride | null }
  /** The user's team (SPEC §9.4: the record wins over the token's claim); `null` removes it. */
  | { readonly team: string | null };

/**
 * A policy write bumps `pv`, so every decision planned from the old policy fails its condition; the
 * item then lives POLICY_TTL_SECONDS after it (an admin's setting outlives an idle user's counters).
 */
export function planPolicyChange(change: PolicyChange, nowMs: number): UpdatePlan {
  const w = new ExpressionWriter();
  if ('tier' in change) {
    if (change.tier === null) w.remove(w.name(TIER_ATTR));
    else w.set(`${w.name(TIER_ATTR)} = ${w.value(change.tier)}`);
  } else if ('team' in change) {
    if (change.team === null) w.remove(w.name(TEAM_ATTR));
    else w.set(`${w.name(TEAM_ATTR)} = ${w.value(change.team)}`);
  } else if (change.override === null) {
    w.remove(w.name(OVERRIDE_ATTR));
  } else {
    w.set(`${w.name(OVERRIDE_ATTR)} = ${w.value(JSON.parse(JSON.stringify(change.override)))}`);
  }
  w.set(
    `${w.name(POLICY_VERSION_ATTR)} = if_not_exists(${w.name(POLICY_VERSION_ATTR)}, ${w.value(0)}) + ${w.value(1)}`,
  );
  w.set(`${w.name('ttlEpochSeconds')} = ${w.value(Math.floor(nowMs / 1000) + POLICY_TTL_SECONDS)}`);
  return w.build();
}
