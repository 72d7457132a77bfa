import type { TokenReservation } from '../core/limiter/types';
import type { LimiterPort, ModelPort } from './ports';
import type { FinalDelivery, ReplyChannel } from './reply-channel';

export interface ReplyOutcome {
  readonly text: string;
  readonly usage: {
    readonly inputTokens: number;
    readonly outputTokens: number;
    readonly totalTokens: number;
  };
  readonly delivery: FinalDelivery;
}

/**
 * Runs the model for an admitted request and streams it: `chunk`s as they come, then
 * `message_complete` with the full text and usage, then the reservation is reconciled to the
 * actual usage. The model's output is capped at the reservation's allowance, which is what keeps
 * the daily budget from being overdrawn. If the model fails the error propagates untouched: the
 * caller decides between retrying on the same reservation and refunding it ({@link refundUnused}).
 */
export async function runReply(args: {
  readonly requestId: string;
  readonly prompt: string;
  readonly reservation: TokenReservation;
  readonly model: ModelPort;
  readonly limiter: Pick<LimiterPort, 'reconcile'>;
  readonly channel: ReplyChannel;
  readonly now: () => number;
  readonly signal?: AbortSignal;
}): Promise<ReplyOutcome> {
  const { requestId, reservation, channel, now } = args;
  let text = '';
  let index = 0;
  let usage: { inputTokens: number; outputTokens: number } | undefined;
  for await (const event of args.model.stream({
    prompt: args.prompt,
    maxOutputTokens: reservation.outputAllowance,
    requestId,
    signal: args.signal,
  })) {
    if (event.type === 'chunk') {
      text += event.text;
      await channel.deliver({ type: 'chunk', timestamp: now(), requestId, index: index++, text: event.text });
    } else {
      usage = event.usage;
    }
  }
  if (!usage) throw new Error('model stream ended without usage');
  const totals = { ...usage, totalTokens: usage.inputTokens + usage.outputTokens };
  const delivery = await channel.deliverFinal(requestId, {
    type: 'message_complete',
    timestamp: now(),
    requestId,
    text,
    usage: totals,
  });
  await args.limiter.reconcile(reservation, usage, now());
  return { text, usage: totals, delivery };
}

/** Gives back a failed request's reservation: the model produced nothing that counts. */
export async function refundUnused(
  limiter: Pick<LimiterPort, 'reconcile'>,
  reservation: TokenReservation,
  nowMs: number,
): Promise<void> {
  await limiter.reconcile(reservation, { inputTokens: 0, outputTokens: 0 }, nowMs);
}
