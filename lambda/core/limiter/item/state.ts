import type { ActiveRequest, QueuedRequest } from '../../queue/request';
import type { LimitOverride, LimitPolicy, LimitState } from '../kinds/registry';
import type { Tier } from '../tiers';

/**
 * One user's limiter item, as plain data (item/codec.ts reads it from the stored item; the names
 * each field is stored under are in item/attributes.ts). The limit kinds' counters keep their
 * stored names here (`tat`, `hw`, …): each kind declares them (lambda/core/limiter/kinds).
 */
export interface LimiterSnapshot {
  /** False when there is no item (a user never seen, or a belief of "nothing known"). */
  readonly exists: boolean;
  /** Policy version: bumped by every admin change of tier or override; decisions pin it. */
  readonly policyVersion: number;
  readonly tier?: Tier;
  /** The user's team set by an admin (`tn`, SPEC §9.4); it wins over the token's `team` claim. */
  readonly team?: string;
  /** The tier the last admitted token claimed (`ct`); the record's `tier` wins over it. */
  readonly lastClaimTier?: Tier;
  /** The team the last admitted token claimed (`ctn`); the record's `team` wins over it. */
  readonly lastClaimTeam?: string;
  readonly override?: LimitOverride;
  /** GCRA theoretical arrival time of the message bucket (epoch ms). */
  readonly tat?: number;
  /** Hour window number (epoch hours) and messages counted in it. */
  readonly hw?: number;
  readonly hc?: number;
  /** Day window number (epoch days) and messages counted in it. */
  readonly dw?: number;
  readonly dc?: number;
  /** Token day (epoch days) and tokens reserved or used in it. */
  readonly td?: number;
  readonly tu?: number;
  /** Token month (months since 1970) and tokens reserved or used in it. */
  readonly tm?: number;
  readonly tmu?: number;
  /** Theoretical arrival time of the tokens-per-minute bucket (epoch ms). */
  readonly ttat?: number;
  /** Cost day and cost reserved or used in it (µUSD); cost month and its cost (µUSD). */
  readonly cd?: number;
  readonly cu?: number;
  readonly cm?: number;
  readonly cmu?: number;
  /** Token epoch: bumped by a reset of tokens, so reservations made before it refund no tokens. */
  readonly tokenEpoch: number;
  /** Cost epoch: bumped by a reset of cost, so reservations made before it refund no cost. */
  readonly costEpoch: number;
  /** The user's waiting request ids, head first: the order they will run in. */
  readonly waiting: readonly string[];
  /** The waiting (and the active) requests' data, by request id (`q_<id>`). */
  readonly queued: Readonly<Record<string, QueuedRequest>>;
  /** The queued request being answered now, if any (`act`). */
  readonly active?: ActiveRequest;
  /**
   * The user's requests being answered now (`fl`): request id → the lease after which a crashed
   * runner's slot counts no more (epoch ms). Absent until the first admission.
   */
  readonly inFlight?: Readonly<Record<string, number>>;
  /**
   * The receipt handle of the user's SQS wake-up, parked while every in-flight slot is taken
   * (`wk`): the settle that frees a slot takes it out and makes the wake-up visible at once.
   */
  readonly parkedWakeUp?: string;
  /** The waiting list's version (`qv`; lambda/core/queue/places.ts): 0 until an entry leaves it. */
  readonly queueVersion?: number;
  /** When the self-healing sweep looks at this user next (`sa`; lambda/core/queue/sweep.ts). */
  readonly sweepAfterEpochMs?: number;
  /** Closed days' usage by day number (`hist`), kept for `usage --history`. */
  readonly history?: Readonly<Record<number, StoredDay>>;
  /** What the settles of one day charged (`ud`, `st`, `sc`, `sm`): the usage index's entry. */
  readonly settledUsage?: SettledUsage;
  /** The last closed day (`hd`), until the next day closes (its history item may not be written). */
  readonly heldDay?: ClosedDay;
  /** Requests queued per day number (`nq<day>`), until the day goes to history. */
  readonly queuedByDay: Readonly<Record<number, number>>;
  /** The window each limit last warned in (`w_<limit>`): one `limit_warning` per limit and window. */
  readonly warned: Readonly<Record<string, number>>;
  /** The window each limit was last used up in (`wf_<limit>`): its 100 % event, once per window. */
  readonly warnedFull?: Readonly<Record<string, number>>;
  /** Pending reservations by request id, until reconciled (`r_<id>`). */
  readonly reservations: Readonly<Record<string, PendingReservation>>;
  /**
   * Settled requests' charges left for their global share (`gs_<id>`), by request id: when each
   * expires (epoch ms). See SETTLED_SHARE_PREFIX.
   */
  readonly settledShares?: Readonly<Record<string, number>>;
  /**
   * A global shard's compact share records (`gr`, global/share-record.ts): the ids of the requests
   * it holds a share of. Absent until the shard's first admission (and on users' items).
   */
  readonly shareRecords?: readonly string[];
}

