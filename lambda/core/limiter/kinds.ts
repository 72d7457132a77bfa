import type { MetricName } from '../metrics';
import { type ModelSpec, microUsdToUsd, outputTokensFor, usdToMicroUsd } from '../models';
import type { ExpressionWriter } from './expression';
import { type LimiterSnapshot, liveInFlight, type PendingReservation } from './snapshot';
import type { LimitName, LimitPolicy, LimitState } from './types';
import { bucketOf, DAY_MS, dayNumber, HOUR_MS, hourNumber, monthNumber, monthStartMs } from './windows';

export type LimitUnit = 'messages' | 'tokens' | 'usd' | 'requests';

/** When a limit holds a request back: until when, and from now how long. */
export interface Blocking {
  readonly limit: LimitName;
  readonly retryAfterMs: number;
  readonly resetAtEpochMs: number;
}

export interface KindInput {
  readonly policy: LimitPolicy;
  readonly snap: LimiterSnapshot;
  readonly nowMs: number;
  /** The model the request runs on: its price turns tokens into cost. */
  readonly model: ModelPrice;
  /** How many messages the request counts for (its model's `messageWeight`). @default 1 */
  readonly weight?: number;
}

export type ModelPrice = Pick<ModelSpec, 'inputUsdPerMillion' | 'outputUsdPerMillion'>;

/** What a request takes from the budgets: tokens, and their cost in µUSD. */
export interface Amount {
  readonly tokens: number;
  readonly costMicroUsd: number;
}

/**
 * One kind of per-user limit, declared once: its name and unit, its window, how it is evaluated
 * and planned into the one conditional write, how `status` shows it, what it emits when it refuses,
 * which item attributes it keeps (for `reset`), and when the k-th waiting request fits it. Adding
 * a limit is one more entry of {@link LIMIT_KINDS}, its tests and its docs.
 */
export interface LimitKind {
  readonly name: LimitName;
  /** How people read its name (SPEC §8): the page, the terminal client and the admin CLI show it. */
  readonly label: string;
  readonly unit: LimitUnit;
  /**
   * What frees room under it: time (a window or a bucket refills at a known instant), or a slot
   * (another request of the user settles; no clock can say when).
   */
  readonly waitsFor: 'time' | 'slot';
  /** The metric a refusal by this limit emits. */
  readonly metric: MetricName;
  /**
   * The admin CLI's `set-override` flag for it (`--<flag> N`), and the policy field it sets: the
   * limit's own name, except the message rate (its refill, with `--burst` beside it).
   */
  readonly adminFlag: { readonly flag: string; readonly field: keyof LimitPolicy };
  /** What `reset --scope` clears it (and `all`). */
  readonly resetScope: 'messages' | 'tokens' | 'cost';
  /** The item attributes it keeps. */
  readonly attributes: readonly string[];
  /** Its window in seconds (a bucket's refill horizon: capacity × interval). */
  windowSeconds(policy: LimitPolicy): number;
  /**
   * Fixed windows: when the window an admission at `nowMs` counts in ends (epoch ms). The item's TTL
   * never precedes it, so DynamoDB never deletes a counter whose window is still open (a monthly
   * budget stays spent all month).
   */
  windowEndsAtMs?(nowMs: number): number;
  /**
   * Budgets and quotas: the fixed window `nowMs` falls in, and what one admission takes from it (in
   * the unit `status` shows) — what `limit_warning` needs to warn once per limit and window.
   */
  readonly warns?: {
    windowOf(nowMs: number): number;
    taken(reserved: Amount, weight: number): number;
  };
  /** Its state now, when the policy sets it (an optional limit left unset: undefined). */
  state(input: KindInput): LimitState | undefined;
  /** Budgets only: the most output tokens it still allows a request with this input. */
  outputLeft?(input: KindInput, inputTokens: number): number;
  /**
   * Does it hold back a request that needs `need` (its reservation, or, when the budgets cannot
   * cover one, its input and the minimum output)?
   */
  blocking(state: LimitState, input: KindInput, need: Amount): Blocking | undefined;
  /**
   * Its part of the admission write: a condition that makes the update correct whatever the item
   * holds (the belief only picks the shape), and the update.
   */
  plan(
    w: ExpressionWriter,
    input: KindInput & {
      readonly reserved: Amount;
      readonly requestId: string;
      /** Until when the request holds its in-flight slot if its runner never settles (epoch ms). */
      readonly leaseUntilEpochMs: number;
      /** False for a shadow limit: counted and reported, never a reason for the write to fail. */
      readonly enforce: boolean;
    },
  ): void;
  /** When the k-th waiting request fits this limit, each one ahead taking one message (epoch ms). */
  readyAtEpochMs(position: number, state: LimitState, policy: LimitPolicy): number;
  /**
   * Token limits only: its part of the settle write, moving what it counted by `delta` (> 0 gives
   * back, < 0 charges more). The belief picks the shape; the conditions pin the window the
   * reservation was counted in and, for a charge, the count it was computed from.
   */
  settle?(w: ExpressionWriter, input: SettleInput): void;
  /**
   * Its part of every settle, whatever the amounts: what the request held while it was answered
   * (its in-flight slot) is given back.
   */
  release?(w: ExpressionWriter, input: { readonly snap: LimiterSnapshot; readonly requestId: string }): void;
}

