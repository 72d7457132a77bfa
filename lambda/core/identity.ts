import { isTier, type Tier } from './limiter/tiers';
import { isTeamName } from './team-name';

/** What the authorizer passes on for every event of a connection (API Gateway adds principalId). */
export interface AuthorizerContext {
  readonly principalId?: string;
  readonly userId?: string;
  readonly tier?: string;
  /** The token's `team` claim, when it has one (the authorizer refused a malformed one). */
  readonly team?: string;
  /**
   * The token's `exp` in epoch seconds. API Gateway may hand a context number on as a string, so
   * both are read.
   */
  readonly tokenExpiresAtEpochSeconds?: number | string;
}

export interface WebSocketRequestContext {
  readonly connectionId: string;
  readonly routeKey: string;
  readonly authorizer?: AuthorizerContext;
  readonly identity?: { readonly sourceIp?: string };
  readonly [key: string]: unknown;
}

/**
 * The user's identity comes only from the authorizer's context, never from the message body.
 * A missing context means the API is misconfigured (a route reachable without `$connect`'s
 * authorizer), so it fails loudly.
 */
/**
 * Who sent a frame: the user, and the tier and team their token claims (the user's record may
 * override either).
 */
export interface Identity {
  readonly userId: string;
  readonly tier?: Tier;
  /** The token's `team` claim (SPEC §9.4): the limiter's `claimTeam`. */
  readonly team?: string;
  /** When the connection's token expires (epoch ms); absent for a context without one. */
  readonly tokenExpiresAtEpochMs?: number;
}

export function identityFromAuthorizer(authorizer: AuthorizerContext | undefined): Identity {
  const userId = authorizer?.userId ?? authorizer?.principalId;
  if (!userId) throw new Error('no authorizer context on the event');
  const exp = Number(authorizer?.tokenExpiresAtEpochSeconds);
  return {
    userId,
    tier: isTier(authorizer?.tier) ? authorizer.tier : undefined,
    ...(isTeamName(authorizer?.team) ? { team: authorizer.team } : {}),
    ...(authorizer?.tokenExpiresAtEpochSeconds !== undefined && Number.isFinite(exp)
      ? { tokenExpiresAtEpochMs: exp * 1000 }
      : {}),
  };
}

/** Has the token the connection was opened with expired? Frames after that are refused. */
export function isTokenExpired(identity: Identity, nowMs: number): boolean {
  return identity.tokenExpiresAtEpochMs !== undefined && nowMs >= identity.tokenExpiresAtEpochMs;
}
