/**
 * `$connect`: runs after the authorizer accepted the token. Limits connection attempts per source
 * IP (429 when over) and registers the connection for replies to find the user's other devices.
 */
import type { APIGatewayProxyResultV2, Context } from 'aws-lambda';
import { flushObservability, logger } from '../adapters/observability';
import { connectRuntime } from '../adapters/runtime/connect';
import { identityFromAuthorizer, type WebSocketRequestContext } from '../core/identity';

/** API Gateway closes a WebSocket after two hours at most; the record outlives it a little. */
const CONNECTION_TTL_SECONDS = 2 * 3600 + 600;

export async function handler(
  event: { requestContext: WebSocketRequestContext; headers?: Record<string, string | undefined> },
  context?: Context,
): Promise<APIGatewayProxyResultV2> {
  const rt = connectRuntime();
  logger.addContext(context ?? ({} as Context));
  try {
    const { connectionId, identity: source } = event.requestContext;
    const identity = identityFromAuthorizer(event.requestContext.authorizer);
    const sourceIp = source?.sourceIp ?? 'unknown';
    const nowMs = rt.now();
    const attempt = await rt.attempts.consume(sourceIp, rt.config.connectLimitPerMinute, nowMs);
    if (!attempt.allowed) {
      logger.warn('connection attempts over the limit', { sourceIp, retryAfterMs: attempt.retryAfterMs });
      return {
        statusCode: 429,
        headers: { 'Retry-After': String(Math.ceil(attempt.retryAfterMs / 1000)) },
        body: 'Too many connection attempts',
      };
    }
    await rt.connections.register({
      connectionId,
      userId: identity.userId,
      tier: identity.tier,
      sourceIp,
      connectedAtEpochMs: nowMs,
      ttlSeconds: CONNECTION_TTL_SECONDS,
    });
    logger.info('connected', { userId: identity.userId, connectionId });
    return { statusCode: 200 };
  } finally {
    flushObservability();
  }
}
