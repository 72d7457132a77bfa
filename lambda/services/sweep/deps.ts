import type { TokenReservation } from '../../core/limiter/decision';
import type { GlobalCrossing, TeamCrossing } from '../../core/limiter/global/crossings';
import type { RepairKind } from '../../core/queue/sweep';
import type {
  ConnectionDirectory,
  ConnectionSender,
  EventsPort,
  LogPort,
  MetricsPort,
  ReplyStorePort,
  RequestQueuePort,
  SweepIndexPort,
  SweepLimiterPort,
} from '../ports';

export interface SweepSettings {
  /** Users looked at in one run at most (the rest, still due, are the next run's). @default 800 */
  readonly maxUsersPerRun: number;
  /** Users looked at side by side. @default 8 */
  readonly concurrency: number;
}

export const DEFAULT_SWEEP_SETTINGS: SweepSettings = Object.freeze({ maxUsersPerRun: 800, concurrency: 8 });

export interface SweepDeps {
  readonly limiter: SweepLimiterPort & {
    /**
     * The global budgets' 80 % / 100 % crossings whose once-per-window mark this call wrote (each
     * returned once per window across runs and instances); absent or [] without global limits.
     */
    markGlobalCrossings?(nowMs: number): Promise<GlobalCrossing[]>;
    /** The teams with limits (named in the configuration or seen); absent or [] without teams. */
    teamsWithLimits?(): Promise<string[]>;
    /** As markGlobalCrossings, for one team's budgets (its own marks, SPEC §9.5 scope `team`). */
    markTeamCrossings?(team: string, nowMs: number): Promise<TeamCrossing[]>;
  };
  readonly index: SweepIndexPort;
  readonly queue: Pick<RequestQueuePort, 'send' | 'depth' | 'defer'>;
  readonly store: ReplyStorePort;
  readonly sender: ConnectionSender;
  readonly directory: ConnectionDirectory;
  readonly events: EventsPort;
  readonly metrics: MetricsPort;
  readonly log: LogPort;
  readonly settings: SweepSettings;
  readonly now: () => number;
  /**
   * A model's price by id, so a reply a runner kept is charged what it cost. @default none: a
   * kept reply's cost is not charged (its tokens are)
   */
  readonly prices?: (modelId: string) => TokenReservation['price'];
}

/** What one run did. */
export interface SweepReport {
  /** Users the index said were due. */
  readonly looked: number;
  /** Repairs made, by kind. */
  readonly repaired: Readonly<Record<RepairKind, number>>;
  /** Users whose look failed (a fault): still due, the next run looks again. */
  readonly failed: number;
}
