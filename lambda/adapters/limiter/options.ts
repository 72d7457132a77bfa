import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { BreakerState } from '../../core/limiter/breaker';
import type { GlobalLimits } from '../../core/limiter/global/limits';
import type { TierLimits } from '../../core/limiter/policy';
import type { ModelSpec } from '../../core/models';

export interface DynamoLimiterOptions {
  readonly client: DynamoDBClient;
  readonly tableName: string;
  readonly tiers: TierLimits;
  /**
   * The table of closed days' history items (the Requests table; lambda/core/limiter/history.ts).
   * Without it a closed day stays only in the user's item until the next day closes. @default none
   */
  readonly historyTableName?: string;
  /** The stack's `maxQueuedPerUser`, for the item size check of an admin's change. @default 10 */
  readonly maxQueuedPerUser?: number;
  /** Called when a day's history write failed (logs); the next roll writes the day again. */
  readonly onHistoryError?: (cause: string) => void;
  /** What a decision does while the store is down for everyone (breaker open). @default 'open' */
  readonly failPolicy?: 'open' | 'closed';
  /** Per-call timeout of the limiter's DynamoDB calls. @default 2000 */
  readonly timeoutMs?: number;
  /** Called when a decision fails open (WARN log with the cause, `LimiterFailOpen` metric). */
  readonly onFailOpen?: (cause: string) => void;
  /** The models the stack offers, with prices. @default the echo model */
  readonly models?: readonly ModelSpec[];
  /** Called when giving back to a global shard failed (logs). */
  readonly onGlobalError?: (operation: string, cause: string) => void;
  /** Called when the breaker opens or closes (logs). */
  readonly onBreakerChange?: (state: BreakerState, detail: { readonly cause?: string }) => void;
  /** The breaker's silence before it opens. @default 3000 */
  readonly breakerSilenceMs?: number;
  /**
   * How long a direct request holds its in-flight slot if its runner never settles: the reply
   * runner's Timeout and a margin (a replayed request's lease is the processor's). The runner
   * never answers past it. @default (reply runner Timeout + 60 s)
   */
  readonly inFlightLeaseMs?: number;
  /** Stack-wide limits, sharded (SPEC §2 v2 "Global limits"). @default none */
  readonly global?: GlobalLimits;
  /** Team limits by team name (SPEC §9.4 `limits.teams`), sharded per team. @default none */
  readonly teams?: Readonly<Record<string, GlobalLimits>>;
  /** The limits of a team without its own entry (`limits.teamDefaults`). @default none */
  readonly teamDefaults?: GlobalLimits;
  /**
   * Priority when a global limit binds: a waiting request this close to its deadline goes before
   * every tier. @default 60_000
   */
  readonly priorityUrgentMs?: number;
  /** How long an instance trusts its view of who waits for global capacity. @default 1000 */
  readonly globalWaitersTtlMs?: number;
  /** Users whose last known item is kept for planning. @default 10_000 */
  readonly cacheSize?: number;
  readonly clock?: () => number;
  /**
   * Randomness in [0, 1): the spread of a busy refusal's retry, the retry backoff's jitter, the
   * choice among the emptiest global shards. @default Math.random
   */
  readonly random?: () => number;
}
