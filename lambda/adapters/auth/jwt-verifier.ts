import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { createRemoteJWKSet, errors, type JWTPayload, type JWTVerifyGetKey, jwtVerify } from 'jose';
import { isTier, type Tier } from '../../core/limiter/tiers';
import { ENV } from '../../core/resources';
import { isTeamName } from '../../core/team-name';
import { AdapterError } from '../errors';

export interface VerifiedIdentity {
  readonly userId: string;
  readonly tier?: Tier;
  /** The token's `team` claim (SPEC §9.4), when it has one. */
  readonly team?: string;
  /** The token's `exp` (required of every token): frames after it are refused. */
  readonly expiresAtEpochSeconds: number;
}

export type VerifyResult =
  | { readonly ok: true; readonly identity: VerifiedIdentity }
  | { readonly ok: false; readonly reason: 'expired' | 'invalid' };

export type VerifierConfig =
  | { readonly mode: 'secret'; readonly secret: string }
  | { readonly mode: 'secret-arn'; readonly secretArn: string; readonly client?: SecretsManagerClient }
  | {
      readonly mode: 'oidc';
      readonly issuer: string;
      readonly jwksUrl?: string;
      /** Required: an issuer signs tokens for many clients; only those meant for this API count. */
      readonly audience: string;
    };

/** A verifier configuration that cannot work: thrown at cold start, before any token is seen. */
export class VerifierConfigError extends AdapterError {
  constructor(message: string) {
    super(`invalid configuration: ${message}`);
  }
}

/**
 * Verifies chat tokens: HS256 with a shared secret (locally from `JWT_SECRET`, in AWS read once
 * per cold start from Secrets Manager), or an OIDC issuer's RS256/ES256 keys (e.g. Cognito).
 * `alg: none` and algorithm confusion are refused by pinning the algorithms per mode; a token
 * without `exp` is refused (it would be valid forever); in OIDC mode so is a token for another
 * audience.
 */
export class JwtVerifier {
  private key: Promise<Uint8Array | JWTVerifyGetKey> | undefined;

  constructor(private readonly config: VerifierConfig) {
    if (config.mode === 'oidc' && !config.audience)
      throw new VerifierConfigError('OIDC mode needs an audience');
  }

  async verify(token: string): Promise<VerifyResult> {
    try {
      const key = await this.resolveKey();
      const options =
        this.config.mode === 'oidc'
          ? {
              issuer: this.config.issuer,
              audience: this.config.audience,
              algorithms: ['RS256', 'ES256'],
              requiredClaims: ['exp'],
            }
          : { algorithms: ['HS256'], requiredClaims: ['exp'] };
      const { payload } =
        typeof key === 'function'
          ? await jwtVerify(token, key, options)
          : await jwtVerify(token, key, options);
      return identityFrom(payload);
    } catch (err) {
      if (err instanceof errors.JWTExpired) return { ok: false, reason: 'expired' };
      if (err instanceof errors.JOSEError || err instanceof TypeError)
        return { ok: false, reason: 'invalid' };
      throw err;
    }
  }

  private resolveKey(): Promise<Uint8Array | JWTVerifyGetKey> {
    this.key ??= this.loadKey().catch((err) => {
      this.key = undefined; // try again on the next invocation
      throw err;
    });
    return this.key;
  }

  private async loadKey(): Promise<Uint8Array | JWTVerifyGetKey> {
    const config = this.config;
    switch (config.mode) {
      case 'secret':
        return new TextEncoder().encode(config.secret);
      case 'secret-arn': {
        const client = config.client ?? new SecretsManagerClient({});
        const { SecretString } = await client.send(new GetSecretValueCommand({ SecretId: config.secretArn }));
        if (!SecretString) throw new AdapterError('the JWT secret is empty');
        return new TextEncoder().encode(SecretString);
      }
      case 'oidc':
        return createRemoteJWKSet(
          new URL(config.jwksUrl ?? `${config.issuer.replace(/\/$/, '')}/.well-known/jwks.json`),
        );
    }
  }
}

function identityFrom(payload: JWTPayload): VerifyResult {
  if (typeof payload.sub !== 'string' || payload.sub.length === 0 || payload.sub.length > 256) {
    return { ok: false, reason: 'invalid' };
  }
  // An unknown tier claim is ignored (the user gets their record's tier or `free`), not trusted.
  const tier = isTier(payload.tier) ? payload.tier : undefined;
  // A malformed team claim refuses the token instead: ignored, it would let its holder out of the
  // team's shared budget (a tier ignored only lowers the holder to `free`).
  const claimed = payload.team;
  if (claimed !== undefined && !isTeamName(claimed)) return { ok: false, reason: 'invalid' };
  const team = claimed === undefined ? {} : { team: claimed };
  // `exp` is a required claim (jwtVerify refused a token without one).
  return {
    ok: true,
    identity: { userId: payload.sub, tier, ...team, expiresAtEpochSeconds: payload.exp! },
  };
}

/** The verifier configuration from the authorizer's environment. */
export function verifierConfigFromEnv(
  env: Readonly<Record<string, string | undefined>> = process.env,
): VerifierConfig {
  const issuer = env[ENV.jwtIssuer];
  if (issuer) {
    const audience = env[ENV.jwtAudience];
    if (!audience)
      throw new VerifierConfigError(`${ENV.jwtIssuer} is set, so ${ENV.jwtAudience} is required`);
    return { mode: 'oidc', issuer, jwksUrl: env[ENV.jwtJwksUrl] || undefined, audience };
  }
  if (env[ENV.jwtSecretArn]) return { mode: 'secret-arn', secretArn: env[ENV.jwtSecretArn]! };
  if (env[ENV.jwtSecret]) return { mode: 'secret', secret: env[ENV.jwtSecret]! };
  throw new VerifierConfigError(`set ${ENV.jwtIssuer}, ${ENV.jwtSecretArn} or ${ENV.jwtSecret}`);
}