export interface SettleInput extends KindInput {
  readonly pending: PendingReservation;
  /** Refund (> 0) or extra charge (< 0), already capped so no budget is overdrawn. */
  readonly delta: Amount;
  /** The tokens-per-minute bucket's arrival time right after the reservation (see `TokenReservation`). */
  readonly bucketAfterEpochMs?: number;
}

/**
 * Message bucket (GCRA). Idle (tat ≤ now): restart from now. Busy (now < tat ≤ now + τ): push tat
 * one interval on. Either way tat stays ≤ now + τ + T, so at most `capacity` messages pass back to
 * back and then one per interval, however many writers race.
 */
const messageRate: LimitKind = {
  name: 'messageRate',
  label: 'message rate',
  waitsFor: 'time',
  adminFlag: { flag: 'messages-per-minute', field: 'messagesPerMinute' },
  unit: 'messages',
  metric: 'MessageRateLimitExceeded',
  resetScope: 'messages',
  attributes: ['tat'],
  windowSeconds: (policy) => (bucketOf(policy).capacity * bucketOf(policy).intervalMs) / 1000,
  state({ policy, snap, nowMs }) {
    const bucket = bucketOf(policy);
    // The arrival time never lags behind now: an idle bucket is simply full.
    const tat = Math.max(snap.tat ?? nowMs, nowMs);
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
    const { intervalMs, toleranceMs } = bucketOf(policy);
    const ahead = state.resetAtEpochMs + (weight - 1) * intervalMs - nowMs;
    return {
      limit: 'messageRate',
      retryAfterMs: Math.ceil(ahead - toleranceMs),
      resetAtEpochMs: state.resetAtEpochMs,
    };
  },
  plan(w, { policy, snap, nowMs, enforce, weight = 1 }) {
    const bucket = bucketOf(policy);
    const tat = w.name('tat');
    const step = weight * bucket.intervalMs;
    // The latest arrival time that still lets all `weight` messages through.
    const latest = nowMs + bucket.toleranceMs - (weight - 1) * bucket.intervalMs;
    if (snap.tat === undefined || snap.tat <= nowMs) {
      w.condition(`(attribute_not_exists(${tat}) OR ${tat} <= ${w.value(nowMs)})`);
      w.set(`${tat} = ${w.value(nowMs + step)}`);
    } else if (!enforce && snap.tat > latest) {
      // A full shadow bucket stops counting (it never runs ahead of a full bucket).
      w.condition(`${tat} > ${w.value(latest)}`);
    } else {
      w.condition(`(${tat} > ${w.value(nowMs)} AND ${tat} <= ${w.value(latest)})`);
      w.set(`${tat} = ${tat} + ${w.value(step)}`);
    }
  },
  readyAtEpochMs(position, state, policy) {
    // The bucket is whole at resetAt; it holds k messages from resetAt − (capacity − k) × interval.
    const { capacity, intervalMs } = bucketOf(policy);
    return state.resetAtEpochMs - (capacity - position) * intervalMs;
  },
};

