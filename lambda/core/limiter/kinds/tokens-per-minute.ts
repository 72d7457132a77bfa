import {
  type KindInput,
  type KindPolicy,
  type KindSnapshot,
  type LimitKind,
  limitIn,
  positiveInt,
  storedNumber,
} from './kind';
import { arrivalTimeAt, movesArrivalTime, writeArrivalTime } from './shapes/gcra';

const MINUTE_MS = 60_000;

/**
 * Does a reservation of `tokens` move the tokens-per-minute bucket? Always when the limit is set
 * and enforced; a shadow bucket it would overfill stops counting instead.
 */
export function movesTokenBucket(
  policy: KindPolicy,
  snap: KindSnapshot,
  nowMs: number,
  tokens: number,
  enforce: boolean,
): boolean {
  const limit = limitIn(policy, 'tokensPerMinute');
  if (limit === undefined) return false;
  const step = tokens * (MINUTE_MS / limit);
  return movesArrivalTime(storedNumber(snap, 'ttat'), nowMs, nowMs + MINUTE_MS - step, enforce);
}

function stateOf({ policy, snap, nowMs }: KindInput) {
  const limit = limitIn(policy, 'tokensPerMinute');
  if (limit === undefined) return undefined;
  const intervalMs = MINUTE_MS / limit;
  const tat = arrivalTimeAt(storedNumber(snap, 'ttat'), nowMs);
  const used = Math.min(limit, Math.ceil((tat - nowMs) / intervalMs - 1e-9));
  return { name: 'tokensPerMinute' as const, limit, used, remaining: limit - used, resetAtEpochMs: tat };
}

/**
 * Tokens per minute: a token bucket over tokens (GCRA with weights, shapes/gcra.ts over `ttat`):
 * capacity = the limit, one token refilled every 60 s / limit. A reservation of R tokens moves the
 * arrival time on by R intervals and must keep it within one minute of now; the reconcile gives
 * the unused part back by moving it back.
 */
export const tokensPerMinute: LimitKind<'tokensPerMinute', 'tokensPerMinute', false> = {
  name: 'tokensPerMinute',
  label: 'tokens per minute',
  waitsFor: 'time',
  policyField: { name: 'tokensPerMinute', schema: positiveInt, required: false },
  adminFlag: { flag: 'tokens-per-minute', field: 'tokensPerMinute' },
  movesBucket: movesTokenBucket,
  bucketAt: (snap) => storedNumber(snap, 'ttat'),
  unit: 'tokens',
  metric: 'TokenRateLimitExceeded',
  resetScope: 'tokens',
  attributes: ['ttat'],
  example: { policy: { tokensPerMinute: 100 }, input: 10, maxTokens: 40, fill: 2 },
  windowSeconds: () => 60,
  quota: { unit: 'tokens', perShown: 1 },
  refill: (policy) => ({ amount: limitIn(policy, 'tokensPerMinute') ?? 0, everyMs: MINUTE_MS }),
  state: stateOf,
  outputLeft: (input, inputTokens) => (stateOf(input)?.remaining ?? Number.POSITIVE_INFINITY) - inputTokens,
  blocking(state, { nowMs }, need) {
    if (need.tokens <= state.remaining) return undefined;
    // Room for what it needs comes back as the bucket refills.
    const wanted = Math.min(state.limit, need.tokens);
    const retryAfterMs = Math.ceil(Math.max(1, wanted - state.remaining) * (MINUTE_MS / state.limit));
    return { limit: 'tokensPerMinute', retryAfterMs, resetAtEpochMs: nowMs + retryAfterMs };
  },
  plan(w, { policy, snap, nowMs, reserved, enforce }) {
    const limit = limitIn(policy, 'tokensPerMinute');
    if (limit === undefined) return;
    const step = reserved.tokens * (MINUTE_MS / limit);
    // Busy: the arrival time plus this reservation stays within one minute of now.
    writeArrivalTime(w, {
      attribute: 'ttat',
      believedTat: storedNumber(snap, 'ttat'),
      nowMs,
      step,
      latest: nowMs + MINUTE_MS - step,
      enforce,
    });
  },
  // Room for the minimum output: when the bucket has refilled that much.
  readyAtEpochMs: (_position, state, policy) =>
    state.remaining < policy.minOutputTokens
      ? state.resetAtEpochMs - (state.limit - policy.minOutputTokens) * (MINUTE_MS / state.limit)
      : 0,
  /**
   * The unused part flows back, bounded by what of this reservation is still ahead of now (issue 20,
   * finding 6): the reservation left the arrival time at `bucketAfterEpochMs` (T); by the settle at
   * `nowMs` everything of it before now has drained, so at most `T − now` of the bucket's arrival
   * time is still this reservation's — the rest is later reservations', stacked on it or on a
   * restart. Moving the arrival time back by `min(unused × interval, T − now)` therefore never
   * gives out room another reservation took: the bucket never holds more than it would had the
   * reservation been the usage. After a restart (T ≤ now) nothing flows back, where moving it back
   * by the whole unused part gave up to twice the limit in a minute. Pinned on the bucket still
   * existing (`attribute_exists(ttat)`; "nowhere" pins its absence).
   */
  settle(w, { policy, snap, delta, nowMs, bucketAfterEpochMs }) {
    const limit = limitIn(policy, 'tokensPerMinute');
    if (limit === undefined || delta.tokens <= 0 || bucketAfterEpochMs === undefined) return;
    const backMs = Math.min(delta.tokens * (MINUTE_MS / limit), bucketAfterEpochMs - nowMs);
    if (backMs <= 0) return;
    const tat = w.name('ttat');
    if (storedNumber(snap, 'ttat') === undefined) {
      w.condition(`attribute_not_exists(${tat})`);
      return;
    }
    w.condition(`attribute_exists(${tat})`);
    w.set(`${tat} = ${tat} - ${w.value(backMs)}`);
  },
};
