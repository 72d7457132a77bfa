import { ConfigError } from '../../core/errors';
import { type PolicyChange, planPolicyChange, planReset } from '../../core/limiter/decide/admin-plans';
import { limitsOf, tierOf, tierSourceOf } from '../../core/limiter/decide/resolve';
import type {
  ResetScope,
  StatusOptions,
  TeamLimitState,
  TeamStatus,
  UserStatus,
} from '../../core/limiter/decision';
import type { GlobalLimitState } from '../../core/limiter/global/limits';
import { HISTORY_DAYS, usageHistory } from '../../core/limiter/history';
import { userKey } from '../../core/limiter/item/attributes';
import { checkPolicyChange } from '../../core/limiter/item/size';
import { EMPTY_SNAPSHOT, type LimiterSnapshot, type LimiterView } from '../../core/limiter/item/state';
import type { LimitOverride } from '../../core/limiter/kinds/registry';
import { isTeamName } from '../../core/limiter/teams';
import type { Tier } from '../../core/limiter/tiers';
import type { LimiterContext } from './context';
import { type TopBy, topUsersToday, type UserUsageToday, usersOfTeam } from './usage-index';

type PolicyWrite = { before: LimiterSnapshot; after: LimiterSnapshot };

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

  /**
   * The user's limits and usage. `history: true` (admin `usage --history`) also reads the closed
   * days' history items (one Query); without it the history is what the item holds (today, the
   * last closed day).
   */
  async status(
    userId: string,
    claimTier: Tier | undefined,
    nowMs: number,
    options: StatusOptions = {},
  ): Promise<UserStatus> {
    const [{ snap }, stored] = await Promise.all([
      this.view(userId, claimTier, nowMs),
      options.history && this.ctx.history ? this.ctx.history.read(userId, nowMs) : undefined,
    ]);
    // Without a token (admin `usage`), the tier the last admitted token claimed is the one in effect.
    const lastToken = options.claimFromLastToken === true && claimTier === undefined;
    const claim = lastToken ? snap.lastClaimTier : claimTier;
    const tier = tierOf(snap, claim);
    const policy = this.ctx.policyOf(snap, claim, nowMs);
    const limits = limitsOf(policy, snap, nowMs);
    const override =
      snap.override && (snap.override.expiresAtEpochMs ?? Number.POSITIVE_INFINITY) > nowMs
        ? snap.override
        : undefined;
    // Global totals: one read per shard, only when the stack has global limits; the team's too.
    const [global, team] = await Promise.all([
      this.ctx.global ? this.ctx.global.totals(nowMs) : undefined,
      // Likewise the team: the record's, else the last admitted token's claim.
      this.teamStatus(snap, lastToken ? snap.lastClaimTeam : options.claimTeam, nowMs, lastToken),
    ]);
    return {
      userId,
      tier,
      tierSource: tierSourceOf(snap, claim, lastToken),
      policy,
      limits,
      queued: snap.waiting,
      override,
      known: snap.exists,
      history: usageHistory(snap, nowMs, HISTORY_DAYS, stored),
      ...(global ? { global } : {}),
      ...(team ? { team } : {}),
    };
  }

  /** The user's team (the record's, else the claim's) and its limits' totals (one read per shard). */
  private async teamStatus(
    snap: LimiterSnapshot,
    claimTeam: string | undefined,
    nowMs: number,
    lastToken: boolean,
  ): Promise<TeamStatus | undefined> {
    const team = this.ctx.teams && this.ctx.teamOf(snap, claimTeam);
    if (!team) return undefined;
    return {
      name: team.name,
      source: snap.team !== undefined ? 'record' : lastToken ? 'last token' : 'token',
      limits: team.counters ? teamTotals(await team.counters.totals(nowMs)) : [],
    };
  }

  /** `admin top`: today's heaviest users (the usage index, no scan) and the global totals. */
  async top(
    by: TopBy,
    limit: number,
    nowMs: number,
    team?: string,
  ): Promise<{ users: UserUsageToday[]; global?: GlobalLimitState[]; team?: string }> {
    if (team !== undefined) return { users: await this.teamTop(team, by, limit, nowMs), team };
    const users = await topUsersToday(this.ctx.client, this.ctx.tableName, by, limit, nowMs);
    return this.ctx.global ? { users, global: await this.ctx.global.totals(nowMs) } : { users };
  }

  /** Today's heaviest members of `team` (`top --team`: the day's entries, filtered by usersOfTeam). */
  private async teamTop(team: string, by: TopBy, limit: number, nowMs: number): Promise<UserUsageToday[]> {
    const { client, tableName } = this.ctx;
    const all = await topUsersToday(client, tableName, by, Number.MAX_SAFE_INTEGER, nowMs);
    const members = await usersOfTeam(
      client,
      tableName,
      all.map((u) => u.userId),
      team,
    );
    return all.filter((u) => members.has(u.userId)).slice(0, limit);
  }

  async reset(userId: string, scope: ResetScope, _nowMs: number): Promise<void> {
    const plan = planReset(scope);
    await this.ctx.items.update(userKey(userId), 'none', () => ({ plan, after: () => true }));
  }

  /** Sets (or with `null` removes) the user's own tier; it wins over the token's claim. */
  setTier(userId: string, tier: Tier | null): Promise<PolicyWrite> {
    return this.changePolicy(userId, { tier });
  }

  /** Sets (or with `null` removes) the user's team (SPEC §9.4); it wins over the token's claim. */
  async setTeam(userId: string, team: string | null): Promise<PolicyWrite> {
    if (team !== null && !isTeamName(team)) {
      throw new ConfigError(`team: "${team}" is not a team name (1 to 64 of A-Z a-z 0-9 _ . -)`);
    }
    return this.changePolicy(userId, { team });
  }

  /** A team's limits' totals over its members (one read per shard); none when it has no limits. */
  async teamUsage(
    team: string,
    nowMs: number,
    options: { readonly members?: boolean } = {},
  ): Promise<{ team: string; limits: TeamLimitState[]; members?: UserUsageToday[] }> {
    const counters = isTeamName(team) ? this.ctx.teams?.of(team) : undefined;
    const limits = counters ? teamTotals(await counters.totals(nowMs)) : [];
    // Its members' usage today: the day's usage entries, filtered (as `top --team`).
    if (!options.members) return { team, limits };
    return { team, limits, members: await this.teamTop(team, 'tokens', 100, nowMs) };
  }

  setOverride(userId: string, override: LimitOverride): Promise<PolicyWrite> {
    return this.changePolicy(userId, { override });
  }

  clearOverride(userId: string): Promise<PolicyWrite> {
    return this.changePolicy(userId, { override: null });
  }

  /**
   * One policy write (see planPolicyChange), with the item as it was before and after it. A change
   * under which the user's item could pass the size bound is refused first (ConfigError naming the
   * field; item/size.ts), from a fresh read of the user's tier and override.
   */
  private async changePolicy(userId: string, change: PolicyChange): Promise<PolicyWrite> {
    // A team changes no limit of the user's own: nothing for the item's size bound to check.
    const { snap } =
      'team' in change ? { snap: undefined } : await this.view(userId, undefined, this.ctx.items.clock());
    if (snap)
      checkPolicyChange(
        this.ctx.tiers,
        {
          tier: 'tier' in change ? (change.tier ?? undefined) : snap.tier,
          override: 'override' in change ? (change.override ?? undefined) : snap.override,
        },
        { maxQueuedPerUser: this.ctx.maxQueuedPerUser, modelIds: this.ctx.models.map((m) => m.id) },
      );
    return this.ctx.items.update(userKey(userId), 'read', (before) => ({
      plan: planPolicyChange(change, this.ctx.items.clock()),
      after: ({ snap: after }) => ({ before, after }),
    }));
  }
}

/** A team's totals, as its shards give them: each named `team.<limit>`. */
export function teamTotals(states: readonly GlobalLimitState[]): TeamLimitState[] {
  return states.map((s) => ({
    ...s,
    name: `team.${s.name.slice('global.'.length)}` as TeamLimitState['name'],
  }));
}