/**
 * A counter in a fixed window, its part of a write: same window (as believed) — `count + amount`
 * under `count <= limit − amount`; a newer window — start it at `amount`, only if the stored one is
 * older (another writer may have opened it). The belief picks the shape; the condition makes it
 * correct whatever the item holds. No limit (unset or shadow): counted without a bound. Used by
 * the quotas and budgets here and by the global shards (global.ts). Returns whether it opened the
 * window.
 */
export function countInWindow(
  w: ExpressionWriter,
  args: {
    readonly snap: LimiterSnapshot;
    readonly windowAttr: 'hw' | 'dw' | 'td' | 'tm' | 'cd' | 'cm';
    readonly countAttr: 'hc' | 'dc' | 'tu' | 'tmu' | 'cu' | 'cmu';
    readonly window: number;
    readonly amount: number;
    readonly limit: number | undefined;
  },
): boolean {
  const { snap, windowAttr, countAttr, window, amount, limit } = args;
  const win = w.name(windowAttr);
  const count = w.name(countAttr);
  if (snap[windowAttr] === window) {
    const fits = limit === undefined ? '' : ` AND ${count} <= ${w.value(limit - amount)}`;
    w.condition(`${win} = ${w.value(window)}${fits}`);
    w.set(`${count} = ${count} + ${w.value(amount)}`);
    return false;
  }
  w.condition(`(attribute_not_exists(${win}) OR ${win} < ${w.value(window)})`);
  w.set(`${win} = ${w.value(window)}`, `${count} = ${w.value(amount)}`);
  return true;
}

/**
 * A message quota in a fixed window aligned to UTC. Messages are counted even without a quota
 * configured, so a quota set later by an admin applies to what was already sent. Same window:
 * count < limit. New window: only if the stored window is older (another writer may have opened it).
 */
function windowQuota(args: {
  readonly name: 'hourlyMessages' | 'dailyMessages';
  readonly label: string;
  readonly flag: string;
  readonly windowAttr: 'hw' | 'dw';
  readonly countAttr: 'hc' | 'dc';
  readonly windowMs: number;
  readonly windowOf: (ms: number) => number;
}): LimitKind {
  const { name, windowAttr, countAttr, windowMs, windowOf } = args;
  const countIn = (snap: LimiterSnapshot, nowMs: number) =>
    snap[windowAttr] === windowOf(nowMs) ? (snap[countAttr] ?? 0) : 0;
  return {
    name,
    label: args.label,
    waitsFor: 'time',
    adminFlag: { flag: args.flag, field: name },
    unit: 'messages',
    metric: 'MessageRateLimitExceeded',
    resetScope: 'messages',
    attributes: [windowAttr, countAttr],
    windowSeconds: () => windowMs / 1000,
    warns: { windowOf, taken: (_reserved, weight) => weight },
    windowEndsAtMs: (nowMs) => (windowOf(nowMs) + 1) * windowMs,
    state({ policy, snap, nowMs }) {
      const limit = policy[name];
      if (limit === undefined) return undefined;
      const used = countIn(snap, nowMs);
      const next = (windowOf(nowMs) + 1) * windowMs;
      return { name, limit, used, remaining: Math.max(0, limit - used), resetAtEpochMs: next };
    },
    blocking(state, { nowMs, weight = 1 }) {
      if (state.used + weight <= state.limit) return undefined;
      return {
        limit: name,
        retryAfterMs: state.resetAtEpochMs - nowMs,
        resetAtEpochMs: state.resetAtEpochMs,
      };
    },
    plan(w, { policy, snap, nowMs, enforce, weight = 1 }) {
      countInWindow(w, {
        snap,
        windowAttr,
        countAttr,
        window: windowOf(nowMs),
        amount: weight,
        limit: enforce ? policy[name] : undefined,
      });
    },
    readyAtEpochMs: (position, state) => (state.remaining >= position ? 0 : state.resetAtEpochMs),
  };
}