/** The user's item as the limiter sees it, with the policy and limits it implies. */
export interface LimiterView {
  readonly snap: LimiterSnapshot;
  readonly tier: Tier;
  readonly policy: LimitPolicy;
  readonly limits: readonly LimitState[];
  /**
   * When the call that saw this item was sent, on the limiter's clock: a decision may refuse from
   * what was seen since then (`decide`'s `seenSinceMs`).
   */
  readonly observedAtMs: number;
}

/**
 * A reservation waiting for reconcile (`r_<id>`, stored under RESERVATION_FIELDS' names): what it
 * reserved, the windows and epochs it was counted in, and who claimed it.
 */
export interface PendingReservation {
  /** The day it was counted in (epoch days). */
  readonly day: number;
  /**
   * The window each budget counted it in, under the stored field the budget's kind declares as
   * its `markerField` (kinds/registry.ts `markerWindows`): the kind reads its own, so a new budget
   * needs no field here. Every number of the stored marker but its amounts and epochs, by stored name.
   */
  readonly windows?: Readonly<Record<string, number>>;
  /** The month it was counted in (absent on reservations made before monthly budgets). */
  readonly month?: number;
  /** The cost reserved (µUSD). */
  readonly costMicroUsd?: number;
  /** The model that answers it. */
  readonly model?: string;
  readonly inputTokens: number;
  readonly outputAllowance: number;
  /** Token epoch at reservation time (absent: 0). */
  readonly tokenEpoch?: number;
  /** Cost epoch at reservation time (absent: 0). */
  readonly costEpoch?: number;
  /**
   * The claim of the reply runner answering a direct request (a random id per invocation), set by
   * its claim before the model runs: only that runner may settle it (issue 20, finding 15).
   * Absent until a runner claims it. A queued request's claim is on `act` instead.
   */
  readonly claim?: string;
}

/** One closed day (stored under HISTORY_FIELDS' names). */
export interface StoredDay {
  readonly tokens: number;
  readonly costMicroUsd: number;
  readonly messages: number;
  readonly queued: number;
}

/** The usage index's entry: the settles of the day in `key` (`<day>#<bucket>`). */
export interface SettledUsage {
  readonly key: string;
  readonly tokens: number;
  readonly costMicroUsd: number;
  readonly messages: number;
}

/** A closed UTC day's usage and its day number. */
export interface ClosedDay extends StoredDay {
  readonly day: number;
}

/** Longer than any lease plus the sweep's margin: the sweep has looked at the share by then. */
export const SETTLED_SHARE_LIFE_MS = 3600_000;

export const EMPTY_SNAPSHOT: LimiterSnapshot = Object.freeze({
  exists: false,
  policyVersion: 0,
  tokenEpoch: 0,
  costEpoch: 0,
  waiting: [],
  queued: {},
  warned: {},
  reservations: {},
  queuedByDay: {},
});

/** The in-flight requests whose lease has not lapsed at `nowMs`. */
export function liveInFlight(snap: LimiterSnapshot, nowMs: number): [string, number][] {
  return Object.entries(snap.inFlight ?? {}).filter(([, lease]) => lease > nowMs);
}
