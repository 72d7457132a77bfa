import { describe, expect, it } from 'vitest';
import { parseAdminRequest } from '../../lambda/core/admin';
import { limitReason } from '../../lambda/core/limit-reason';
import { hasGlobalLimits } from '../../lambda/core/limiter/global/limits';
import { parseLimitsConfig } from '../../lambda/core/limiter/policy';
import { sharedLimitOf, teamLimitsOf, teamOf } from '../../lambda/core/limiter/teams';
import { parseCommand, UsageError } from '../../local/admin/args';
import { renderAdminResponse, renderTeamUsage } from '../../local/admin/render';

const NOW = Date.UTC(2026, 11, 3, 12, 0, 0);

describe('limits.teams and limits.teamDefaults', () => {
  it('parses each team as the global limits are parsed: shards derived, monthly cost in USD', () => {
    const config = parseLimitsConfig({
      teams: { research: { requestsInFlight: 2, monthlyCostUsd: 500 }, 'ops.eu-1': { hourlyMessages: 100 } },
      teamDefaults: { dailyTokens: 1_000_000, shadow: ['dailyTokens'] },
    });
    expect(config.teams?.research).toEqual({ requestsInFlight: 2, monthlyCostUsd: 500, shards: 2 });
    expect(config.teams?.['ops.eu-1']).toEqual({ hourlyMessages: 100, shards: 4 });
    expect(config.teamDefaults).toEqual({ dailyTokens: 1_000_000, shadow: ['dailyTokens'], shards: 4 });
    // The global part on the monthly cost kind makes `global.monthlyCostUsd` exist too.
    expect(parseLimitsConfig({ global: { monthlyCostUsd: 12.5 } }).global).toEqual({
      monthlyCostUsd: 12.5,
      shards: 4,
    });
  });

  it('refuses a team name outside the safe characters, naming it', () => {
    expect(() => parseLimitsConfig({ teams: { 'a#b': { requestsInFlight: 2 } } })).toThrow(
      /"a#b" is not a team name: 1 to 64 of A-Z a-z 0-9 _ \. -\n {2}→ at teams\["a#b"\]/,
    );
    expect(() => parseLimitsConfig({ teams: { ['x'.repeat(65)]: { requestsInFlight: 2 } } })).toThrow(
      /is not a team name/,
    );
  });

  it('refuses an unknown team limit, a non-positive one, and more shards than a count allows', () => {
    expect(() => parseLimitsConfig({ teams: { t: { messagesPerMinute: 5 } } })).toThrow(/teams\.t/);
    expect(() => parseLimitsConfig({ teamDefaults: { requestsInFlight: 0 } })).toThrow(
      /teamDefaults\.requestsInFlight/,
    );
    expect(() => parseLimitsConfig({ teams: { t: { hourlyMessages: 3, shards: 4 } } })).toThrow(
      /shards must not exceed .*\n {2}→ at teams\.t\.shards/,
    );
  });

  it("applies a team's own entry whole, else the defaults; neither: no limits", () => {
    const config = parseLimitsConfig({
      teams: { own: { hourlyMessages: 10 }, none: {} },
      teamDefaults: { requestsInFlight: 3 },
    });
    expect(teamLimitsOf(config, 'own', hasGlobalLimits)).toEqual({ hourlyMessages: 10, shards: 4 });
    expect(teamLimitsOf(config, 'other', hasGlobalLimits)).toEqual({ requestsInFlight: 3, shards: 3 });
    expect(teamLimitsOf(config, 'none', hasGlobalLimits)).toBeUndefined();
    expect(teamLimitsOf(parseLimitsConfig({}), 'any', hasGlobalLimits)).toBeUndefined();
  });
});

