import { describe, expect, it } from 'vitest';
import { planPolicyChange, planReset } from '../../../lambda/core/limiter/decide/admin-plans';
import { resetAttributes } from '../../../lambda/core/limiter/kinds/registry';
import { POLICY_TTL_SECONDS } from '../../../lambda/core/limiter/plan/ttl';

const NOW = Date.UTC(2026, 0, 3, 10, 0, 0);

/** The plan's expressions with the placeholders filled in. */
function readable(plan: {
  update: string;
  condition: string;
  names: Record<string, string>;
  values: Record<string, unknown>;
}) {
  const fill = (text: string) =>
    text
      .replace(/#n\d+/g, (n) => plan.names[n] ?? n)
      .replace(/:v\d+/g, (v) => JSON.stringify(plan.values[v]));
  return { update: fill(plan.update), condition: fill(plan.condition) };
}

describe('planReset', () => {
  it("clears what the scope's kinds keep, starts a new epoch of that scope, and never makes an item", () => {
    const tokens = readable(planReset('tokens'));
    for (const attribute of resetAttributes('tokens')) expect(tokens.update).toContain(attribute);
    expect(tokens.update).toContain('te = if_not_exists(te, 0) + 1');
    expect(tokens.update).not.toContain('ce =');
    // The day's tokens stay (top, history read them); the reset records them as freed.
    expect(tokens.update).toContain('tuf = if_not_exists(tu, 0)');
    expect(tokens.update).not.toMatch(/REMOVE.*\btu\b/);
    expect(tokens.condition).toBe('attribute_exists(pk)');
    const all = readable(planReset('all'));
    expect(all.update).toContain('te = if_not_exists(te, 0) + 1');
    expect(all.update).toContain('ce = if_not_exists(ce, 0) + 1');
    expect(readable(planReset('messages')).update).not.toMatch(/\b(te|ce) =/);
  });
});

describe('planPolicyChange', () => {
  it('sets or removes the tier and the override, bumps the policy version and keeps the item for long', () => {
    const tier = readable(planPolicyChange({ tier: 'pro' }, NOW));
    expect(tier.update).toContain('tier = "pro"');
    expect(tier.update).toContain('pv = if_not_exists(pv, 0) + 1');
    expect(tier.update).toContain(`ttlEpochSeconds = ${NOW / 1000 + POLICY_TTL_SECONDS}`);
    expect(readable(planPolicyChange({ tier: null }, NOW)).update).toMatch(/REMOVE tier/);
    expect(readable(planPolicyChange({ override: null }, NOW)).update).toMatch(/REMOVE ovr/);
    const override = readable(planPolicyChange({ override: { limits: { burst: 2 } } }, NOW));
    expect(override.update).toContain('ovr = {"limits":{"burst":2}}');
  });
});
