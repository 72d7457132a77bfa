import { describeError } from '../core/errors';
import type { TokenReservation } from '../core/limiter/types';
import { costMicroUsd, FREE_PRICE, microUsdToUsd } from '../core/models';
import { messageComplete, type ReplyUsage } from '../core/protocol';
import { estimateTokens } from '../core/tokens';
import { ReplyInterruptedError } from './errors';
import type { LogPort, ModelPort, OutgoingMessage, RequestQueuePort, SettleOutcome } from './ports';
import type { ReplyChannel } from './reply-channel';

export type { ReplyUsage } from '../core/server-messages';
export { ReplyInterruptedError } from './errors';

export interface StreamedReply {
  readonly text: string;
  readonly usage: ReplyUsage;
  /** The `message_complete` to deliver (or keep for `resume`). */
  readonly complete: OutgoingMessage;
}

/**
 * Runs the model for an admitted request and streams its `chunk`s as they come. The model's
 * output is capped at the reservation's allowance, which is what keeps the daily budget from
 * being overdrawn. Returns the `message_complete` without sending it: the caller settles the
 * reservation first. If the model fails, a {@link ReplyInterruptedError} says what it had produced.
 */
export async function streamReply(args: {
  readonly requestId: string;
  readonly prompt: string;
  readonly reservation: TokenReservation;
  readonly model: ModelPort;
  readonly channel: ReplyChannel;
  readonly now: () => number;
  readonly signal?: AbortSignal;
  /** The model that answers, and the one it replaced (soft landing), for `message_complete`. */
  readonly served?: { readonly model?: string; readonly fallbackFrom?: string };
}): Promise<StreamedReply> {
  const { requestId, reservation, channel, now } = args;
  let text = '';
  let usage: { inputTokens: number; outputTokens: number } | undefined;
  try {
    for await (const event of args.model.stream({
      prompt: args.prompt,
      maxOutputTokens: reservation.outputAllowance,
      requestId,
      signal: args.signal,
    })) {
      if (event.type === 'chunk') {
        text += event.text;
        // Coalesced into few posts, each within a frame (a long piece goes out in several).
        await channel.streamText(requestId, event.text);
      } else {
        usage = event.usage;
      }
    }
    await channel.flushText(requestId);
    if (!usage) throw new Error('model stream ended without usage');
  } catch (err) {
    // What was produced reaches the client before the failure says so.
    await channel.flushText(requestId).catch(() => undefined);
    // The model read the prompt once it produced anything; its output is what reached us, capped
    // at the allowance.
    const produced = text.length > 0;
    const outputTokens = produced ? Math.min(reservation.outputAllowance, estimateTokens(text)) : 0;
    const inputTokens = produced ? reservation.inputTokens : 0;
    throw new ReplyInterruptedError(
      { inputTokens, outputTokens, totalTokens: inputTokens + outputTokens },
      produced,
      { cause: err },
    );
  }
  const price = reservation.price ?? FREE_PRICE;
  const totals = {
    ...usage,
    totalTokens: usage.inputTokens + usage.outputTokens,
    costUsd: microUsdToUsd(costMicroUsd(price, usage.inputTokens, usage.outputTokens)),
  };
  return {
    text,
    usage: totals,
    complete: messageComplete(requestId, text, totals, now(), args.served),
  };
}

/**
 * Makes a held or parked SQS wake-up visible now, so the processor serves the user's next queued
 * request at once. If that fails, it comes back by itself when its hold ends.
 */
export async function releaseWakeUp(
  deps: { readonly queue: Pick<RequestQueuePort, 'defer'>; readonly log: LogPort },
  receiptHandle: string,
  requestId: string,
): Promise<void> {
  try {
    await deps.queue.defer(receiptHandle, 0);
  } catch (err) {
    deps.log.warn('could not release a wake-up; it returns when its hold ends', {
      requestId,
      error: describeError(err),
    });
  }
}

/** The wake-ups a settle freed: the user's own parked one, and the next in line for global capacity. */
export async function releaseWakeUps(
  deps: { readonly queue: Pick<RequestQueuePort, 'defer'>; readonly log: LogPort },
  outcome: SettleOutcome,
  requestId: string,
): Promise<void> {
  for (const handle of [outcome.wakeUp, outcome.globalWakeUp]) {
    if (handle) await releaseWakeUp(deps, handle, requestId);
  }
}