/** A budget's fixed window: which one `ms` falls in, when it ends, and its length for `status`. */
interface BudgetWindow {
  /** The reservation marker's field naming the window it was counted in. */
  readonly markerField: 'day' | 'month';
  readonly windowOf: (ms: number) => number;
  readonly windowEndMs: (window: number) => number;
  readonly windowSeconds: number;
}

const DAILY: BudgetWindow = {
  markerField: 'day',
  windowOf: dayNumber,
  windowEndMs: (day) => (day + 1) * DAY_MS,
  windowSeconds: DAY_MS / 1000,
};

const MONTHLY: BudgetWindow = {
  markerField: 'month',
  windowOf: monthNumber,
  windowEndMs: (month) => monthStartMs(month + 1),
  windowSeconds: (30 * DAY_MS) / 1000,
};

/**
 * A budget over a fixed UTC window (day, calendar month), of tokens or of cost (µUSD):
 * reserve-then-reconcile. Same window: used + reserved ≤ budget, so concurrent reservations can
 * never overdraw it. New window: start from this reservation. Usage is counted even without a
 * budget configured, so one set later by an admin applies to what was already used.
 */
function windowBudget(
  args: {
    readonly name: 'dailyTokens' | 'monthlyTokens' | 'dailyCostUsd' | 'monthlyCostUsd';
    readonly label: string;
    readonly flag: string;
    readonly unit: 'tokens' | 'usd';
    readonly windowAttr: 'td' | 'tm' | 'cd' | 'cm';
    readonly usedAttr: 'tu' | 'tmu' | 'cu' | 'cmu';
  } & BudgetWindow,
): LimitKind {
  const { name, unit, windowAttr, usedAttr, markerField, windowOf, windowEndMs } = args;
  const isCost = unit === 'usd';
  /** The budget in stored units: tokens, or µUSD for a cost budget (configured in USD). */
  const budgetOf = (policy: LimitPolicy) => {
    const value = policy[name];
    return value === undefined ? undefined : isCost ? usdToMicroUsd(value) : value;
  };
  const amountOf = (a: Amount) => (isCost ? a.costMicroUsd : a.tokens);
  const shown = (stored: number) => (isCost ? microUsdToUsd(stored) : stored);
  const usedIn = (snap: LimiterSnapshot, window: number) =>
    snap[windowAttr] === window ? (snap[usedAttr] ?? 0) : 0;
  const leftIn = ({ policy, snap, nowMs }: KindInput) => {
    const budget = budgetOf(policy);
    return budget === undefined ? undefined : Math.max(0, budget - usedIn(snap, windowOf(nowMs)));
  };
  const kind: LimitKind = {
    name,
    label: args.label,
    waitsFor: 'time',
    adminFlag: { flag: args.flag, field: name },
    unit,
    metric: 'TokenRateLimitExceeded',
    resetScope: isCost ? 'cost' : 'tokens',
    attributes: [windowAttr, usedAttr],
    windowSeconds: () => args.windowSeconds,
    warns: { windowOf, taken: (reserved) => shown(amountOf(reserved)) },
    windowEndsAtMs: (nowMs) => windowEndMs(windowOf(nowMs)),
    state(input) {
      const budget = budgetOf(input.policy);
      if (budget === undefined) return undefined;
      const window = windowOf(input.nowMs);
      const used = usedIn(input.snap, window);
      return {
        name,
        limit: shown(budget),
        used: shown(used),
        remaining: shown(Math.max(0, budget - used)),
        resetAtEpochMs: windowEndMs(window),
      };
    },
    outputLeft(input, inputTokens) {
      const left = leftIn(input);
      if (left === undefined) return Number.POSITIVE_INFINITY;
      return isCost ? outputTokensFor(input.model, left, inputTokens) : left - inputTokens;
    },
    blocking(state, input, need) {
      const left = leftIn(input) ?? Number.POSITIVE_INFINITY;
      if (amountOf(need) <= left) return undefined;
      return {
        limit: name,
        retryAfterMs: state.resetAtEpochMs - input.nowMs,
        resetAtEpochMs: state.resetAtEpochMs,
      };
    },
    // Opening a new window leaves the reservation markers of earlier ones alone: a marker lives
    // until its request settles, whatever windows roll (issue 20, finding 4).
    plan(w, { policy, snap, nowMs, reserved, enforce }) {
      countInWindow(w, {
        snap,
        windowAttr,
        countAttr: usedAttr,
        window: windowOf(nowMs),
        amount: amountOf(reserved),
        limit: enforce ? budgetOf(policy) : undefined,
      });
    },
    // Too little left for even one request: not before the next window.
    readyAtEpochMs: (_position, state, policy) =>
      !isCost && state.remaining < policy.minOutputTokens
        ? state.resetAtEpochMs
        : isCost && state.remaining <= 0
          ? state.resetAtEpochMs
          : 0,
    /**
     * A refund goes to the window it was taken from, or nowhere (issue 20, finding 5): into the
     * count only while the item still holds the reservation's own window (`win = :w`), whatever
     * the settling clock or the belief's age; once another window was opened (or a reset removed
     * it), nowhere — and that is pinned too (`win <> :w`), so a belief that lags behind the
     * reservation fails the write and the settle reads again instead of dropping a refund that
     * was due. A charge beyond the reservation goes only into the window open now.
     */
    settle(w, { snap, nowMs, pending, delta }) {
      const window = pending[markerField];
      const amount = amountOf(delta);
      if (amount === 0 || window === undefined) return;
      if (amount < 0 && window !== windowOf(nowMs)) return;
      const win = w.name(windowAttr);
      if (snap[windowAttr] !== window) {
        w.condition(`(attribute_not_exists(${win}) OR ${win} <> ${w.value(window)})`);
        return;
      }
      const used = w.name(usedAttr);
      w.condition(`${win} = ${w.value(window)}`);
      if (amount > 0) {
        w.set(`${used} = ${used} - ${w.value(amount)}`);
      } else {
        // Charging more than reserved: the charge was capped from this count; pin it.
        w.condition(`${used} = ${w.value(usedIn(snap, window))}`);
        w.set(`${used} = ${used} + ${w.value(-amount)}`);
      }
    },
  };
  return kind;
}

