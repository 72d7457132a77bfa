import { GLOBAL_LIMITS, type GlobalLimit, type GlobalLimits } from './global/limits';

/**
 * Teams (SPEC §9.4): a user belongs to at most one team — the user's record (admin `set-team`),
 * else the token's `team` claim. A team's limits (`limits.teams.<name>`, else `limits.teamDefaults`)
 * are the kinds' global parts counted over the team's members only: a second scope of shards
 * (`team#<name>#<k>` in the limits table), kept exactly as the stack's global shards are.
 */

/** A team's name: what may appear in a key (`team#<name>#<k>`), a claim and the config. */
export const TEAM_NAME = /^[A-Za-z0-9_.-]{1,64}$/;

export const isTeamName = (value: unknown): value is string =>
  typeof value === 'string' && TEAM_NAME.test(value);

/** The key prefix of a team's shards (`team#<name>`; shard k is `team#<name>#<k>`). */
export const teamShardPrefix = (team: string) => `team#${team}`;

/**
 * The key of a team's budget event marks (`team#<name>#events`, the marks as GLOBAL_EVENTS_KEY's:
 * item/attributes.ts globalEventMark), written by the sweep only. No shard's: those end in a number.
 */
export const teamEventsKey = (team: string) => `${teamShardPrefix(team)}#events`;

/** The capacity a team's waiters wait for in the global line (GlobalWaiter.scope). */
export const teamScope = (team: string) => `team:${team}`;

/** The team in effect: the user's record wins over the token's claim (SPEC §9.4). */
export function teamOf(recordTeam: string | undefined, claimTeam: string | undefined): string | undefined {
  return recordTeam ?? (isTeamName(claimTeam) ? claimTeam : undefined);
}

/** What the configuration says of teams: each team's own limits, and the defaults for the others. */
export interface TeamsConfig {
  readonly teams?: Readonly<Record<string, GlobalLimits>>;
  readonly teamDefaults?: GlobalLimits;
}

/**
 * A team's limits: its own entry (whole, not merged: an entry that sets none means no limits), else
 * the defaults; undefined when neither sets a limit — then the team's requests write no team shard.
 */
export function teamLimitsOf(config: TeamsConfig, team: string, has: (l: GlobalLimits) => boolean) {
  const limits = config.teams?.[team] ?? config.teamDefaults;
  return limits !== undefined && has(limits) ? limits : undefined;
}

/**
 * The limit of a refusal by a shared limit — the stack's (`global.<limit>`) or a team's
 * (`team.<limit>`) — which waits in the global line; undefined for any other refusal.
 */
export function sharedLimitOf(limit: string): GlobalLimit | undefined {
  const own = limit.startsWith('global.') ? limit.slice(7) : limit.startsWith('team.') ? limit.slice(5) : '';
  return (GLOBAL_LIMITS as readonly string[]).includes(own) ? (own as GlobalLimit) : undefined;
}
