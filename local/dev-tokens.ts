import { SignJWT } from 'jose';
import type { Tier } from '../lambda/core/limiter/tiers';
import { ENV } from '../lambda/core/resources';
import { stackJwtSecret } from './admin/stack-outputs';

/**
 * The development-only HS256 secret of `npm start` and `npm run token`. It lives here, under
 * local/, so no Lambda bundle can contain it (test/unit/auth-dev-secret.test.ts bundles every
 * function to check); deployed stacks generate a secret in Secrets Manager or trust an OIDC issuer.
 */
export const DEV_JWT_SECRET = 'chat-limiter-local-development-secret-do-not-deploy';

/**
 * Signs an HS256 development token (`sub` = user, optional `tier` and `team` claims) with `JWT_SECRET` or the
 * development secret. For the local stack, tests, and deployed stacks in secret mode (`--secret`).
 */
export async function signDevToken(options: {
  userId: string;
  tier?: Tier;
  /** The `team` claim (SPEC §9.4); the authorizer refuses a token whose team is malformed. */
  team?: string;
  secret?: string;
  /** @default 86400 (24 h); negative values make an already-expired token (for tests). */
  expiresInSeconds?: number;
  nowMs?: number;
}): Promise<string> {
  const nowSeconds = Math.floor((options.nowMs ?? Date.now()) / 1000);
  const secret = options.secret ?? process.env[ENV.jwtSecret] ?? DEV_JWT_SECRET;
  const claims = {
    ...(options.tier ? { tier: options.tier } : {}),
    ...(options.team !== undefined ? { team: options.team } : {}),
  };
  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(options.userId)
    .setIssuedAt(nowSeconds)
    .setExpirationTime(nowSeconds + (options.expiresInSeconds ?? 86_400))
    .sign(new TextEncoder().encode(secret));
}

/**
 * A token for a deployed stack in secret mode (`npm run token -- --stack NAME`): the stack's own
 * HS256 secret is read from Secrets Manager with the caller's IAM rights (the `JwtSecretArn`
 * output names it) and used once, never printed or stored.
 */
export async function mintStackToken(options: {
  stackName: string;
  region?: string;
  userId: string;
  tier?: Tier;
  team?: string;
  expiresInSeconds?: number;
  nowMs?: number;
}): Promise<string> {
  const secret = await stackJwtSecret(options.stackName, options.region);
  return signDevToken({ ...options, secret });
}