/**
 * Tokens per minute: a token bucket over tokens (GCRA with weights): capacity = the limit, one token
 * refilled every 60 s / limit. A reservation of R tokens moves the arrival time on by R intervals
 * and must keep it within one minute of now; the reconcile gives the unused part back by moving
 * it back.
 */
const tokensPerMinute: LimitKind = {
  name: 'tokensPerMinute',
  label: 'tokens per minute',
  waitsFor: 'time',
  adminFlag: { flag: 'tokens-per-minute', field: 'tokensPerMinute' },
  unit: 'tokens',
  metric: 'TokenRateLimitExceeded',
  resetScope: 'tokens',
  attributes: ['ttat'],
  windowSeconds: () => 60,
  state({ policy, snap, nowMs }) {
    const limit = policy.tokensPerMinute;
    if (limit === undefined) return undefined;
    const intervalMs = 60_000 / limit;
    const tat = Math.max(snap.ttat ?? nowMs, nowMs);
    const used = Math.min(limit, Math.ceil((tat - nowMs) / intervalMs - 1e-9));
    return { name: 'tokensPerMinute', limit, used, remaining: limit - used, resetAtEpochMs: tat };
  },
  outputLeft: (input, inputTokens) =>
    (tokensPerMinute.state(input)?.remaining ?? Number.POSITIVE_INFINITY) - inputTokens,
  blocking(state, { nowMs }, need) {
    if (need.tokens <= state.remaining) return undefined;
    // Room for what it needs comes back as the bucket refills.
    const wanted = Math.min(state.limit, need.tokens);
    const retryAfterMs = Math.ceil(Math.max(1, wanted - state.remaining) * (60_000 / state.limit));
    return { limit: 'tokensPerMinute', retryAfterMs, resetAtEpochMs: nowMs + retryAfterMs };
  },
  plan(w, { policy, snap, nowMs, reserved, enforce }) {
    const limit = policy.tokensPerMinute;
    if (limit === undefined) return;
    const tat = w.name('ttat');
    const step = reserved.tokens * (60_000 / limit);
    if (!movesTokenBucket(policy, snap, nowMs, reserved.tokens, enforce)) {
      // A shadow bucket this reservation would overfill stops counting.
      w.condition(`${tat} > ${w.value(nowMs + 60_000 - step)}`);
      return;
    }
    if (snap.ttat === undefined || snap.ttat <= nowMs) {
      w.condition(`(attribute_not_exists(${tat}) OR ${tat} <= ${w.value(nowMs)})`);
      w.set(`${tat} = ${w.value(nowMs + step)}`);
    } else {
      // Busy: the arrival time plus this reservation stays within one minute of now.
      w.condition(`(${tat} > ${w.value(nowMs)} AND ${tat} <= ${w.value(nowMs + 60_000 - step)})`);
      w.set(`${tat} = ${tat} + ${w.value(step)}`);
    }
  },
  // Room for the minimum output: when the bucket has refilled that much.
  readyAtEpochMs: (_position, state, policy) =>
    state.remaining < policy.minOutputTokens
      ? state.resetAtEpochMs - (state.limit - policy.minOutputTokens) * (60_000 / state.limit)
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
    const limit = policy.tokensPerMinute;
    if (limit === undefined || delta.tokens <= 0 || bucketAfterEpochMs === undefined) return;
    const backMs = Math.min(delta.tokens * (60_000 / limit), bucketAfterEpochMs - nowMs);
    if (backMs <= 0) return;
    const tat = w.name('ttat');
    if (snap.ttat === undefined) {
      w.condition(`attribute_not_exists(${tat})`);
      return;
    }
    w.condition(`attribute_exists(${tat})`);
    w.set(`${tat} = ${tat} - ${w.value(backMs)}`);
  },
};

