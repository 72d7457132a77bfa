import type { TokenReservation } from '../core/limiter/types';
import type { LimiterPort, LogPort, ModelPort, OutgoingMessage } from './ports';
import type { ReplyChannel } from './reply-channel';

export interface StreamedReply {
  readonly text: string;
  readonly usage: {
    readonly inputTokens: number;
    readonly outputTokens: number;
    readonly totalTokens: number;
  };
  /** The `message_complete` to deliver (or keep for `resume`). */
  readonly complete: OutgoingMessage;
}

/**
 * Runs the model for an admitted request and streams its `chunk`s as they come. The model's
 * output is capped at the reservation's allowance, which is what keeps the daily budget from
 * being overdrawn. Returns the `message_complete` without sending it: the direct path sends it at
 * once, the processor first records it, so a crash cannot make it run the model twice. If the
 * model fails the error propagates untouched: the caller decides between retrying on the same
 * reservation and refunding it ({@link refundUnused}).
 */
export async function streamReply(args: {
  readonly requestId: string;
  readonly prompt: string;
  readonly reservation: TokenReservation;
  readonly model: ModelPort;
  readonly channel: ReplyChannel;
  readonly now: () => number;
  readonly signal?: AbortSignal;
}): Promise<StreamedReply> {
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
  return {
    text,
    usage: totals,
    complete: { type: 'message_complete', timestamp: now(), requestId, text, usage: totals },
  };
}

/**
 * Settles the reservation to the actual usage. A failure here must not undo a reply the user
 * already has: it is logged, and the reservation simply stays charged (never overdrawn).
 */
export async function settleUsage(
  limiter: Pick<LimiterPort, 'reconcile'>,
  log: LogPort,
  reservation: TokenReservation,
  usage: { inputTokens: number; outputTokens: number },
  nowMs: number,
): Promise<void> {
  try {
    await limiter.reconcile(reservation, usage, nowMs);
  } catch (err) {
    log.warn('reconcile failed; the reservation stays charged', {
      requestId: reservation.requestId,
      error: err instanceof Error ? err.message : String(err),
    });
  }
}

/** Gives back a failed request's reservation: the model produced nothing that counts. */
export async function refundUnused(
  limiter: Pick<LimiterPort, 'reconcile'>,
  reservation: TokenReservation,
  nowMs: number,
): Promise<void> {
  await limiter.reconcile(reservation, { inputTokens: 0, outputTokens: 0 }, nowMs);
}
