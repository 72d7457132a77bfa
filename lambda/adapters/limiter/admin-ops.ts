import { limitsOf, tierOf } from '../../core/limiter/decide/resolve';
import type { GlobalLimitState } from '../../core/limiter/global';
import { HISTORY_DAYS, usageHistory } from '../../core/limiter/history';
import { resetAttributes } from '../../core/limiter/kinds';
import { ExpressionWriter, POLICY_TTL_SECONDS, type UpdatePlan } from '../../core/limiter/plan';
import { EMPTY_SNAPSHOT, type LimiterSnapshot, type LimiterView } from '../../core/limiter/snapshot';
import type { LimitOverride, ResetScope, Tier, UserStatus } from '../../core/limiter/types';
import { type LimiterContext, userKey } from './context';
import { type TopBy, topUsersToday, type UserUsageToday } from './usage-index';

type PolicyChange = { before: LimiterSnapshot; after: LimiterSnapshot };

/** What `status`, `admin top` and the admin's writes (reset, tier, override) do on the store. */
export class AdminOps {
  constructor(private readonly ctx: LimiterContext) {}

  /** The user's item, fresh from the store or (`fresh: false`) as last seen here if known. */
  async view(
    userId: string,
    claimTier: Tier | undefined,
    nowMs: number,
    options: { readonly fresh?: boolean } = {},
  ): Promise<LimiterView> {
    const { items } = this.ctx;
    const key = userKey(userId);
    const known = options.fresh === false ? items.belief(key) : undefined;
    const sentAtMs = items.clock();
    const read = known ? undefined : await items.withRetries(() => items.read(key));
    // The latest of what was read and what this instance saw meanwhile.
    const latest = items.belief(key);
    const { snap, observedAtMs } = latest ?? { snap: read ?? EMPTY_SNAPSHOT, observedAtMs: sentAtMs };
    const policy = this.ctx.policyOf(snap, claimTier, nowMs);
    return {
      snap,
      tier: tierOf(snap, claimTier),
      policy,
      limits: limitsOf(policy, snap, nowMs),
      observedAtMs,
    };
  }

  async status(userId: string, claimTier: Tier | undefined, nowMs: number): Promise<UserStatus> {
    const { snap, tier, policy, limits } = await this.view(userId, claimTier, nowMs);
    const override =
      snap.override && (snap.override.expiresAtEpochMs ?? Number.POSITIVE_INFINITY) > nowMs
        ? snap.override
        : undefined;
    // Global totals: one read per shard, only when the stack has global limits.
    const global = this.ctx.global ? await this.ctx.global.totals(nowMs) : undefined;
    return {
      userId,
      tier,
      policy,
      limits,
      queued: snap.waiting,
      override,
      known: snap.exists,
      history: usageHistory(snap, nowMs, HISTORY_DAYS),
      ...(global ? { global } : {}),
    };
  }

  /** `admin top`: today's heaviest users (the usage index, no scan) and the global totals. */
  async top(
    by: TopBy,
    limit: number,
    nowMs: number,
  ): Promise<{ users: UserUsageToday[]; global?: GlobalLimitState[] }> {
    const users = await topUsersToday(this.ctx.client, this.ctx.tableName, by, limit, nowMs);
    return this.ctx.global ? { users, global: await this.ctx.global.totals(nowMs) } : { users };
  }

  async reset(userId: string, scope: ResetScope, _nowMs: number): Promise<void> {
    const w = new ExpressionWriter();
    // Each limit kind declares the attributes it keeps, and which scope clears them.
    w.remove(...resetAttributes(scope).map((a) => w.name(a)));
    // A new epoch per scope reset: reservations made before it refund nothing into that scope's new
    // counts, and keep refunding into the other scope's (issue 20, finding 9).
    const epochs = { tokens: ['te'], cost: ['ce'], all: ['te', 'ce'], messages: [] }[scope];
    for (const epoch of epochs) {
      const name = w.name(epoch);
      w.set(`${name} = if_not_exists(${name}, ${w.value(0)}) + ${w.value(1)}`);
    }
    // Only an item that exists: a reset never makes an empty one.
    w.condition(`attribute_exists(${w.name('pk')})`);
    const plan = w.build();
    await this.ctx.items.update(userKey(userId), 'none', () => ({ plan, after: () => true }));
  }

  /** Sets (or with `null` removes) the user's own tier; it wins over the token's claim. */
  setTier(userId: string, tier: Tier | null): Promise<PolicyChange> {
    return this.changePolicy(userId, (w) => {
      if (tier === null) w.remove(w.name('tier'));
      else w.set(`${w.name('tier')} = ${w.value(tier)}`);
    });
  }

  setOverride(userId: string, override: LimitOverride): Promise<PolicyChange> {
    return this.changePolicy(userId, (w) => {
      w.set(`${w.name('ovr')} = ${w.value(JSON.parse(JSON.stringify(override)))}`);
    });
  }

  clearOverride(userId: string): Promise<PolicyChange> {
    return this.changePolicy(userId, (w) => w.remove(w.name('ovr')));
  }

  /** A policy write bumps `pv`, so every decision planned from the old policy fails its condition. */
  private changePolicy(userId: string, change: (w: ExpressionWriter) => void): Promise<PolicyChange> {
    return this.ctx.items.update(userKey(userId), 'read', (before) => ({
      plan: this.policyPlan(change),
      after: ({ snap: after }) => ({ before, after }),
    }));
  }

  private policyPlan(change: (w: ExpressionWriter) => void): UpdatePlan {
    const w = new ExpressionWriter();
    change(w);
    w.set(`${w.name('pv')} = if_not_exists(${w.name('pv')}, ${w.value(0)}) + ${w.value(1)}`);
    w.set(
      `${w.name('ttlEpochSeconds')} = ${w.value(Math.floor(this.ctx.items.clock() / 1000) + POLICY_TTL_SECONDS)}`,
    );
    return w.build();
  }
}
