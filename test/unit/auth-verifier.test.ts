import { createServer } from 'node:http';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  JwtVerifier,
  type VerifierConfig,
  VerifierConfigError,
  verifierConfigFromEnv,
} from '../../lambda/adapters/auth/jwt-verifier';
import { ENV } from '../../lambda/core/resources';

const SECRET = 'unit-test-secret';
const NOW_SECONDS = Math.floor(Date.now() / 1000);

function hs256(claims: { exp?: number; sub?: string }): Promise<string> {
  const jwt = new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject(claims.sub ?? 'alice');
  if (claims.exp !== undefined) jwt.setExpirationTime(claims.exp);
  return jwt.sign(new TextEncoder().encode(SECRET));
}

describe('JwtVerifier and token lifetimes', () => {
  const verifier = new JwtVerifier({ mode: 'secret', secret: SECRET });

  it('accepts a token with an expiry in the future', async () => {
    expect(await verifier.verify(await hs256({ exp: NOW_SECONDS + 60 }))).toEqual({
      ok: true,
      identity: { userId: 'alice', tier: undefined, expiresAtEpochSeconds: NOW_SECONDS + 60 },
    });
  });

  it('refuses a token without exp: it would be valid forever', async () => {
    expect(await verifier.verify(await hs256({}))).toEqual({ ok: false, reason: 'invalid' });
  });

  it('refuses an expired token as expired', async () => {
    expect(await verifier.verify(await hs256({ exp: NOW_SECONDS - 60 }))).toEqual({
      ok: false,
      reason: 'expired',
    });
  });
});

describe('JwtVerifier in OIDC mode', () => {
  let server: ReturnType<typeof createServer>;
  let issuer: string;
  let sign: (withExp: boolean) => Promise<string>;

  beforeAll(async () => {
    const { publicKey, privateKey } = await generateKeyPair('ES256');
    const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
    server = createServer((_req, res) => {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ keys: [jwk] }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    issuer = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    sign = (withExp) => {
      const jwt = new SignJWT({})
        .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
        .setSubject('carol')
        .setIssuer(issuer)
        .setAudience('chat');
      return (withExp ? jwt.setExpirationTime('5m') : jwt).sign(privateKey);
    };
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it("refuses an issuer's token without exp, and accepts it with one", async () => {
    const verifier = new JwtVerifier({ mode: 'oidc', issuer, audience: 'chat' });
    expect(await verifier.verify(await sign(false))).toEqual({ ok: false, reason: 'invalid' });
    expect((await verifier.verify(await sign(true))).ok).toBe(true);
  });

  it('cannot be built without an audience (any token of the issuer would do)', () => {
    const config = { mode: 'oidc', issuer } as unknown as VerifierConfig;
    expect(() => new JwtVerifier(config)).toThrow(VerifierConfigError);
  });
});

describe('verifierConfigFromEnv (cold start)', () => {
  it('requires JWT_AUDIENCE when JWT_ISSUER is set, naming it', () => {
    expect(() => verifierConfigFromEnv({ [ENV.jwtIssuer]: 'https://issuer.example.com' })).toThrow(
      /JWT_AUDIENCE is required/,
    );
  });

  it('reads an OIDC issuer with its audience and JWKS URL', () => {
    expect(
      verifierConfigFromEnv({
        [ENV.jwtIssuer]: 'https://issuer.example.com',
        [ENV.jwtAudience]: 'chat',
        [ENV.jwtJwksUrl]: 'https://issuer.example.com/keys',
      }),
    ).toEqual({
      mode: 'oidc',
      issuer: 'https://issuer.example.com',
      audience: 'chat',
      jwksUrl: 'https://issuer.example.com/keys',
    });
  });

  it('prefers the secret ARN in AWS and refuses an environment with no way to verify', () => {
    expect(verifierConfigFromEnv({ [ENV.jwtSecretArn]: 'arn:aws:secretsmanager:x' })).toEqual({
      mode: 'secret-arn',
      secretArn: 'arn:aws:secretsmanager:x',
    });
    expect(() => verifierConfigFromEnv({})).toThrow(VerifierConfigError);
  });
});
