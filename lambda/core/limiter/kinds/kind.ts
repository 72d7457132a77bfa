import * as z from 'zod';
import type { MetricName } from '../../metrics';
import type { ModelPrice } from '../../models';
import type { ExpressionWriter } from '../expression';
import type { GlobalPart } from './global-part';
import type { KindSnapshot } from './kind-snapshot';

/**
 * The contract of a limit kind. A kind file declares everything about its limit against these
 * types; registry.ts lists the kinds and derives every list from them (names, policy fields and
 * schemas, reset scopes, admin flags). Nothing here knows which kinds exist: the kinds import this
 * file, never the registry, so the registry can derive `LimitPolicy` and `LimitName` from them.
 */

export type { ModelPrice } from '../../models';

export type LimitUnit = 'messages' | 'tokens' | 'usd' | 'requests';

/** What a `reset --scope` clears (and `all`). */
export type KindResetScope = 'messages' | 'tokens' | 'cost';

/** The policy fields no kind owns: the same whatever kinds exist (policy.ts validates them). */
export type SharedPolicy = {
  /** Extra messages allowed back to back on top of one minute's worth: capacity = perMinute + burst. @default 5 */
  readonly burst: number;
  /** Output allowance when the client asks for no `maxTokens`. @default 1024 */
  readonly defaultMaxOutputTokens: number;
  /** Below this output allowance a request is not admitted. @default 16 */
  readonly minOutputTokens: number;
  /** Ids of the models this tier may use. @default every configured model */
  readonly models?: readonly string[];
  /** The model of a request that names none. @default the first of `models` */
  readonly defaultModel?: string;
  /** A cheaper model that answers instead of refusing when a cost budget is spent (soft landing). */
  readonly fallbackModel?: string;
  /** The most input tokens one request carries: a conversation's earlier turns stop there (§9.3). */
  readonly maxInputTokens?: number;
};

/**
 * A policy as a kind sees it: the shared fields, and every kind's own field by name (read it with
 * {@link limitIn}). The registry's `LimitPolicy` is one of these.
 */
export type KindPolicy = SharedPolicy & { readonly [field: string]: unknown };

/** The value of a kind's policy field: undefined when an optional limit is left unset. */
export function limitIn(policy: KindPolicy, field: string): number | undefined {
  const value = policy[field];
  return typeof value === 'number' ? value : undefined;
}

export { type KindSnapshot, storedNumber } from './kind-snapshot';

/** One limit's state for `status` and for decisions. */
export interface KindState<N extends string = string> {
  readonly name: N;
  readonly limit: number;
  readonly used: number;
  readonly remaining: number;
  /** When this limit is whole again (bucket full / next window). Epoch ms. */
  readonly resetAtEpochMs: number;
}

/** When a limit holds a request back: until when, and from now how long. */
export interface Blocking<N extends string = string> {
  readonly limit: N;
  readonly retryAfterMs: number;
  readonly resetAtEpochMs: number;
}

export interface KindInput {
  readonly policy: KindPolicy;
  readonly snap: KindSnapshot;
  readonly nowMs: number;
  /** The model the request runs on: its price turns tokens into cost. */
  readonly model: ModelPrice;
  /** How many messages the request counts for (its model's `messageWeight`). @default 1 */
  readonly weight?: number;
}

/** What a request takes from the budgets: tokens, and their cost in µUSD. */
export interface Amount {
  readonly tokens: number;
  readonly costMicroUsd: number;
}

export interface PlanInput extends KindInput {
  readonly reserved: Amount;
  readonly requestId: string;
  /** Until when the request holds its in-flight slot if its runner never settles (epoch ms). */
  readonly leaseUntilEpochMs: number;
  /** False for a shadow limit: counted and reported, never a reason for the write to fail. */
  readonly enforce: boolean;
}

/**
 * The reservation marker (`r_<id>`) a settle reads: each budget finds the window it counted the
 * reservation in under its `markerField` (read it with {@link markedWindow}).
 */
export interface ReservationMarker {
  /** Each budget's window by the stored field it declares (item/state.ts `PendingReservation`). */
  readonly windows?: Readonly<Record<string, number>>;
}

/** The window a budget recorded in the marker under `field`, if the marker has it. */
export function markedWindow(marker: ReservationMarker, field: string): number | undefined {
  const value = marker.windows?.[field];
  return typeof value === 'number' ? value : undefined;
}

export interface SettleInput extends KindInput {
  readonly pending: ReservationMarker;
  /** Refund (> 0) or extra charge (< 0), already capped so no budget is overdrawn. */
  readonly delta: Amount;
  /** The tokens-per-minute bucket's arrival time right after the reservation (see `TokenReservation`). */
  readonly bucketAfterEpochMs?: number;
}

/** A whole number of messages, tokens or requests: the schema of most policy fields. */
export const positiveInt = z.number().int().positive();
/** A budget in USD, counted to the micro-dollar. */
export const usd = z.number().positive().max(1_000_000);

/** A kind's policy field: its name in `LimitPolicy`, its zod schema, and whether every tier sets it. */
export interface PolicyField<F extends string = string, R extends boolean = boolean> {
  readonly name: F;
  readonly schema: z.ZodType<number>;
  /** Required: every tier has a value (the defaults set it). Optional: unset means no limit. */
  readonly required: R;
}

