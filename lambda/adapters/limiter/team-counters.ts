import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { GetItemCommand, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { describeError } from '../../core/errors';
import { hasGlobalLimits } from '../../core/limiter/global/limits';
import { KEY_ATTR, TEAMS_INDEX_KEY, TEAMS_SEEN_ATTR } from '../../core/limiter/item/attributes';
import { isTeamName, type TeamsConfig, teamLimitsOf, teamShardPrefix } from '../../core/limiter/teams';
import { GlobalCounters } from './global-counters';
import type { GlobalLine } from './global-line';
import { GlobalWaitEstimate } from './global-wait';
import type { UserItems } from './user-items';

/**
 * Every team's counters (SPEC §9.4): one {@link GlobalCounters} per team with limits, over the
 * team's own shards (`team#<name>#<k>`), made the first time this instance meets the team. Their
 * waiters wait in the stack's one line, under the team's scope.
 *
 * How every team share ends: its request's settle releases it (the reservation says which shard;
 * else the team's shards are read for it); a decision that took it and was then refused gives it
 * back at once; a share whose settle never comes holds its in-flight slot only until its lease, and
 * the sweep gives back what it took and was not charged (releaseOrphans, over every team the
 * configuration names or TEAMS_INDEX_KEY has seen).
 */
export class TeamCounters {
  private readonly counters = new Map<string, GlobalCounters | undefined>();
  /** Each team's wait estimate, kept: it learns how long the team's slots are held as it watches. */
  private readonly waits = new Map<string, GlobalWaitEstimate>();
  /** Teams this instance wrote (or is writing) to the index: never written again by it. */
  private readonly indexed = new Map<string, Promise<void>>();

  constructor(
    private readonly deps: {
      readonly items: UserItems;
      readonly client: DynamoDBClient;
      readonly tableName: string;
      readonly config: TeamsConfig;
      readonly line: GlobalLine;
      readonly random: () => number;
      readonly onError?: (operation: string, cause: string) => void;
      /** The lease a slot is taken with, and when a waiter near its deadline goes first (the ETA's). */
      readonly leaseMs: number;
      readonly urgentMs: number;
    },
  ) {}

  /** The team's counters, when it has limits (its own entry, else the defaults); else none. */
  of(team: string): GlobalCounters | undefined {
    if (this.counters.has(team)) return this.counters.get(team);
    const limits = isTeamName(team) ? teamLimitsOf(this.deps.config, team, hasGlobalLimits) : undefined;
    const { items, client, tableName, line, random, onError } = this.deps;
    const counters = limits
      ? new GlobalCounters(items, client, tableName, limits, {
          keyPrefix: teamShardPrefix(team),
          line,
          random,
          onError,
        })
      : undefined;
    this.counters.set(team, counters);
    return counters;
  }

  /**
   * What this instance knows of the wait for the team's in-flight slots (SPEC §9.5; the stack's
   * GlobalWaitEstimate over the team's shards and its waiters only), when the team has limits.
   */
  waitOf(team: string): GlobalWaitEstimate | undefined {
    const counters = this.of(team);
    if (!counters) return undefined;
    let wait = this.waits.get(team);
    if (!wait) {
      const { items, leaseMs, urgentMs } = this.deps;
      wait = new GlobalWaitEstimate({
        limits: counters.limits,
        belief: (key) => items.belief(key),
        waiters: (o) => counters.waiters(o),
        leaseMs,
        urgentMs,
        key: counters.key,
        team,
      });
      this.waits.set(team, wait);
    }
    return wait;
  }

  /**
   * Adds the team to the index of teams seen, the first time this instance takes a share of it (so
   * the sweep repairs its shards): one write per team and instance, not per decision. `ADD` to a
   * string set is idempotent; a write that fails is logged and tried at the next decision.
   */
  note(team: string): Promise<void> {
    // Decisions in flight at once for a team this instance has not noted share one write.
    const known = this.indexed.get(team);
    if (known) return known;
    const noted = this.writeIndex(team).catch((err: unknown) => {
      this.indexed.delete(team);
      this.deps.onError?.('team index', describeError(err));
    });
    this.indexed.set(team, noted);
    return noted;
  }

  private async writeIndex(team: string): Promise<void> {
    const { items, client, tableName } = this.deps;
    await items.call(() =>
      client.send(
        new UpdateItemCommand({
          TableName: tableName,
          Key: { [KEY_ATTR]: { S: TEAMS_INDEX_KEY } },
          UpdateExpression: 'ADD #t :t',
          ExpressionAttributeNames: { '#t': TEAMS_SEEN_ATTR },
          ExpressionAttributeValues: { ':t': { SS: [team] } },
        }),
        { abortSignal: AbortSignal.timeout(items.timeoutMs) },
      ),
    );
  }

  /** Every team with limits the configuration names or the index has seen (one read). */
  async known(): Promise<string[]> {
    const { items, client, tableName, config } = this.deps;
    const { Item } = await items.call(() =>
      client.send(
        new GetItemCommand({
          TableName: tableName,
          Key: { [KEY_ATTR]: { S: TEAMS_INDEX_KEY } },
          ConsistentRead: true,
        }),
        { abortSignal: AbortSignal.timeout(items.timeoutMs) },
      ),
    );
    const seen = Item?.[TEAMS_SEEN_ATTR]?.SS ?? [];
    const names = new Set([...Object.keys(config.teams ?? {}), ...seen]);
    return [...names].filter((team) => this.of(team) !== undefined).sort();
  }
}
