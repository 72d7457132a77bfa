import { BedrockRuntimeClient } from '@aws-sdk/client-bedrock-runtime';
import type { ModelConfig } from '../../config';
import type { ModelPort } from '../../services/ports';
import { BedrockModel } from './bedrock';
import { EchoModel } from './echo';

/** The configured chat model (`MODEL`): the built-in echo model or Bedrock. */
export function createChatModel(config: ModelConfig): ModelPort {
  return config.kind === 'bedrock'
    ? new BedrockModel(new BedrockRuntimeClient({}), config.modelId)
    : new EchoModel({ delayMs: config.echoDelayMs, repeat: config.echoRepeat });
}

export { BedrockModel, RetryableModelError } from './bedrock';
export { EchoModel } from './echo';
