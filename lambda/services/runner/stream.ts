import type { ConversationTurn } from '../../core/conversation';
import type { TokenReservation } from '../../core/limiter/decision';
import { costMicroUsd, FREE_PRICE, type ModelPrice, microUsdToUsd } from '../../core/models';
import { messageComplete, type ReplyUsage } from '../../core/protocol';
import { estimateTokens } from '../../core/tokens';
import { ReplyInterruptedError } from '../errors';
import type { ModelPort, OutgoingMessage } from '../ports';
import type { ReplyChannel } from '../reply-channel';

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
  /** The conversation's earlier turns, oldest first. */
  readonly turns?: readonly ConversationTurn[];
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
      turns: args.turns,
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
    throw interrupted(text, reservation, err);
  }
  const totals = pricedUsage(usage, reservation.price ?? FREE_PRICE);
  return {
    text,
    usage: totals,
    complete: messageComplete(requestId, text, totals, now(), args.served),
  };
}

/**
 * The model failed: it read the prompt once it produced anything, and its output is what reached
 * us, capped at the allowance; nothing produced means nothing to charge.
 */
function interrupted(text: string, reservation: TokenReservation, cause: unknown): ReplyInterruptedError {
  const produced = text.length > 0;
  const outputTokens = produced ? Math.min(reservation.outputAllowance, estimateTokens(text)) : 0;
  const inputTokens = produced ? reservation.inputTokens : 0;
  return new ReplyInterruptedError(
    { inputTokens, outputTokens, totalTokens: inputTokens + outputTokens },
    produced,
    { cause },
  );
}

/** The model's usage with its total and what it cost at `price`. */
function pricedUsage(
  usage: { readonly inputTokens: number; readonly outputTokens: number },
  price: ModelPrice,
): ReplyUsage {
  return {
    ...usage,
    totalTokens: usage.inputTokens + usage.outputTokens,
    costUsd: microUsdToUsd(costMicroUsd(price, usage.inputTokens, usage.outputTokens)),
  };
}
