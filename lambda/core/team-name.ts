/**
 * A team's name (SPEC §9.4), as a token's `team` claim, `limits.teams.<team>` and admin `set-team`
 * spell it: 1 to 64 of letters, digits, `_`, `.` and `-`. It becomes part of stored keys and
 * metric dimensions, so nothing else is accepted.
 */
export const TEAM_NAME_PATTERN = /^[A-Za-z0-9_.-]{1,64}$/;

/** Is this a team name a token may claim? */
export function isTeamName(value: unknown): value is string {
  return typeof value === 'string' && TEAM_NAME_PATTERN.test(value);
}
