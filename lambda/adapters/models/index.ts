import { BedrockRuntimeClient } from '@aws-sdk/client-bedrock-runtime';
import type { ModelConfig } from '../../config';
import type { ModelSpec } from '../../core/models';
import type { ModelPort } from '../../services/ports';
import { BedrockModel } from './bedrock';
import { EchoModel } from './echo';

/** The configured chat model (`MODEL`): the built-in echo model or Bedrock. */
export function createChatModel(config: ModelConfig): ModelPort {
  return config.kind === 'bedrock'
    ? new BedrockModel(new BedrockRuntimeClient({}), config.modelId)
    : new EchoModel({ delayMs: config.echoDelayMs, repeat: config.echoRepeat });
}

/**
 * Every configured model with its adapter, by id: echo models share the local echo settings;
 * Bedrock models share one client.
 */
export function createModelCatalog(
  models: readonly ModelSpec[],
  echo: { readonly echoDelayMs: number; readonly echoRepeat: number },
): Map<string, { spec: ModelSpec; port: ModelPort }> {
  const bedrock = models.some((m) => m.kind === 'bedrock') ? new BedrockRuntimeClient({}) : undefined;
  return new Map(
    models.map((spec) => {
      const port: ModelPort =
        spec.kind === 'bedrock' && bedrock
          ? new BedrockModel(bedrock, spec.modelId!)
          : new EchoModel({ delayMs: echo.echoDelayMs, repeat: echo.echoRepeat });
      return [spec.id, { spec, port }];
    }),
  );
}

export { BedrockModel, RetryableModelError } from './bedrock';
export { EchoModel } from './echo';
