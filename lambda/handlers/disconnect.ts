/** `$disconnect`: forgets the connection (best effort, as API Gateway may not always call it). */
import type { Context } from 'aws-lambda';
import { flushObservability, logger } from '../adapters/observability';
import { disconnectRuntime } from '../adapters/runtime/disconnect';
import type { WebSocketRequestContext } from '../core/identity';

export async function handler(
  event: { requestContext: WebSocketRequestContext },
  context?: Context,
): Promise<{ statusCode: number }> {
  logger.addContext(context ?? ({} as Context));
  try {
    await disconnectRuntime().connections.remove(event.requestContext.connectionId);
    return { statusCode: 200 };
  } finally {
    flushObservability();
  }
}
