import {
  type BedrockRuntimeClient,
  ConverseStreamCommand,
  type ConverseStreamCommandOutput,
  type Message,
  ModelTimeoutException,
  ServiceUnavailableException,
  ThrottlingException,
} from '@aws-sdk/client-bedrock-runtime';
import type { ModelEvent, ModelInput, ModelPort } from '../../services/ports';
import { AdapterError } from '../errors';

/** A Bedrock failure worth another attempt (the processor retries these with backoff). */
export class RetryableModelError extends AdapterError {
  readonly retryable = true as const;
}

/**
 * Amazon Bedrock through the Converse stream API. The output is capped with
 * `inferenceConfig.maxTokens` = the reservation's allowance, which is what keeps the daily token
 * budget from being overdrawn; usage comes from the stream's `metadata` event. `input.signal`
 * (the user's stop, the runner's deadline) aborts the ConverseStream request itself: the SDK's
 * HTTP handler destroys the connection while the response streams, so the model stops producing.
 * A conversation's earlier turns go first, as alternating user and assistant messages (SPEC §9.3).
 */
export class BedrockModel implements ModelPort {
  constructor(
    private readonly client: BedrockRuntimeClient,
    private readonly modelId: string,
  ) {}

  async *stream(input: ModelInput): AsyncIterable<ModelEvent> {
    let response: ConverseStreamCommandOutput;
    try {
      response = await this.client.send(
        new ConverseStreamCommand({
          modelId: this.modelId,
          messages: converseMessages(input),
          inferenceConfig: { maxTokens: input.maxOutputTokens },
        }),
        { abortSignal: input.signal },
      );
    } catch (err) {
      throw classify(err);
    }
    let usage: { inputTokens: number; outputTokens: number } | undefined;
    try {
      for await (const event of response.stream ?? []) {
        // A stop (or the deadline): the SDK closes the connection on the same signal, so Bedrock
        // stops generating; nothing read after it is passed on.
        input.signal?.throwIfAborted();
        const e = event as {
          contentBlockDelta?: { delta?: { text?: string } };
          metadata?: { usage?: { inputTokens?: number; outputTokens?: number } };
        };
        const text = e.contentBlockDelta?.delta?.text;
        if (text) yield { type: 'chunk', text };
        if (e.metadata?.usage) {
          usage = {
            inputTokens: e.metadata.usage.inputTokens ?? 0,
            outputTokens: e.metadata.usage.outputTokens ?? 0,
          };
        }
      }
    } catch (err) {
      throw classify(err);
    }
    if (!usage) throw new AdapterError('Bedrock stream ended without usage metadata');
    yield { type: 'done', usage };
  }
}

/**
 * A conversation's earlier turns, then the prompt, as Converse messages: user and assistant
 * alternating, starting and ending with the user. A turn with an empty side (a reply stopped
 * before its first word) is left out: Converse accepts no empty text block.
 */
export function converseMessages(input: Pick<ModelInput, 'prompt' | 'turns'>): Message[] {
  const earlier = (input.turns ?? []).filter((turn) => turn.user.length > 0 && turn.assistant.length > 0);
  return [
    ...earlier.flatMap((turn): Message[] => [
      { role: 'user', content: [{ text: turn.user }] },
      { role: 'assistant', content: [{ text: turn.assistant }] },
    ]),
    { role: 'user', content: [{ text: input.prompt }] },
  ];
}

function classify(err: unknown): unknown {
  if (
    err instanceof ThrottlingException ||
    err instanceof ServiceUnavailableException ||
    err instanceof ModelTimeoutException
  ) {
    return new RetryableModelError('Bedrock is busy', { cause: err });
  }
  return err;
}