/**
 * Does a reservation of `tokens` move the tokens-per-minute bucket? Always when the limit is set
 * and enforced; a shadow bucket it would overfill stops counting instead.
 */
export function movesTokenBucket(
  policy: LimitPolicy,
  snap: LimiterSnapshot,
  nowMs: number,
  tokens: number,
  enforce: boolean,
): boolean {
  const limit = policy.tokensPerMinute;
  if (limit === undefined) return false;
  const step = tokens * (60_000 / limit);
  return enforce || snap.ttat === undefined || snap.ttat <= Math.max(nowMs, nowMs + 60_000 - step);
}

/**
 * Requests in flight: the user's requests being answered now, kept in the item as a map `fl` of
 * request id → lease (epoch ms). The admission adds its id with `size(fl) < N` in its condition; the
 * settle removes it; a runner that crashed holds its slot only until its lease lapses, when the
 * next admission drops the entry (its condition pins each dropped entry's lease, and the size
 * bound counts them, so the bound stays exact). The runner never answers past its lease
 * (docs/limiter.md). Counted even without a limit configured, so one set later applies at once.
 *
 * When a reply will end is not known in advance: a refusal says retry in a second, and the queue
 * does not wait on a timer: the processor parks the user's wake-up in the item (`wk`) and the
 * settle that frees a slot releases it.
 */
const IN_FLIGHT_RETRY_MS = 1000;

/**
 * Writes `fl.<id> = lease` under `size(fl) < limit + k`, dropping in the same write the k lapsed
 * entries the belief knows of, each pinned to the lease it was seen with (no limit: no bound).
 * Used by the admission and by the takeover of a request whose slot lapsed.
 */
