/**
 * The limiter's decisions and reservations as plain values (Upstash-style `RatelimitResponse`: a
 * refusal is a value, not an exception), and the port every limiter store implements. No AWS types
 * here. The kinds never import this file: it sits above them (decision → kinds, never back).
 */

import type { GlobalLimit, GlobalLimitName, GlobalLimitState } from './global/limits';
import type { GlobalReservation } from './global/share-record';
import type { DayUsage } from './history';
import type {
  BudgetCrossing,
  LimitName,
  LimitOverride,
  LimitPolicy,
  LimitState,
  LimitWarning,
} from './kinds/registry';
import type { Tier } from './tiers';

export type { BudgetCrossing, LimitWarning } from './kinds/registry';

/** Tokens held for one admitted request until `reconcile`. */
export interface TokenReservation {
  readonly userId: string;
  readonly requestId: string;
  /** The UTC day (epoch days) the tokens were reserved against. */
  readonly dayNumber: number;
  /** The token's tier claim at admission: the settle applies the same tier's limits. */
  readonly claimTier?: Tier;
  readonly inputTokens: number;
  /** Max output tokens the model may produce: the model call must be capped at this. */
  readonly outputAllowance: number;
  /** inputTokens + outputAllowance. */
  readonly reservedTokens: number;
  /** What the reserved tokens cost on the request's model (µUSD, rounded up). @default 0 */
  readonly reservedCostMicroUsd?: number;
  /** The model's price, so the settle prices the actual usage the same way. @default free */
  readonly price?: { readonly inputUsdPerMillion: number; readonly outputUsdPerMillion: number };
  /** The user's token epoch when reserved: a reset of tokens since then makes the refund void. */
  readonly tokenEpoch?: number;
  /** The user's cost epoch when reserved: a reset of cost since then makes the cost refund void. */
  readonly costEpoch?: number;
  /**
   * The tokens-per-minute bucket's arrival time right after this reservation moved it (from the
   * write's answer): the settle gives back at most what of the reservation is still ahead of now.
   * Absent: the reservation did not move the bucket (or is not known to have), and nothing flows
   * back to it.
   */
  readonly bucketAfterEpochMs?: number;
  /** What it took from a global shard (global limits on): the settle gives the unused part back there. */
  readonly global?: GlobalReservation;
  /**
   * The user's team at admission and what it took from the team's shard (team limits on, SPEC
   * §9.4): the settle gives the unused part back there. `share` absent: the team had no limits.
   */
  readonly team?: { readonly name: string; readonly share?: GlobalReservation };
}

export interface DecideInput {
  readonly userId: string;
  /** Client-chosen or generated; the reservation is keyed by it (reconcile is idempotent per id). */
  readonly requestId: string;
  /** The token's `tier` claim; the user's record wins when it has a tier. */
  readonly claimTier?: Tier;
  /** The token's `team` claim (SPEC §9.4); the user's record (admin `set-team`) wins when it has one. */
  readonly claimTeam?: string;
  readonly estimatedInputTokens: number;
  /** Requested max output tokens; the policy default when absent. */
  readonly maxTokens?: number;
  /** The model's maximum output per reply (SPEC §2): caps the allowance. */
  readonly modelMaxOutputTokens?: number;
  /** The model's price: cost budgets reserve and settle by it. @default free */
  readonly price?: { readonly inputUsdPerMillion: number; readonly outputUsdPerMillion: number };
  /** The model the request names (`sendMessage.model`); the tier's default when absent. */
  readonly model?: string;
  /** How many messages it counts for: set by the limiter from the model. @default 1 */
  readonly messageWeight?: number;
  /**
   * How the user's waiting queue takes part in the same atomic write:
   * - `direct` (default): admit only if the user has nobody waiting (no overtaking);
   * - `replay`: the request at the head of the user's queue; admitting removes it from the queue
   *   and makes it the user's active request, leased until `leaseUntilEpochMs`.
   */
  readonly queue?:
    | { readonly mode: 'direct' }
    | {
        readonly mode: 'replay';
        readonly leaseUntilEpochMs: number;
        /** When the request was queued and its deadline: its place when global capacity is short. */
        readonly enqueuedAtEpochMs?: number;
        readonly deadlineEpochMs?: number;
      };
  /**
   * The caller has seen the item as of this moment (a `view`'s `observedAtMs`): a refusal may be
   * decided from what was seen since, instead of only from what was seen after the call. The
   * processor passes the read it just made. @default the call's own time
   */
  readonly seenSinceMs?: number;
}

export interface AllowedDecision {
  readonly allowed: true;
  readonly tier: Tier;
  /** The effective limits applied (tier + unexpired override): queue ETAs are derived from them. */
  readonly policy: LimitPolicy;
  /** The user's waiting request ids after this decision, head first (a replay removes the head). */
  readonly waiting: readonly string[];
  readonly reservation: TokenReservation;
  readonly limits: readonly LimitState[];
  /** True when the store failed and the fail-open policy admitted the request without counting it. */
  readonly failedOpen: boolean;
  /**
   * Until when the request holds its in-flight slot if it is never settled (epoch ms): its reply
   * must end by then. Absent when it failed open (it holds nothing).
   */
  readonly inFlightUntilEpochMs?: number;
  /** The model that answers (the tier's fallback when a cost budget is spent and it has one). */
  readonly model?: string;
  /** The model the request would have used, when the fallback answers instead. */
  readonly fallbackFrom?: string;
  /** Shadow limits this admission exceeded (reported, not enforced). */
  readonly shadowExceeded?: readonly LimitName[];
  /** Budgets and quotas it leaves at ≤ 20 % remaining, each the first time in its window. */
  readonly warnings?: readonly LimitWarning[];
  /** Budgets and quotas it took past 80 % or 100 % used, each the first time in its window (§9.5). */
  readonly budgetCrossings?: readonly BudgetCrossing[];
  /**
   * Global daily cost: how full the shard it was counted in is now, relative to its share (%) —
   * the `GlobalCostPercent` metric; shards fill evenly, so its maximum tracks the whole.
   */
  readonly globalCostPercent?: number;
}

