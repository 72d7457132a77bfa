/**
 * The Message function's composition root: the chat service over the user-facing parts, the
 * request queue and the hand-off to the reply runner. No model, no health probe.
 */
import { ChatService } from '../../services/chat-service';
import { ConversationStore } from '../conversation-store';
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
    conversations: new ConversationStore(base.dynamo, config.tables.requests!),
    settings: {
      maxQueuedPerUser: config.maxQueuedPerUser,
      maxQueueWaitSeconds: config.maxQueueWaitSeconds,
      modelMaxOutputTokens: config.modelMaxOutputTokens,
      conversationTurns: config.conversationTurns,
      maxInputTokens: Object.fromEntries(
        Object.entries(config.tiers).flatMap(([tier, policy]) =>
          policy.maxInputTokens === undefined ? [] : [[tier, policy.maxInputTokens]],
        ),
      ),
    },
  });
  return { ...base, chat };
});
