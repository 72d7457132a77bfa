import type { LimiterSnapshot } from './snapshot';
import type { LimitName, LimitPolicy, LimitState } from './types';

export const HOUR_MS = 3_600_000;
export const DAY_MS = 86_400_000;

export const hourNumber = (ms: number) => Math.floor(ms / HOUR_MS);
export const dayNumber = (ms: number) => Math.floor(ms / DAY_MS);

/** The message bucket as GCRA sees it: one message per `intervalMs`, `capacity` back to back. */
export interface Bucket {
  readonly intervalMs: number;
  readonly capacity: number;
  /** How far the theoretical arrival time may run ahead of now: (capacity − 1) × interval. */
  readonly toleranceMs: number;
}

export function bucketOf(policy: LimitPolicy): Bucket {
  const intervalMs = 60_000 / policy.messagesPerMinute;
  const capacity = policy.messagesPerMinute + policy.burst;
  return { intervalMs, capacity, toleranceMs: (capacity - 1) * intervalMs };
}

export interface TokenAsk {
  readonly estimatedInputTokens: number;
  /** Requested max output tokens; the policy default when absent. */
  readonly maxTokens?: number;
  /** The model's maximum output per reply: the allowance never counts on more. */
  readonly modelMaxOutputTokens?: number;
}

export interface Blocking {
  readonly limit: LimitName;
  readonly retryAfterMs: number;
  readonly resetAtEpochMs: number;
}

export interface Evaluation {
  /** Every limit's state now, before this request. */
  readonly limits: LimitState[];
  /** The limit that holds this request back longest, if any. */
  readonly blocking?: Blocking;
  /** What the request would reserve; set when the token budget can cover it. */
  readonly reservation?: {
    readonly inputTokens: number;
    readonly outputAllowance: number;
    readonly reservedTokens: number;
  };
}

/**
 * Evaluates one request against every limit of `policy` in the state `snap`, at `nowMs`. Pure: the
 * decision logic the conditional write enforces, and what `status` reports. `retryAfterMs` is
 * exact: the earliest moment at which this request fits every limit (the latest of the blocking
 * limits' times, since waiting never makes another limit tighter).
 */
export function evaluate(
  policy: LimitPolicy,
  snap: LimiterSnapshot,
  ask: TokenAsk,
  nowMs: number,
): Evaluation {
  const limits: LimitState[] = [];
  const blocked: Blocking[] = [];

  // Message bucket (GCRA). The arrival time never lags behind now: an idle bucket is simply full.
  const bucket = bucketOf(policy);
  const tat = Math.max(snap.tat ?? nowMs, nowMs);
  const ahead = tat - nowMs;
  const bucketRemaining =
    ahead > bucket.toleranceMs ? 0 : Math.floor((bucket.toleranceMs - ahead) / bucket.intervalMs + 1e-9) + 1;
  limits.push({
    name: 'messageRate',
    limit: bucket.capacity,
    used: bucket.capacity - bucketRemaining,
    remaining: bucketRemaining,
    resetAtEpochMs: tat,
  });
  if (bucketRemaining === 0) {
    blocked.push({
      limit: 'messageRate',
      retryAfterMs: Math.ceil(ahead - bucket.toleranceMs),
      resetAtEpochMs: tat,
    });
  }

  // Fixed-window quotas aligned to the UTC hour and day.
  const hour = hourNumber(nowMs);
  const day = dayNumber(nowMs);
  const windows = [
    {
      name: 'hourlyMessages' as const,
      limit: policy.hourlyMessages,
      count: snap.hw === hour ? (snap.hc ?? 0) : 0,
      next: (hour + 1) * HOUR_MS,
    },
    {
      name: 'dailyMessages' as const,
      limit: policy.dailyMessages,
      count: snap.dw === day ? (snap.dc ?? 0) : 0,
      next: (day + 1) * DAY_MS,
    },
  ];
  for (const w of windows) {
    if (w.limit === undefined) continue;
    limits.push({
      name: w.name,
      limit: w.limit,
      used: w.count,
      remaining: Math.max(0, w.limit - w.count),
      resetAtEpochMs: w.next,
    });
    if (w.count >= w.limit)
      blocked.push({ limit: w.name, retryAfterMs: w.next - nowMs, resetAtEpochMs: w.next });
  }

  // Daily token budget: reserve the input estimate plus an output allowance that fits what is left.
  const nextDay = (day + 1) * DAY_MS;
  const used = snap.td === day ? (snap.tu ?? 0) : 0;
  const left = Math.max(0, policy.dailyTokens - used);
  limits.push({
    name: 'dailyTokens',
    limit: policy.dailyTokens,
    used,
    remaining: left,
    resetAtEpochMs: nextDay,
  });
  const requested = Math.min(
    ask.maxTokens ?? policy.defaultMaxOutputTokens,
    ask.modelMaxOutputTokens ?? Number.POSITIVE_INFINITY,
  );
  const outputAllowance = Math.min(requested, left - ask.estimatedInputTokens);
  // A client asking for fewer tokens than the minimum gets what it asked for, not a refusal.
  const minimum = Math.min(policy.minOutputTokens, requested);
  let reservation: Evaluation['reservation'];
  if (outputAllowance >= minimum && outputAllowance > 0) {
    reservation = {
      inputTokens: ask.estimatedInputTokens,
      outputAllowance,
      reservedTokens: ask.estimatedInputTokens + outputAllowance,
    };
  } else {
    blocked.push({ limit: 'dailyTokens', retryAfterMs: nextDay - nowMs, resetAtEpochMs: nextDay });
  }

  const blocking = blocked.reduce<Blocking | undefined>(
    (a, b) => (!a || b.retryAfterMs > a.retryAfterMs ? b : a),
    undefined,
  );
  return { limits, blocking, reservation };
}
