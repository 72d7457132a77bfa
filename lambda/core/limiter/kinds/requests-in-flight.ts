import { type LimitKind, limitIn, positiveInt } from './kind';
import { liveInFlight, liveInFlightCount, releaseInFlightSlot, takeInFlightSlot } from './shapes/in-flight';

/**
 * When a reply will end is not known in advance: a refusal says retry in a second, and the queue
 * does not wait on a timer: the processor parks the user's wake-up in the item (`wk`) and the
 * settle that frees a slot releases it.
 */
const IN_FLIGHT_RETRY_MS = 1000;

/**
 * Requests in flight (shapes/in-flight.ts): the user's requests being answered now, the map `fl`.
 * The runner never answers past its lease (docs/limiter.md). Counted even without a limit
 * configured, so one set later applies at once.
 */
export const requestsInFlight: LimitKind<'requestsInFlight', 'requestsInFlight', false> = {
  name: 'requestsInFlight',
  label: 'requests in flight',
  waitsFor: 'slot',
  policyField: { name: 'requestsInFlight', schema: positiveInt, required: false },
  adminFlag: { flag: 'concurrent', field: 'requestsInFlight' },
  unit: 'requests',
  metric: 'InFlightLimitExceeded',
  resetScope: 'messages',
  // In-flight slots are replies being answered now: no reset gives them back.
  attributes: [],
  example: { policy: { requestsInFlight: 2 }, input: 10, maxTokens: 20, fill: 2 },
  /** Requests being answered at once across all users: bounded by each shard's in-flight map. */
  global: {
    description: 'Requests being answered at once across all users.',
    schema: positiveInt,
    countsWhole: true,
    stored: (n) => n,
    shown: (n) => n,
    refundsUnused: false,
    used: liveInFlightCount,
    takes: () => 1,
    retryAfterMs: () => IN_FLIGHT_RETRY_MS,
    resetAtEpochMs(shards, nowMs) {
      const leases = shards.flatMap((s) => liveInFlight(s, nowMs).map(([, lease]) => lease));
      return leases.length ? Math.min(...leases) : nowMs;
    },
  },
  windowSeconds: () => 0,
  quota: { unit: 'concurrent-requests', perShown: 1 },
  state({ policy, snap, nowMs }) {
    const limit = limitIn(policy, 'requestsInFlight');
    if (limit === undefined) return undefined;
    const live = liveInFlight(snap, nowMs);
    // At the latest, a slot frees when the earliest lease lapses.
    const resetAtEpochMs = live.length ? Math.min(...live.map(([, lease]) => lease)) : nowMs;
    return {
      name: 'requestsInFlight',
      limit,
      used: live.length,
      remaining: Math.max(0, limit - live.length),
      resetAtEpochMs,
    };
  },
  blocking(state, { nowMs }) {
    if (state.remaining > 0) return undefined;
    return {
      limit: 'requestsInFlight',
      retryAfterMs: Math.min(IN_FLIGHT_RETRY_MS, Math.max(0, state.resetAtEpochMs - nowMs)),
      resetAtEpochMs: state.resetAtEpochMs,
    };
  },
  plan(w, { policy, snap, nowMs, requestId, leaseUntilEpochMs, enforce }) {
    takeInFlightSlot(w, {
      snap,
      requestId,
      leaseUntilEpochMs,
      limit: enforce ? limitIn(policy, 'requestsInFlight') : undefined,
      nowMs,
    });
  },
  // When a reply ends is not known: the estimate does not wait for it (docs/protocol.md).
  readyAtEpochMs: () => 0,
  release: (w, { snap, requestId }) => releaseInFlightSlot(w, snap, requestId),
};
