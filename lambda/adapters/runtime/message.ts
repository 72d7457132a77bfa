/**
 * The Message function's composition root: the chat service over the user-facing parts, the
 * request queue and the hand-off to the reply runner. No model, no health probe.
 */
import { ChatService } from '../../services/chat-service';
import { logPort, metricsPort } from '../observability';
import { replyHandoff } from './handoff';
import { once } from './once';
import { requestQueue } from './sqs';
import { userFacing } from './user-facing';

export const chatRuntime = once(() => {
  const base = userFacing('message');
  const { config } = base;
  const chat = new ChatService({
    ...base,
    queue: requestQueue(config),
    handoff: replyHandoff(config),
    metrics: metricsPort,
    log: logPort,
    settings: {
      maxQueuedPerUser: config.maxQueuedPerUser,
      maxQueueWaitSeconds: config.maxQueueWaitSeconds,
      modelMaxOutputTokens: config.modelMaxOutputTokens,
    },
  });
  return { ...base, chat };
});