export interface DeniedDecision {
  readonly allowed: false;
  readonly tier: Tier;
  /** The effective limits applied (tier + unexpired override). */
  readonly policy: LimitPolicy;
  /**
   * The limit that blocks, or:
   * - `queue`: the limiter would admit but the user has requests waiting (direct mode), or the
   *   request is not (or no longer) at the head of the queue (replay mode);
   * - `duplicate`: a request with this id is still in flight or waiting (direct mode);
   * - `busy`: the user's item stayed contended, throttled or slow through every retry: nothing
   *   was counted, and nothing may be admitted uncounted (SPEC §2 Bursts);
   * - `unavailable`: the store is down for everyone (the breaker is open) and the policy is
   *   fail-closed.
   */
  readonly limit:
    | LimitName
    | GlobalLimitName
    | TeamLimitName
    | 'queue'
    | 'duplicate'
    | 'busy'
    | 'unavailable'
    | 'model';
  /** The team whose limit refused it (a `team.<limit>` refusal, or a team member waiting first). */
  readonly team?: string;
  /** Exactly when this request would fit every limit, from now. 0 for `queue`. */
  readonly retryAfterMs: number;
  /** When the blocking limit resets (epoch ms). */
  readonly resetAtEpochMs: number;
  readonly limits: readonly LimitState[];
  /** Number of the user's requests waiting (known from the same read). */
  readonly queued: number;
  /** When a model's account quota binds (`global.model.<id>.…`): the quota, for the reason. */
  readonly quotaLimit?: number;
}

export type Decision = AllowedDecision | DeniedDecision;

export interface TokenUsage {
  readonly inputTokens: number;
  readonly outputTokens: number;
}

export type ResetScope = 'messages' | 'tokens' | 'cost' | 'all';

/**
 * Where the tier in effect comes from: the user's record (an admin's `set-tier`), the token of this
 * request, the last token admitted (admin `usage`, which has none), or nothing (`free`).
 */
/** `status` without a token (admin `usage`): the tier the last admitted token claimed stands in for it. */

export type TierSource = 'record' | 'token' | 'last token' | 'default';

export interface UserStatus {
  readonly userId: string;
  readonly tier: Tier;
  readonly tierSource?: TierSource;
  readonly policy: LimitPolicy;
  readonly limits: readonly LimitState[];
  /** The user's waiting request ids, head first. */
  readonly queued: readonly string[];
  readonly override?: LimitOverride;
  /** False when the store has no item for this user yet (admin `usage` reports unknown users). */
  readonly known?: boolean;
  /** The stack-wide limits' totals over all users, when the stack has global limits. */
  readonly global?: readonly GlobalLimitState[];
  /** Usage per UTC day, oldest first, today last (admin `usage --history`). */
  readonly history?: readonly DayUsage[];
  /** The user's team and its limits' totals over its members, when the user is in a team (§9.4). */
  readonly team?: TeamStatus;
}

/** Where the team in effect comes from: the user's record (admin `set-team`) or a token's claim. */
export type TeamSource = 'record' | 'token' | 'last token';

/** A team limit's totals over the team's members: as a global one, named `team.<limit>`. */
export type TeamLimitState = Omit<GlobalLimitState, 'name'> & { readonly name: TeamLimitName };
export type TeamLimitName = `team.${GlobalLimit}`;

/** A user's team (SPEC §9.4): its name, where it comes from, and its limits' totals. */
export interface TeamStatus {
  readonly name: string;
  readonly source: TeamSource;
  /** Every team limit set for it (limits.teams.<name>, else limits.teamDefaults); none: []. */
  readonly limits: readonly TeamLimitState[];
}

/** What `status` reads besides the user's item. */
export interface StatusOptions {
  /** Without a token (admin `usage`): the tier the last admitted token claimed is the one in effect. */
  readonly claimFromLastToken?: boolean;
  /** The closed days' history items too (admin `usage --history`). @default false */
  readonly history?: boolean;
  /** The token's `team` claim (SPEC §9.4): the user's record wins when it has a team. */
  readonly claimTeam?: string;
}

/** The operations every limiter store offers (DynamoDB in AWS and locally). */
export interface Limiter {
  decide(input: DecideInput, nowMs: number): Promise<Decision>;
  /** Refund (or charge) the difference between reservation and usage, once per request id. */
  reconcile(reservation: TokenReservation, usage: TokenUsage, nowMs: number): Promise<{ applied: boolean }>;
  status(
    userId: string,
    claimTier: Tier | undefined,
    nowMs: number,
    options?: StatusOptions,
  ): Promise<UserStatus>;
  reset(userId: string, scope: ResetScope, nowMs: number): Promise<void>;
}
