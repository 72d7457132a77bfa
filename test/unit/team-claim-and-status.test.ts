import { SignJWT } from 'jose';
import { describe, expect, it, vi } from 'vitest';
import { JwtVerifier } from '../../lambda/adapters/auth/jwt-verifier';
import { identityFromAuthorizer } from '../../lambda/core/identity';
import type { UserStatus } from '../../lambda/core/limiter/decision';
import { DEFAULT_TIER_LIMITS } from '../../lambda/core/limiter/policy';
import { ENV } from '../../lambda/core/resources';
import { statusMessage } from '../../lambda/core/status-message';
import { isTeamName } from '../../lambda/core/team-name';

const SECRET = 'unit-test-secret';
const NOW_SECONDS = Math.floor(Date.now() / 1000);
const T0 = Date.UTC(2026, 11, 3, 12, 0, 0);
const HOUR = 3_600_000;

function token(claims: Record<string, unknown>): Promise<string> {
  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject('alice')
    .setExpirationTime(NOW_SECONDS + 60)
    .sign(new TextEncoder().encode(SECRET));
}

describe('the token team claim (SPEC §9.4)', () => {
  const verifier = new JwtVerifier({ mode: 'secret', secret: SECRET });

  it('names a team with 1 to 64 letters, digits, _ . and -, nothing else', () => {
    for (const good of ['eng', 'a', 'Team_1.ops-EU', 'x'.repeat(64)]) expect(isTeamName(good)).toBe(true);
    for (const bad of [
      '',
      'x'.repeat(65),
      'eng team',
      'eng/ops',
      'é',
      'eng#1',
      'a:b',
      7,
      null,
      undefined,
      ['eng'],
    ])
      expect(isTeamName(bad)).toBe(false);
  });

  it('passes a valid claim on with the identity', async () => {
    expect(await verifier.verify(await token({ team: 'eng', tier: 'pro' }))).toEqual({
      ok: true,
      identity: { userId: 'alice', tier: 'pro', team: 'eng', expiresAtEpochSeconds: NOW_SECONDS + 60 },
    });
  });

  it('leaves the team out of a token that claims none', async () => {
    const result = await verifier.verify(await token({ tier: 'pro' }));
    expect(result.ok && 'team' in result.identity).toBe(false);
  });

  it('refuses a token whose team claim is malformed: ignoring it would let the holder out of the team budget', async () => {
    for (const team of ['', 'eng team', 'x'.repeat(65), 'eng/../ops', 42, null, ['eng'], { name: 'eng' }])
      expect(await verifier.verify(await token({ team }))).toEqual({ ok: false, reason: 'invalid' });
  });

  it('reads the team from the authorizer context, and nothing malformed from it', () => {
    expect(identityFromAuthorizer({ userId: 'alice', tier: 'pro', team: 'eng' })).toEqual({
      userId: 'alice',
      tier: 'pro',
      team: 'eng',
    });
    const none = identityFromAuthorizer({ userId: 'alice', tier: 'pro' });
    expect('team' in none).toBe(false);
    expect('team' in identityFromAuthorizer({ userId: 'alice', team: 'no such/team' })).toBe(false);
  });
});

describe('the $connect authorizer and the team claim', () => {
  const event = (token: string) => ({
    type: 'REQUEST',
    methodArn: 'arn:aws:execute-api:eu-west-1:123456789012:abc/prod/$connect',
    queryStringParameters: { token },
  });

  it('passes the team on in the context like the tier, and denies a malformed one (403)', async () => {
    vi.stubEnv(ENV.jwtSecret, SECRET);
    try {
      const { handler } = await import('../../lambda/handlers/authorizer');
      const allowed = await handler(event(await token({ tier: 'pro', team: 'eng' })) as never);
      expect(allowed.policyDocument.Statement[0]).toMatchObject({ Effect: 'Allow' });
      expect(allowed.context).toEqual({
        userId: 'alice',
        tier: 'pro',
        team: 'eng',
        tokenExpiresAtEpochSeconds: NOW_SECONDS + 60,
      });
      const teamless = await handler(event(await token({})) as never);
      expect(teamless.context).toEqual({ userId: 'alice', tokenExpiresAtEpochSeconds: NOW_SECONDS + 60 });
      const denied = await handler(event(await token({ tier: 'pro', team: 'eng ops' })) as never);
      expect(denied).toMatchObject({
        principalId: 'anonymous',
        policyDocument: { Statement: [{ Effect: 'Deny' }] },
      });
      expect(denied.context).toBeUndefined();
    } finally {
      vi.unstubAllEnvs();
    }
  });
});

describe('status carries the team', () => {
  const base: UserStatus = {
    userId: 'alice',
    tier: 'free',
    policy: DEFAULT_TIER_LIMITS.free,
    limits: [],
    queued: [],
    global: [
      {
        name: 'global.requestsInFlight',
        limit: 50,
        used: 3,
        remaining: 47,
        unit: 'requests',
        resetAtEpochMs: T0,
        shadow: false,
      },
    ],
  };

  it('shows the team name, its source and its limits as the global ones are shown', () => {
    const status: UserStatus = {
      ...base,
      team: {
        name: 'eng',
        source: 'token',
        limits: [
          {
            name: 'team.requestsInFlight',
            limit: 2,
            used: 2,
            remaining: 0,
            unit: 'requests',
            resetAtEpochMs: T0 + 960_000,
            shadow: false,
          },
          {
            name: 'team.dailyCostUsd',
            limit: 20,
            used: 4.5,
            remaining: 15.5,
            unit: 'usd',
            resetAtEpochMs: T0 + 12 * HOUR,
            shadow: true,
          },
        ],
      },
    };
    const message = statusMessage(status, T0);
    expect(message.team).toEqual({
      name: 'eng',
      source: 'token',
      limits: [
        {
          name: 'team.requestsInFlight',
          limit: 2,
          used: 2,
          remaining: 0,
          unit: 'requests',
          resetAt: T0 + 960_000,
          shadow: false,
        },
        {
          name: 'team.dailyCostUsd',
          limit: 20,
          used: 4.5,
          remaining: 15.5,
          unit: 'usd',
          resetAt: T0 + 12 * HOUR,
          shadow: true,
        },
      ],
    });
    expect(message.global).toEqual([
      {
        name: 'global.requestsInFlight',
        limit: 50,
        used: 3,
        remaining: 47,
        unit: 'requests',
        resetAt: T0,
        shadow: false,
      },
    ]);
    // Like the global totals, the team's are not the user's own: the RateLimit fields (the user's
    // own limits, here none) leave them out.
    expect(message.rateLimitPolicy).toBeUndefined();
    expect(message.rateLimit).toBeUndefined();
  });

  it('shows a team without limits set as an empty list, and no team field for a user without one', () => {
    expect(statusMessage({ ...base, team: { name: 'ops', source: 'record', limits: [] } }, T0).team).toEqual({
      name: 'ops',
      source: 'record',
      limits: [],
    });
    expect('team' in statusMessage(base, T0)).toBe(false);
  });
});
