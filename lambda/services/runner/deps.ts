import type { ModelSpec } from '../../core/models';
import type { ReplyUsage } from '../../core/protocol';
import type { ReplyJob } from '../../core/reply-job';
import type {
  ConnectionDirectory,
  ConnectionSender,
  ConversationPort,
  LimiterPort,
  LogPort,
  MetricsPort,
  ModelPort,
  ReplyStorePort,
  RequestQueuePort,
  RetryableError,
  SettleHolder,
} from '../ports';
import { ReplyChannel } from '../reply-channel';
import type { StopMarkPort } from '../shared/stop-marks';

export interface ReplyRunnerSettings {
  /** Retries of a model fault worth retrying (throttling, a timeout) that produced nothing. @default 2 */
  readonly modelRetries: number;
  /** Backoff of the first retry, doubled for the next. @default 1000 */
  readonly modelRetryBaseMs: number;
  /** The model is stopped this long before the function's Timeout, so the reply still settles. @default 15_000 */
  readonly stopBeforeTimeoutMs: number;
  /** Backoff of the settle's first retry when the store is out, doubled up to the cap, jittered. @default 250 */
  readonly settleRetryBaseMs: number;
  /** @default 4000 */
  readonly settleRetryCapMs: number;
  /**
   * The settle is retried until this much time is left (before the function's Timeout or the
   * lease, whichever is first): enough to keep what was produced for the attempt that settles it.
   * @default 3000
   */
  readonly keepMarginMs: number;
  /**
   * While the model runs, the request's stop mark (`cancel` of it) is read this often: one
   * consistent GetItem of a sub-1 KB item (one read unit) per interval, so a stop lands within the
   * interval plus one read and the settle, under SPEC §9.3's 1 s. @default 500
   */
  readonly stopPollMs: number;
}

export const DEFAULT_RUNNER_SETTINGS: ReplyRunnerSettings = Object.freeze({
  modelRetries: 2,
  modelRetryBaseMs: 1000,
  stopBeforeTimeoutMs: 15_000,
  settleRetryBaseMs: 250,
  settleRetryCapMs: 4000,
  keepMarginMs: 3000,
  stopPollMs: 500,
});

export interface ReplyRunnerDeps {
  readonly limiter: Pick<LimiterPort, 'reconcile' | 'claim'>;
  readonly store: ReplyStorePort & StopMarkPort;
  readonly queue: Pick<RequestQueuePort, 'defer' | 'moveToDeadLetterQueue'>;
  readonly sender: ConnectionSender;
  readonly directory: ConnectionDirectory;
  /** The model of a job that names none (or names one not in `catalog`). */
  readonly model: ModelPort;
  /** The configured models by id, each with its adapter. */
  readonly catalog?: ReadonlyMap<string, { readonly spec: ModelSpec; readonly port: ModelPort }>;
  readonly metrics: MetricsPort;
  readonly log: LogPort;
  /** Conversations' turns (SPEC §9.3), and how long a written turn is kept. */
  readonly conversations?: { readonly port: ConversationPort; readonly ttlSeconds: number };
  readonly settings: ReplyRunnerSettings;
  readonly now: () => number;
  readonly sleep: (ms: number) => Promise<void>;
  /** Jitter of the backoffs. @default Math.random */
  readonly random?: () => number;
  /** A fresh claim id per invocation. @default 16 random hex digits */
  readonly newClaimId?: () => string;
}

/**
 * Whose settle this runner makes: its own claim, the claim of a runner whose reply it adopted, or
 * (ending an event Lambda gave up on) no runner's; none for a request admitted failed open.
 */
export type Holder = SettleHolder | undefined;

/** Nothing produced: nothing to charge. */
export const NOTHING: ReplyUsage = { inputTokens: 0, outputTokens: 0, totalTokens: 0 };

/** Exponential backoff with equal jitter, for the store's calls. */
export function backoffMs(deps: ReplyRunnerDeps, attempt: number): number {
  const { settings } = deps;
  const ceiling = Math.min(settings.settleRetryCapMs, settings.settleRetryBaseMs * 2 ** (attempt - 1));
  return ceiling / 2 + (deps.random ?? Math.random)() * (ceiling / 2);
}

export function isRetryable(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as Partial<RetryableError>).retryable === true;
}

/** The model of a job: the one it names from the catalog, else the default. */
export function modelOf(deps: ReplyRunnerDeps, job: ReplyJob): ModelPort {
  return (job.model ? deps.catalog?.get(job.model)?.port : undefined) ?? deps.model;
}

export function channelOf(deps: ReplyRunnerDeps, job: ReplyJob): ReplyChannel {
  return new ReplyChannel(job.userId, job.connectionId, deps);
}
