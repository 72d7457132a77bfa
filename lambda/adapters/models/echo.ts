import { historyTokens } from '../../core/conversation';
import { estimateTokens } from '../../core/tokens';
import type { ModelEvent, ModelInput, ModelPort } from '../../services/ports';

/**
 * The built-in echo model: a deterministic streamed reply ("Echo: " + the message, word by word;
 * a conversation's earlier turns are not echoed, only counted as input)
 * with honest token counts, for local use, tests and benchmarks. Its output is cut at
 * `maxOutputTokens` like a real model's.
 */
export class EchoModel implements ModelPort {
  constructor(
    private readonly options: {
      /** Delay between chunks. @default 20 */
      readonly delayMs: number;
      /**
       * Local only: the message is echoed this many times (`ECHO_REPEAT`), so long and large replies
       * can be produced on purpose. @default 1
       */
      readonly repeat?: number;
      readonly sleep?: (ms: number) => Promise<void>;
    },
  ) {}

  async *stream(input: ModelInput): AsyncIterable<ModelEvent> {
    const sleep = this.options.sleep ?? defaultSleep;
    const body = Array.from({ length: this.options.repeat ?? 1 }, () => input.prompt).join(' ');
    const reply = truncateToTokens(`Echo: ${body}`, input.maxOutputTokens);
    const chunks = reply.match(/\S+\s*/g) ?? [reply];
    for (const [i, text] of chunks.entries()) {
      if (i > 0 && this.options.delayMs > 0) await untilAborted(sleep(this.options.delayMs), input.signal);
      // Stopped (the user's stop, the runner's deadline): no more chunks.
      input.signal?.throwIfAborted();
      yield { type: 'chunk', text };
    }
    yield {
      type: 'done',
      // The earlier turns are read as input (counted as the admission's estimate counts them).
      usage: {
        inputTokens: estimateTokens(input.prompt) + historyTokens(input.turns ?? []),
        outputTokens: estimateTokens(reply),
      },
    };
  }
}

/** The longest prefix whose estimate fits `maxTokens` (four characters per token). */
function truncateToTokens(text: string, maxTokens: number): string {
  const chars = [...text];
  return chars.length <= maxTokens * 4 ? text : chars.slice(0, Math.max(1, maxTokens * 4)).join('');
}

/** The wait, cut short when `signal` aborts (the model stops at once, not after its pause). */
function untilAborted(wait: Promise<void>, signal: AbortSignal | undefined): Promise<void> {
  if (!signal) return wait;
  if (signal.aborted) return Promise.resolve();
  let onAbort: (() => void) | undefined;
  const aborted = new Promise<void>((resolve) => {
    onAbort = () => resolve();
    signal.addEventListener('abort', onAbort, { once: true });
  });
  return Promise.race([wait, aborted]).finally(() => signal.removeEventListener('abort', onAbort!));
}

const defaultSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
