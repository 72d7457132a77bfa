import type { ConversationTurn } from '../../core/conversation';
import type { TokenReservation } from '../../core/limiter/decision';
import { costMicroUsd, FREE_PRICE, type ModelPrice, microUsdToUsd } from '../../core/models';
import { messageComplete, type ReplyUsage } from '../../core/protocol';
import { estimateTokens } from '../../core/tokens';
import { ReplyInterruptedError } from '../errors';
import type { ModelEvent, ModelPort, OutgoingMessage } from '../ports';
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
 * If the user stopped it (`stopped()` once `signal` aborted), the reply ends as produced so far
 * ({@link stoppedReply}): no model event after the abort is streamed, even from a model slow to
 * honour the signal.
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
  /** Did the user stop the reply? (then an abort of `signal` ends it as produced, not as failed) */
  readonly stopped?: () => boolean;
  /** The model that answers, and the one it replaced (soft landing), for `message_complete`. */
  readonly served?: { readonly model?: string; readonly fallbackFrom?: string };
}): Promise<StreamedReply> {
  const { requestId, reservation, channel, now, signal } = args;
  let text = '';
  let usage: { inputTokens: number; outputTokens: number } | undefined;
  try {
    const events = args.model
      .stream({
        prompt: args.prompt,
        turns: args.turns,
        maxOutputTokens: reservation.outputAllowance,
        requestId,
        signal,
      })
      [Symbol.asyncIterator]();
    for (;;) {
      const next = await nextUnlessAborted(events, signal);
      if (next.done) break;
      const event = next.value;
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
    // What was produced reaches the client before the failure (or the stop) says so.
    await channel.flushText(requestId).catch(() => undefined);
    if (args.stopped?.()) return stoppedReply(requestId, text, reservation, now(), args.served);
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
 * A reply the user stopped (SPEC §9.3): `message_complete` `stopped: true` with the text produced
 * so far, charged what was produced as an interrupted reply is — the prompt and the output that
 * reached us, capped at the allowance; nothing if the model had produced nothing (a stop before
 * the first token, or during a retry's backoff).
 */
export function stoppedReply(
  requestId: string,
  text: string,
  reservation: TokenReservation,
  nowMs: number,
  served: { readonly model?: string; readonly fallbackFrom?: string } = {},
): StreamedReply {
  const { usage: produced } = interrupted(text, reservation, undefined);
  const usage = pricedUsage(produced, reservation.price ?? FREE_PRICE);
  return {
    text,
    usage,
    complete: messageComplete(requestId, text, usage, nowMs, { ...served, stopped: true }),
  };
}

/** The model's next event, or the abort's reason as soon as `signal` aborts (the model left behind). */
async function nextUnlessAborted(
  events: AsyncIterator<ModelEvent>,
  signal: AbortSignal | undefined,
): Promise<IteratorResult<ModelEvent>> {
  if (!signal) return events.next();
  signal.throwIfAborted();
  let onAbort: (() => void) | undefined;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
  });
  const next = events.next();
  next.catch(() => undefined); // left behind on an abort: its own failure is not ours to report
  try {
    return await Promise.race([next, aborted]);
  } catch (err) {
    // Ends the model's generator (a pending `next` settles on its own; its result is dropped).
    if (signal.aborted) void events.return?.()?.catch?.(() => undefined);
    throw err;
  } finally {
    if (onAbort) signal.removeEventListener('abort', onAbort);
  }
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
