/**
 * The authorizer's composition root: the token verifier, configured once per cold start from the
 * environment (a misconfigured verifier fails the first invocation, before any token is judged).
 */
import { JwtVerifier, verifierConfigFromEnv } from '../auth/jwt-verifier';
import { once } from './once';

export const authorizerRuntime = once(() => ({ verifier: new JwtVerifier(verifierConfigFromEnv()) }));
