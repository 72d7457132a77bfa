/** What the admin's usage reports and team operations need of the limiter (SPEC §9.4). */
export interface TeamAdminPort {
  /** Today's heaviest users (`team`: only its members) and the global totals. */
  top(
    by: 'tokens' | 'cost' | 'messages',
    limit: number,
    nowMs: number,
    team?: string,
  ): Promise<{ users: readonly unknown[]; global?: readonly unknown[] }>;
  /** A team's limits' totals, and (`members`) its members' usage today. */
  teamUsage(team: string, nowMs: number, options?: { readonly members?: boolean }): Promise<unknown>;
  /** Sets (or with `null` removes) the user's team: it wins over the token's claim. */
  setTeam(userId: string, team: string | null): Promise<unknown>;
}
