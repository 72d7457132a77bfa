import { costMicroUsd, FREE_PRICE, type ModelPrice } from '../models';
import type { Amount, Blocking as KindBlocking, KindInput, KindSnapshot } from './kinds/kind';
import { LIMIT_KINDS, type LimitName, type LimitPolicy, type LimitState } from './kinds/registry';

/** When a limit holds a request back: until when, and from now how long. */
export type Blocking = KindBlocking<LimitName>;
export { type Bucket, bucketOf, DAY_MS, dayNumber, HOUR_MS, hourNumber } from './windows';

export interface TokenAsk {
  readonly estimatedInputTokens: number;
  /** Requested max output tokens; the policy default when absent. */
  readonly maxTokens?: number;
  /** The model's maximum output per reply: the allowance never counts on more. */
  readonly modelMaxOutputTokens?: number;
  /** The model's price: the cost budgets reserve by it. @default free */
  readonly price?: ModelPrice;
  /** The model that would answer (kept with the reservation). */
  readonly model?: string;
  /** How many messages the request counts for (the model's `messageWeight`). @default 1 */
  readonly messageWeight?: number;
}

export interface Evaluation {
  /** Every limit's state now, before this request. */
  readonly limits: LimitState[];
  /** The limit that holds this request back longest, if any. */
  readonly blocking?: Blocking;
  /** Shadow limits this request exceeds: reported, not enforced. */
  readonly shadowExceeded: readonly Blocking[];
  /** What the request would reserve; set when the token budgets can cover it. */
  readonly reservation?: {
    readonly inputTokens: number;
    readonly outputAllowance: number;
    readonly reservedTokens: number;
    readonly reservedCostMicroUsd: number;
  };
}

/**
 * Evaluates one request against every limit kind of `policy` in the state `snap`, at `nowMs`.
 * Pure: the decision logic the conditional write enforces, and what `status` reports.
 *
 * The request reserves its input estimate plus an output allowance: what it asks for (or the
 * policy default), capped at the model's maximum and at what every token budget has left; below
 * the minimum, it is not admitted. `retryAfterMs` is exact: the earliest moment at which this
 * request fits every limit (the latest of the blocking limits' times, since waiting never makes
 * another limit tighter).
 */
export function evaluate(policy: LimitPolicy, snap: KindSnapshot, ask: TokenAsk, nowMs: number): Evaluation {
  const model = ask.price ?? FREE_PRICE;
  const input: KindInput = { policy, snap, nowMs, model, weight: ask.messageWeight ?? 1 };
  const shadow = new Set<string>(policy.shadow ?? []);
  const requested = Math.min(
    ask.maxTokens ?? policy.defaultMaxOutputTokens,
    ask.modelMaxOutputTokens ?? Number.POSITIVE_INFINITY,
  );
  // Every budget caps the output: tokens left after the input, or what the cost left pays for.
  const outputAllowance = Math.min(
    requested,
    ...LIMIT_KINDS.filter((kind) => !shadow.has(kind.name)).map(
      (kind) => kind.outputLeft?.(input, ask.estimatedInputTokens) ?? Number.POSITIVE_INFINITY,
    ),
  );
  // A client asking for fewer tokens than the minimum gets what it asked for, not a refusal.
  const minimum = Math.min(policy.minOutputTokens, requested);
  const reservation =
    outputAllowance >= minimum && outputAllowance > 0
      ? {
          inputTokens: ask.estimatedInputTokens,
          outputAllowance,
          reservedTokens: ask.estimatedInputTokens + outputAllowance,
          reservedCostMicroUsd: costMicroUsd(model, ask.estimatedInputTokens, outputAllowance),
        }
      : undefined;

  // What the token limits must cover: the reservation, or at least the input and the minimum output.
  const smallest = Math.max(1, minimum);
  const need: Amount = reservation
    ? { tokens: reservation.reservedTokens, costMicroUsd: reservation.reservedCostMicroUsd }
    : {
        tokens: ask.estimatedInputTokens + smallest,
        costMicroUsd: costMicroUsd(model, ask.estimatedInputTokens, smallest),
      };
  const limits: LimitState[] = [];
  const blocked: Blocking[] = [];
  const shadowExceeded: Blocking[] = [];
  for (const kind of LIMIT_KINDS) {
    const state = kind.state(input);
    if (!state) continue;
    limits.push(state);
    const blocking = kind.blocking(state, input, need);
    if (blocking) (shadow.has(kind.name) ? shadowExceeded : blocked).push(blocking);
  }
  const blocking = blocked.reduce<Blocking | undefined>(
    (a, b) => (!a || b.retryAfterMs > a.retryAfterMs ? b : a),
    undefined,
  );
  return { limits, blocking, reservation, shadowExceeded };
}
