/**
 * The Message function: every chat route (`sendMessage`, `status`, `cancel`, `resume`, `ping`,
 * `$default`). Parse the frame, call one service operation, map refusals to protocol errors.
 */
import type { APIGatewayProxyWebsocketEventV2WithRequestContext, Context } from 'aws-lambda';
import { flushObservability, logger } from '../adapters/observability';
import { chatRuntime } from '../adapters/runtime/message';
import { identityFromAuthorizer, isTokenExpired, type WebSocketRequestContext } from '../core/identity';
import { errorMessage, parseClientFrame, pong } from '../core/protocol';

export type MessageEvent = APIGatewayProxyWebsocketEventV2WithRequestContext<WebSocketRequestContext>;

export async function handler(event: MessageEvent, context?: Context): Promise<{ statusCode: number }> {
  const rt = chatRuntime();
  const { connectionId } = event.requestContext;
  logger.addContext(context ?? ({} as Context));
  try {
    const identity = identityFromAuthorizer(event.requestContext.authorizer);
    // API Gateway authorizes only at `$connect`: a connection outlives its token unless frames
    // after `exp` are refused here. The frame does nothing else; the connection is closed.
    if (isTokenExpired(identity, rt.now())) {
      logger.info('frame refused: token expired', { userId: identity.userId });
      await rt.sender.send(
        connectionId,
        errorMessage(
          { code: 'TOKEN_EXPIRED', message: 'Your token has expired; reconnect with a new one.' },
          rt.now(),
        ),
      );
      await rt.notifier.close(connectionId);
      return { statusCode: 200 };
    }
    const parsed = parseClientFrame(event.body, { maxMessageChars: rt.config.maxMessageChars });
    if (!parsed.ok) {
      logger.info('frame refused', { code: parsed.error.code, userId: identity.userId });
      await rt.sender.send(connectionId, errorMessage(parsed.error, rt.now()));
      return { statusCode: 200 };
    }
    const request = parsed.request;
    switch (request.action) {
      case 'ping':
        await rt.sender.send(connectionId, pong(rt.now()));
        break;
      case 'status':
        await rt.sender.send(connectionId, await rt.chat.status(identity));
        break;
      case 'resume':
        await rt.chat.resume(identity, connectionId);
        break;
      case 'cancel': {
        const outcome = await rt.chat.cancel(identity, connectionId, request.requestId);
        if (outcome.kind === 'refused') await rt.sender.send(connectionId, errorMessage(outcome, rt.now()));
        break;
      }
      case 'sendMessage': {
        const outcome = await rt.chat.sendMessage(identity, connectionId, {
          message: request.message,
          requestId: request.requestId,
          conversationId: request.conversationId,
          maxTokens: request.maxTokens,
          model: request.model,
        });
        if (outcome.kind === 'refused') await rt.sender.send(connectionId, errorMessage(outcome, rt.now()));
        logger.info('sendMessage', {
          userId: identity.userId,
          requestId: outcome.requestId,
          outcome: outcome.kind,
          // The request's tier, team claim and model, for export-traffic (no contents). The team is
          // the token's claim: a user's record (admin set-team) wins in the limiter, not here.
          tier: identity.tier,
          team: identity.team,
          model: request.model,
        });
        break;
      }
    }
    return { statusCode: 200 };
  } catch (err) {
    logger.error('message handler failed', { error: err as Error });
    await rt.sender
      .send(
        connectionId,
        errorMessage({ code: 'INTERNAL_ERROR', message: 'Something went wrong.' }, rt.now()),
      )
      .catch(() => undefined);
    return { statusCode: 500 };
  } finally {
    flushObservability();
  }
}