describe('the team in effect and its refusals', () => {
  it("takes the record's team over the claim's, and ignores a claim that is no team name", () => {
    expect(teamOf('rec', 'claim')).toBe('rec');
    expect(teamOf(undefined, 'claim')).toBe('claim');
    expect(teamOf(undefined, 'no spaces')).toBeUndefined();
    expect(teamOf(undefined, undefined)).toBeUndefined();
  });

  it('names the shared limit of a global or team refusal, and no other', () => {
    expect(sharedLimitOf('team.requestsInFlight')).toBe('requestsInFlight');
    expect(sharedLimitOf('global.hourlyMessages')).toBe('hourlyMessages');
    expect(sharedLimitOf('requestsInFlight')).toBeUndefined();
    expect(sharedLimitOf('team.burst')).toBeUndefined();
  });

  it('gives a team refusal a reason sentence naming the team', () => {
    const reason = limitReason(
      { limit: 'team.requestsInFlight', team: 'research', limits: [], policy: {} as never, queued: 0 },
      2_000,
      NOW,
    );
    expect(reason).toBe(
      "Requests in flight for team research: the team's limit is reached; room again at 12:00:02 UTC.",
    );
  });
});

describe('admin set-team, team-usage and top --team', () => {
  it('parses the payloads and refuses a bad team', () => {
    expect(parseAdminRequest({ operation: 'set-team', userId: 'alice', team: 'research' }).ok).toBe(true);
    expect(parseAdminRequest({ operation: 'set-team', userId: 'alice', team: null }).ok).toBe(true);
    expect(parseAdminRequest({ operation: 'team-usage', team: 'research' }).ok).toBe(true);
    expect(parseAdminRequest({ operation: 'top', team: 'research' })).toMatchObject({
      ok: true,
      request: { by: 'tokens', limit: 10, team: 'research' },
    });
    const bad = parseAdminRequest({ operation: 'set-team', userId: 'alice', team: 'a b' });
    expect(bad).toMatchObject({ ok: false });
    expect(!bad.ok && bad.message).toMatch(/team must be 1 to 64/);
  });

  it('reads the command lines', () => {
    const payload = (argv: string[]) => {
      const parsed = parseCommand(argv);
      return parsed === 'help' ? parsed : parsed.payload;
    };
    expect(payload(['set-team', 'alice', 'research'])).toEqual({
      operation: 'set-team',
      userId: 'alice',
      team: 'research',
    });
    expect(payload(['set-team', 'alice', '--clear'])).toEqual({
      operation: 'set-team',
      userId: 'alice',
      team: null,
    });
    expect(payload(['team-usage', 'research', '--json'])).toEqual({
      operation: 'team-usage',
      team: 'research',
    });
    expect(payload(['top', '--team', 'research'])).toEqual({ operation: 'top', team: 'research' });
    expect(() => parseCommand(['set-team', 'alice'])).toThrow(UsageError);
    expect(() => parseCommand(['set-team', 'alice', 'research', '--clear'])).toThrow(/a team or --clear/);
    expect(() => parseCommand(['team-usage'])).toThrow(/team-usage needs a team/);
    expect(() => parseCommand(['usage', 'alice', '--team', 'x'])).toThrow(/--team does not apply to usage/);
  });

  it("prints the team of a user and a team's usage", () => {
    const usage = renderAdminResponse(
      {
        ok: true,
        operation: 'usage',
        userId: 'alice',
        result: {
          status: { tier: 'pro', limits: [], queue: { queued: 0 } },
          tierSource: 'record',
          team: {
            name: 'research',
            source: 'record',
            limits: [{ name: 'team.requestsInFlight', limit: 2, used: 1 }],
          },
        },
      },
      NOW,
    );
    expect(usage.split('\n')).toContain('team: research (set by an admin)   team.requestsInFlight 1 of 2');
    expect(
      renderTeamUsage(
        {
          team: 'research',
          limits: [{ name: 'team.dailyTokens', limit: 1000, used: 250, unit: 'tokens' }],
          members: [{ userId: 'alice', tokens: 250, costUsd: 0.0001, messages: 2 }],
        },
        NOW,
      ).split('\n'),
    ).toEqual([
      'team research',
      '  team.dailyTokens                  250 of 1000 tokens (25 %)',
      'members by tokens, 2026-12-03 (UTC)',
      '    #  user                           tokens     cost USD  messages',
      '    1  alice                             250     0.000100         2',
    ]);
  });
});