/**
 * What the contract suite needs to show the kind limits (test/integration/dynamo-limiter.test.ts):
 * with `policy` over the free tier, `fill` requests of `input` tokens asking `maxTokens` are
 * admitted (never settled), and the next one is refused by this kind.
 */
export interface KindExample {
  readonly policy: Readonly<Record<string, number>>;
  readonly input: number;
  readonly maxTokens: number;
  readonly fill: number;
}

/**
 * One kind of per-user limit, declared once: its name and unit, its window, how it is evaluated
 * and planned into the one conditional write, how `status` shows it, what it emits when it refuses,
 * which item attributes it keeps (for `reset`), and when the k-th waiting request fits it. Adding
 * a limit is one kind file, one line in registry.ts, its tests and its docs.
 */
export interface LimitKind<
  N extends string = string,
  F extends string = string,
  R extends boolean = boolean,
> {
  readonly name: N;
  /** How people read its name (SPEC §8): the page, the terminal client and the admin CLI show it. */
  readonly label: string;
  readonly unit: LimitUnit;
  /**
   * What frees room under it: time (a window or a bucket refills at a known instant), or a slot
   * (another request of the user settles; no clock can say when).
   */
  readonly waitsFor: 'time' | 'slot';
  /** The policy field that sets it (its own name, except the message rate's `messagesPerMinute`). */
  readonly policyField: PolicyField<F, R>;
  /** The metric a refusal by this limit emits. */
  readonly metric: MetricName;
  /** The admin CLI's `set-override` flag for it (`--<flag> N`), and the policy field it sets. */
  readonly adminFlag: { readonly flag: string; readonly field: F };
  /** What `reset --scope` clears it (and `all`). */
  readonly resetScope: KindResetScope;
  /** The item attributes it keeps (numbers; `reset` removes them, unless `resetKeeps`). */
  readonly attributes: readonly string[];
  /**
   * An accounting counter (`top` and `usage --history` read it): `reset` keeps `count` and frees
   * the limit by recording it in `freed` (shapes/window-counter.ts `freeWindow`), so a reset
   * changes the limit, never what was used (SPEC §9.5). Absent: `reset` removes `attributes`.
   */
  readonly resetKeeps?: { readonly count: string; readonly freed: string };
  /** Budgets: the reservation marker's field naming the window it counted the reservation in. */
  readonly markerField?: string;
  /**
   * Its stack-wide counterpart, when the stack may bound it across all users (SPEC §2 v2 "Global
   * limits"): how the shards count it, what a request takes, when it is whole again.
   */
  readonly global?: GlobalPart;
  /**
   * Buckets an admission may leave unmoved (tokens per minute): does an admission reserving
   * `tokens` move it? Always when enforced; a shadow bucket it would overfill stops counting. The
   * store keeps the arrival time the reservation left only when it moved (`bucketAfterEpochMs`).
   */
  movesBucket?(
    policy: KindPolicy,
    snap: KindSnapshot,
    nowMs: number,
    tokens: number,
    enforce: boolean,
  ): boolean;
  /** With `movesBucket`: the bucket's arrival time in this item (epoch ms), which the settle bounds its refund by. */
  bucketAt?(snap: KindSnapshot): number | undefined;
  /**
   * How the IETF RateLimit fields count it (draft-ietf-httpapi-ratelimit-headers, SPEC §9.3): its
   * quota unit (`qu`; absent: the draft's default, `requests`) and how many of those one unit of
   * `status` is (the draft's values are integers: a USD budget is told in µUSD).
   */
  readonly quota: { readonly unit?: string; readonly perShown: number };
  /**
   * Buckets: how room comes back, `amount` every `everyMs` — what a reason says ("one more every
   * 3 s"). Absent: room comes back all at once (a window ends) or when a reply ends (a slot).
   */
  refill?(policy: KindPolicy): { readonly amount: number; readonly everyMs: number };
  /** How the contract suite fills it. */
  readonly example: KindExample;
  /** Its window in seconds (a bucket's refill horizon: capacity × interval). */
  windowSeconds(policy: KindPolicy): number;
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
  state(input: KindInput): KindState<N> | undefined;
  /** Budgets only: the most output tokens it still allows a request with this input. */
  outputLeft?(input: KindInput, inputTokens: number): number;
  /**
   * Does it hold back a request that needs `need` (its reservation, or, when the budgets cannot
   * cover one, its input and the minimum output)?
   */
  blocking(state: KindState, input: KindInput, need: Amount): Blocking<N> | undefined;
  /**
   * Its part of the admission write: a condition that makes the update correct whatever the item
   * holds (the belief only picks the shape), and the update.
   */
  plan(w: ExpressionWriter, input: PlanInput): void;
  /** When the k-th waiting request fits this limit, each one ahead taking one message (epoch ms). */
  readyAtEpochMs(position: number, state: KindState, policy: KindPolicy): number;
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
  release?(w: ExpressionWriter, input: { readonly snap: KindSnapshot; readonly requestId: string }): void;
}
