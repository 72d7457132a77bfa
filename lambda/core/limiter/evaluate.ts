import { type Blocking, type KindInput, LIMIT_KINDS } from './kinds';
import type { LimiterSnapshot } from './snapshot';
import type { LimitPolicy, LimitState } from './types';

export type { Blocking } from './kinds';
export { type Bucket, bucketOf, DAY_MS, dayNumber, HOUR_MS, hourNumber } from './windows';

export interface TokenAsk {
  readonly estimatedInputTokens: number;
  /** Requested max output tokens; the policy default when absent. */
  readonly maxTokens?: number;
  /** The model's maximum output per reply: the allowance never counts on more. */
  readonly modelMaxOutputTokens?: number;
}

export interface Evaluation {
  /** Every limit's state now, before this request. */
  readonly limits: LimitState[];
  /** The limit that holds this request back longest, if any. */
  readonly blocking?: Blocking;
  /** What the request would reserve; set when the token budgets can cover it. */
  readonly reservation?: {
    readonly inputTokens: number;
    readonly outputAllowance: number;
    readonly reservedTokens: number;
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
export function evaluate(
  policy: LimitPolicy,
  snap: LimiterSnapshot,
  ask: TokenAsk,
  nowMs: number,
): Evaluation {
  const input: KindInput = { policy, snap, nowMs };
  const requested = Math.min(
    ask.maxTokens ?? policy.defaultMaxOutputTokens,
    ask.modelMaxOutputTokens ?? Number.POSITIVE_INFINITY,
  );
  const tokensLeft = Math.min(
    ...LIMIT_KINDS.map((kind) => kind.tokensLeft?.(input) ?? Number.POSITIVE_INFINITY),
  );
  const outputAllowance = Math.min(requested, tokensLeft - ask.estimatedInputTokens);
  // A client asking for fewer tokens than the minimum gets what it asked for, not a refusal.
  const minimum = Math.min(policy.minOutputTokens, requested);
  const reservation =
    outputAllowance >= minimum && outputAllowance > 0
      ? {
          inputTokens: ask.estimatedInputTokens,
          outputAllowance,
          reservedTokens: ask.estimatedInputTokens + outputAllowance,
        }
      : undefined;

  // What the token limits must cover: the reservation, or at least the input and the minimum output.
  const neededTokens = reservation?.reservedTokens ?? ask.estimatedInputTokens + Math.max(1, minimum);
  const limits: LimitState[] = [];
  const blocked: Blocking[] = [];
  for (const kind of LIMIT_KINDS) {
    const state = kind.state(input);
    if (!state) continue;
    limits.push(state);
    const blocking = kind.blocking(state, input, neededTokens);
    if (blocking) blocked.push(blocking);
  }
  const blocking = blocked.reduce<Blocking | undefined>(
    (a, b) => (!a || b.retryAfterMs > a.retryAfterMs ? b : a),
    undefined,
  );
  return { limits, blocking, reservation };
}
