import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { StoreBreaker } from '../../core/limiter/breaker';
import type { DecisionBasis } from '../../core/limiter/decide/decisions';
import { policyOf, tierOf } from '../../core/limiter/decide/resolve';
import { hasGlobalLimits } from '../../core/limiter/global/limits';
import type { LimiterSnapshot } from '../../core/limiter/item/state';
import type { LimitPolicy } from '../../core/limiter/kinds/registry';
import type { TierLimits } from '../../core/limiter/policy';
import { teamOf } from '../../core/limiter/teams';
import type { Tier } from '../../core/limiter/tiers';
import { ECHO_MODEL, type ModelSpec } from '../../core/models';
import { FUNCTIONS } from '../../core/resources';
import { GlobalCounters } from './global-counters';
import { GlobalLine } from './global-line';
import { GlobalWaitEstimate } from './global-wait';
import type { DynamoLimiterOptions } from './options';
import { TeamCounters } from './team-counters';
import { UsageHistoryStore } from './usage-history';
import { UserItems } from './user-items';

/** What the limiter's operations share: the store, the policy, the models, the global counters. */
export class LimiterContext {
  readonly client: DynamoDBClient;
  readonly tableName: string;
  readonly tiers: TierLimits;
  readonly failPolicy: 'open' | 'closed';
  readonly onFailOpen?: (cause: string) => void;
  readonly onGlobalError?: (operation: string, cause: string) => void;
  readonly models: readonly ModelSpec[];
  readonly inFlightLeaseMs: number;
  readonly priorityUrgentMs: number;
  readonly random: () => number;
  readonly breaker: StoreBreaker;
  readonly items: UserItems;
  /** The global counters, when the stack has global limits. */
  readonly global?: GlobalCounters;
  /** Closed days' history items, when the stack names their table. */
  readonly history?: UsageHistoryStore;
  readonly onHistoryError?: (cause: string) => void;
  readonly maxQueuedPerUser: number;
  /** What this instance knows of the wait for global capacity, when the stack has global limits. */
  readonly globalWait?: GlobalWaitEstimate;
  /**
   * The line of users held back by a global or a team limit (one for all: a waiter's scope says
   * whose capacity it waits for), when the stack has either.
   */
  readonly line?: GlobalLine;
  /** The teams' counters, when the configuration has team limits (SPEC §9.4). */
  readonly teams?: TeamCounters;

  constructor(options: DynamoLimiterOptions) {
    this.client = options.client;
    this.tableName = options.tableName;
    this.tiers = options.tiers;
    this.failPolicy = options.failPolicy ?? 'open';
    this.onFailOpen = options.onFailOpen;
    this.onGlobalError = options.onGlobalError;
    this.models = options.models ?? [ECHO_MODEL];
    this.inFlightLeaseMs = options.inFlightLeaseMs ?? (FUNCTIONS.reply.timeoutSeconds + 60) * 1000;
    this.priorityUrgentMs = options.priorityUrgentMs ?? 60_000;
    this.random = options.random ?? Math.random;
    this.breaker = new StoreBreaker({
      silenceMs: options.breakerSilenceMs,
      clock: options.clock,
      onChange: options.onBreakerChange,
    });
    this.items = new UserItems({
      client: options.client,
      tableName: options.tableName,
      breaker: this.breaker,
      timeoutMs: options.timeoutMs,
      cacheSize: options.cacheSize,
      clock: options.clock,
      random: this.random,
    });
    if (options.historyTableName) {
      this.history = new UsageHistoryStore(options.client, options.historyTableName, this.items.timeoutMs);
    }
    this.onHistoryError = options.onHistoryError;
    this.maxQueuedPerUser = options.maxQueuedPerUser ?? 10;
    const teamsOn =
      Object.values(options.teams ?? {}).some(hasGlobalLimits) || hasGlobalLimits(options.teamDefaults);
    if (hasGlobalLimits(options.global) || teamsOn) {
      this.line = new GlobalLine(
        this.items,
        options.client,
        options.tableName,
        options.globalWaitersTtlMs,
        options.onGlobalError,
      );
    }
    if (teamsOn) {
      this.teams = new TeamCounters({
        items: this.items,
        client: options.client,
        tableName: options.tableName,
        config: { teams: options.teams, teamDefaults: options.teamDefaults },
        line: this.line!,
        random: this.random,
        onError: options.onGlobalError,
        leaseMs: this.inFlightLeaseMs,
        urgentMs: this.priorityUrgentMs,
      });
    }
    if (hasGlobalLimits(options.global)) {
      this.global = new GlobalCounters(this.items, options.client, options.tableName, options.global, {
        onError: options.onGlobalError,
        random: this.random,
        line: this.line,
      });
      const global = this.global;
      this.globalWait = new GlobalWaitEstimate({
        limits: global.limits,
        belief: (key) => this.items.belief(key),
        waiters: (o) => global.waiters(o),
        leaseMs: this.inFlightLeaseMs,
        urgentMs: this.priorityUrgentMs,
      });
    }
  }

  policyOf(snap: LimiterSnapshot, claimTier: Tier | undefined, nowMs: number): LimitPolicy {
    return policyOf(this.tiers, snap, claimTier, nowMs);
  }

  /** The team in effect (the record's, else the claim's) and its counters, when it has limits. */
  teamOf(snap: LimiterSnapshot, claimTeam: string | undefined) {
    const name = teamOf(snap.team, claimTeam);
    const counters = name === undefined ? undefined : this.teams?.of(name);
    return name === undefined ? undefined : { name, counters };
  }

  /** The tier and policy that apply to the user as `snap` shows it, for a decision at `nowMs`. */
  basis(snap: LimiterSnapshot, claimTier: Tier | undefined, nowMs: number): DecisionBasis {
    return { tier: tierOf(snap, claimTier), policy: this.policyOf(snap, claimTier, nowMs), snap, nowMs };
  }
}
