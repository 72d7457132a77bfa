import { bucketOf } from '../windows';
import { type KindPolicy, type LimitKind, limitIn, positiveInt, storedNumber } from './kind';
import { arrivalTimeAt, writeArrivalTime } from './shapes/gcra';

/** The message bucket of a policy (messagesPerMinute is required: every tier sets it). */
const bucketIn = (policy: KindPolicy) =>
  bucketOf({ messagesPerMinute: limitIn(policy, 'messagesPerMinute') ?? 0, burst: policy.burst });

/**
 * Message bucket (GCRA, shapes/gcra.ts) over `tat`. Idle (tat ≤ now): restart from now. Busy
 * (now < tat ≤ now + τ): push tat one interval on. Either way tat stays ≤ now + τ + T, so at most
 * `capacity` messages pass back to back and then one per interval, however many writers race.
 */
export const messageRate: LimitKind<'messageRate', 'messagesPerMinute', true> = {
  name: 'messageRate',
  label: 'message rate',
  waitsFor: 'time',
  policyField: { name: 'messagesPerMinute', schema: positiveInt, required: true },
  adminFlag: { flag: 'messages-per-minute', field: 'messagesPerMinute' },
  unit: 'messages',
  metric: 'MessageRateLimitExceeded',
  resetScope: 'messages',
  attributes: ['tat'],
  example: { policy: { messagesPerMinute: 2, burst: 1 }, input: 10, maxTokens: 20, fill: 3 },
  windowSeconds: (policy) => (bucketIn(policy).capacity * bucketIn(policy).intervalMs) / 1000,
  quota: { perShown: 1 },
  refill: (policy) => ({ amount: 1, everyMs: bucketIn(policy).intervalMs }),
  state({ policy, snap, nowMs }) {
    const bucket = bucketIn(policy);
    const tat = arrivalTimeAt(storedNumber(snap, 'tat'), nowMs);
    const ahead = tat - nowMs;
    const remaining =
      ahead > bucket.toleranceMs
        ? 0
        : Math.floor((bucket.toleranceMs - ahead) / bucket.intervalMs + 1e-9) + 1;
    return {
      name: 'messageRate',
      limit: bucket.capacity,
      used: bucket.capacity - remaining,
      remaining,
      resetAtEpochMs: tat,
    };
  },
  blocking(state, { policy, nowMs, weight = 1 }) {
    if (state.remaining >= weight) return undefined;
    // A request of weight w is w messages back to back: the last of them must fit.
    const { intervalMs, toleranceMs } = bucketIn(policy);
    const ahead = state.resetAtEpochMs + (weight - 1) * intervalMs - nowMs;
    return {
      limit: 'messageRate',
      retryAfterMs: Math.ceil(ahead - toleranceMs),
      resetAtEpochMs: state.resetAtEpochMs,
    };
  },
  plan(w, { policy, snap, nowMs, enforce, weight = 1 }) {
    const bucket = bucketIn(policy);
    writeArrivalTime(w, {
      attribute: 'tat',
      believedTat: storedNumber(snap, 'tat'),
      nowMs,
      step: weight * bucket.intervalMs,
      // The latest arrival time that still lets all `weight` messages through.
      latest: nowMs + bucket.toleranceMs - (weight - 1) * bucket.intervalMs,
      enforce,
    });
  },
  readyAtEpochMs(position, state, policy) {
    // The bucket is whole at resetAt; it holds k messages from resetAt − (capacity − k) × interval.
    const { capacity, intervalMs } = bucketIn(policy);
    return state.resetAtEpochMs - (capacity - position) * intervalMs;
  },
};
