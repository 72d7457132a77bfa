/**
 * The `$connect` REQUEST authorizer. API Gateway answers 401 itself when the `token` query
 * parameter is missing (it is the identity source); a present but expired or forged token gets a
 * Deny policy, which API Gateway turns into 403 (so does a malformed `team` claim). The user id, the
 * tier, the team and the token's expiry travel on as the context (strings, numbers or booleans
 * only): the Message function refuses frames once the token has expired (issue 20, finding 19),
 * since API Gateway authorizes only at `$connect`.
 */
import type { APIGatewayAuthorizerResult, APIGatewayRequestAuthorizerEvent } from 'aws-lambda';
import { logger } from '../adapters/observability';
import { authorizerRuntime } from '../adapters/runtime/authorizer';
import type { AuthorizerContext } from '../core/identity';

export async function handler(event: APIGatewayRequestAuthorizerEvent): Promise<APIGatewayAuthorizerResult> {
  const { verifier } = authorizerRuntime();
  const token = event.queryStringParameters?.token;
  // API Gateway maps this exact message to 401 Unauthorized.
  if (!token) throw new Error('Unauthorized');
  const result = await verifier.verify(token);
  if (!result.ok) {
    logger.info('token refused', {
      reason: result.reason,
      sourceIp: event.requestContext?.identity?.sourceIp,
    });
    return policy('anonymous', 'Deny', event.methodArn);
  }
  const { userId, tier, team, expiresAtEpochSeconds } = result.identity;
  const context = {
    userId,
    tokenExpiresAtEpochSeconds: expiresAtEpochSeconds,
    ...(tier ? { tier } : {}),
    ...(team ? { team } : {}),
  } satisfies AuthorizerContext;
  return { ...policy(userId, 'Allow', event.methodArn), context };
}

function policy(principalId: string, effect: 'Allow' | 'Deny', resource: string): APIGatewayAuthorizerResult {
  return {
    principalId,
    policyDocument: {
      Version: '2012-10-17',
      Statement: [{ Action: 'execute-api:Invoke', Effect: effect, Resource: resource }],
    },
  };
}
