/**
 * The reply runner's composition root: the runner over the user-facing parts, the request queue
 * (with its dead-letter queue) and the chat models. The only root that loads the Bedrock client.
 */
import { DEFAULT_RUNNER_SETTINGS, ReplyRunner } from '../../services/reply-runner';
import { ConversationStore } from '../conversation-store';
import { createChatModel, createModelCatalog } from '../models';
import { logPort, metricsPort } from '../observability';
import { timerSleep } from './common';
import { once } from './once';
import { requestQueue } from './sqs';
import { userFacing } from './user-facing';

export const replyRuntime = once(() => {
  const base = userFacing('reply');
  const { config } = base;
  const runner = new ReplyRunner({
    ...base,
    queue: requestQueue(config, { deadLetters: true }),
    model: createChatModel(config.model),
    catalog: createModelCatalog(
      config.models,
      config.model.kind === 'echo' ? config.model : { echoDelayMs: 20, echoRepeat: 1 },
    ),
    metrics: metricsPort,
    log: logPort,
    conversations: {
      port: new ConversationStore(base.dynamo, config.tables.requests!),
      ttlSeconds: config.conversationTtlSeconds,
    },
    settings: DEFAULT_RUNNER_SETTINGS,
    sleep: timerSleep,
  });
  return { ...base, runner };
});