export function takeInFlightSlot(
  w: ExpressionWriter,
  args: {
    readonly snap: LimiterSnapshot;
    readonly requestId: string;
    readonly leaseUntilEpochMs: number;
    readonly limit: number | undefined;
    readonly nowMs: number;
  },
): void {
  const { snap, requestId, leaseUntilEpochMs, limit, nowMs } = args;
  const fl = w.name('fl');
  if (snap.inFlight === undefined) {
    w.condition(`attribute_not_exists(${fl})`);
    w.set(`${fl} = ${w.value({ [requestId]: leaseUntilEpochMs })}`);
    return;
  }
  const lapsed = Object.entries(snap.inFlight).filter(([id, lease]) => lease <= nowMs && id !== requestId);
  for (const [id, lease] of lapsed) {
    const entry = `${fl}.${w.name(id)}`;
    w.condition(`${entry} = ${w.value(lease)}`);
    w.remove(entry);
  }
  w.condition(
    limit === undefined ? `attribute_exists(${fl})` : `size(${fl}) < ${w.value(limit + lapsed.length)}`,
  );
  w.set(`${fl}.${w.name(requestId)} = ${w.value(leaseUntilEpochMs)}`);
}
const requestsInFlight: LimitKind = {
  name: 'requestsInFlight',
  label: 'requests in flight',
  waitsFor: 'slot',
  adminFlag: { flag: 'concurrent', field: 'requestsInFlight' },
  unit: 'requests',
  metric: 'InFlightLimitExceeded',
  resetScope: 'messages',
  // In-flight slots are replies being answered now: no reset gives them back.
  attributes: [],
  windowSeconds: () => 0,
  state({ policy, snap, nowMs }) {
    const limit = policy.requestsInFlight;
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
      limit: enforce ? policy.requestsInFlight : undefined,
      nowMs,
    });
  },
  // When a reply ends is not known: the estimate does not wait for it (docs/protocol.md).
  readyAtEpochMs: () => 0,
  release(w, { snap, requestId }) {
    const fl = w.name('fl');
    if (snap.inFlight !== undefined) {
      // Removing a key the map no longer has (lapsed and dropped) changes nothing, so a belief
      // that predates this request's admission needs no re-read.
      w.condition(`attribute_exists(${fl})`);
      w.remove(`${fl}.${w.name(requestId)}`);
    } else {
      // No map as far as we know: the write pins that (an admission since would have made one).
      w.condition(`attribute_not_exists(${fl})`);
    }
  },
};

/** Every per-user limit, in the order `status` lists them. */
export const LIMIT_KINDS: readonly LimitKind[] = [
  messageRate,
  windowQuota({
    name: 'hourlyMessages',
    label: 'hourly messages',
    flag: 'hourly',
    windowAttr: 'hw',
    countAttr: 'hc',
    windowMs: HOUR_MS,
    windowOf: hourNumber,
  }),
  windowQuota({
    name: 'dailyMessages',
    label: 'daily messages',
    flag: 'daily',
    windowAttr: 'dw',
    countAttr: 'dc',
    windowMs: DAY_MS,
    windowOf: dayNumber,
  }),
  windowBudget({
    name: 'dailyTokens',
    label: 'daily tokens',
    flag: 'daily-tokens',
    unit: 'tokens',
    windowAttr: 'td',
    usedAttr: 'tu',
    ...DAILY,
  }),
  requestsInFlight,
  tokensPerMinute,
  windowBudget({
    name: 'monthlyTokens',
    label: 'monthly tokens',
    flag: 'monthly-tokens',
    unit: 'tokens',
    windowAttr: 'tm',
    usedAttr: 'tmu',
    ...MONTHLY,
  }),
  windowBudget({
    name: 'dailyCostUsd',
    label: 'daily cost',
    flag: 'daily-cost',
    unit: 'usd',
    windowAttr: 'cd',
    usedAttr: 'cu',
    ...DAILY,
  }),
  windowBudget({
    name: 'monthlyCostUsd',
    label: 'monthly cost',
    flag: 'monthly-cost',
    unit: 'usd',
    windowAttr: 'cm',
    usedAttr: 'cmu',
    ...MONTHLY,
  }),
];

export function isLimitName(name: string): name is LimitName {
  return LIMIT_KINDS.some((k) => k.name === name);
}

export function limitKind(name: LimitName): LimitKind {
  const kind = LIMIT_KINDS.find((k) => k.name === name);
  if (!kind) throw new Error(`no limit kind ${name}`);
  return kind;
}

/** The item attributes a `reset` of this scope clears. */
export function resetAttributes(scope: 'messages' | 'tokens' | 'cost' | 'all'): string[] {
  return LIMIT_KINDS.filter((k) => scope === 'all' || k.resetScope === scope).flatMap((k) => k.attributes);
}
