import type { ActiveRequest, WaitingRequest } from '../queue/request';
import type { StoredDay } from './history';
import { kindAttributes, type LimitOverride, type LimitPolicy, type LimitState } from './kinds/registry';
import { isTier, type Tier } from './tiers';

/**
 * One user's limiter item, as plain data. Attribute names are short because they are written on
 * every decision; the table in docs/limiter.md spells them out.
 */
export interface LimiterSnapshot {
  /** False when there is no item (a user never seen, or a belief of "nothing known"). */
  readonly exists: boolean;
  /** Policy version: bumped by every admin change of tier or override; decisions pin it. */
  readonly pv: number;
  readonly tier?: Tier;
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
  readonly te: number;
  /** Cost epoch: bumped by a reset of cost, so reservations made before it refund no cost. */
  readonly ce: number;
  /** The user's waiting request ids, head first: the order they will run in. */
  readonly waiting: readonly string[];
  /** The waiting (and the active) requests' data, by request id (`q_<id>`). */
  readonly queued: Readonly<Record<string, WaitingRequest>>;
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
  /** Requests queued per day number (`nq<day>`), until the day goes to history. */
  readonly queuedByDay: Readonly<Record<number, number>>;
  /** The window each limit last warned in (`w_<limit>`): one `limit_warning` per limit and window. */
  readonly warned: Readonly<Record<string, number>>;
  /** Pending reservations by request id, until reconciled (`r_<id>`). */
  readonly reservations: Readonly<Record<string, PendingReservation>>;
  /**
   * Settled requests' charges left for their global share (`gs_<id>`), by request id: when each
   * expires (epoch ms). See SETTLED_SHARE_PREFIX.
   */
  readonly settledShares?: Readonly<Record<string, number>>;
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

/** A reservation waiting for reconcile: day, input tokens, output allowance, token epoch. */
export interface PendingReservation {
  readonly d: number;
  /** The month it was counted in (absent on reservations made before monthly budgets). */
  readonly m?: number;
  /** The cost reserved (µUSD). */
  readonly c?: number;
  /** The model that answers it. */
  readonly mo?: string;
  readonly i: number;
  readonly o: number;
  /** Token epoch at reservation time (absent: 0). */
  readonly e?: number;
  /** Cost epoch at reservation time (absent: 0). */
  readonly ce?: number;
  /**
   * The claim of the reply runner answering a direct request (`a`, a random id per invocation),
   * set by its claim before the model runs: only that runner may settle it (issue 20, finding 15).
   * Absent until a runner claims it. A queued request's claim is on `act` instead.
   */
  readonly a?: string;
}

/** Prefix of the top-level attributes holding pending reservations (`r_<requestId>`). */
export const RESERVATION_PREFIX = 'r_';
/** Prefix of the attributes holding the window each limit last warned in (`w_<limit>`). */
export const WARNED_PREFIX = 'w_';
/** Prefix of the top-level attributes holding waiting requests (`q_<requestId>`). */
export const QUEUED_PREFIX = 'q_';
/**
 * Prefix of the attributes a settle leaves when the stack has global limits (`gs_<requestId>` =
 * `{ t, c, x }`: the tokens and µUSD charged, and when the entry expires): if the share's release
 * on its shard never lands, the sweep gives back only what was not charged (releaseOrphans). Each
 * lives SETTLED_SHARE_LIFE_MS; a later settle of the user removes expired ones, the sweep the one it uses.
 */
export const SETTLED_SHARE_PREFIX = 'gs_';
/** Longer than any lease plus the sweep's margin: the sweep has looked at the share by then. */
export const SETTLED_SHARE_LIFE_MS = 3600_000;

export const EMPTY_SNAPSHOT: LimiterSnapshot = Object.freeze({
  exists: false,
  pv: 0,
  te: 0,
  ce: 0,
  waiting: [],
  queued: {},
  warned: {},
  reservations: {},
  queuedByDay: {},
});

/** The stored form of a waiting request (its id is in the attribute name). */
export function queuedItemValue(request: WaitingRequest): Record<string, unknown> {
  const { requestId: _id, ...rest } = request;
  return JSON.parse(JSON.stringify(rest));
}

/** Reads a snapshot from an unmarshalled item (or `undefined` for no item). */
export function snapshotFromItem(item: Record<string, unknown> | undefined): LimiterSnapshot {
  if (!item) return EMPTY_SNAPSHOT;
  const reservations: Record<string, PendingReservation> = {};
  const queued: Record<string, WaitingRequest> = {};
  const warned: Record<string, number> = {};
  const queuedByDay: Record<number, number> = {};
  const settledShares: Record<string, number> = {};
  for (const [key, value] of Object.entries(item)) {
    if (key.startsWith(SETTLED_SHARE_PREFIX) && typeof value === 'object' && value !== null) {
      const x = (value as Record<string, unknown>).x;
      settledShares[key.slice(SETTLED_SHARE_PREFIX.length)] = typeof x === 'number' ? x : 0;
    }
    if (/^nq\d+$/.test(key) && typeof value === 'number') queuedByDay[Number(key.slice(2))] = value;
    if (key.startsWith(RESERVATION_PREFIX) && isPending(value)) {
      reservations[key.slice(RESERVATION_PREFIX.length)] = value;
    } else if (key.startsWith(WARNED_PREFIX) && typeof value === 'number') {
      warned[key.slice(WARNED_PREFIX.length)] = value;
    } else if (key.startsWith(QUEUED_PREFIX) && typeof value === 'object' && value !== null) {
      const requestId = key.slice(QUEUED_PREFIX.length);
      queued[requestId] = { ...(value as Omit<WaitingRequest, 'requestId'>), requestId };
    }
  }
  return {
    // Every attribute a kind declares (kinds/registry.ts), so a new kind reads its own counters
    // without this parser naming them; the named fields below are the same values, typed.
    ...kindAttributes(item),
    exists: true,
    pv: num(item.pv) ?? 0,
    tier: isTier(item.tier) ? item.tier : undefined,
    override: isOverride(item.ovr) ? item.ovr : undefined,
    tat: num(item.tat),
    hw: num(item.hw),
    hc: num(item.hc),
    dw: num(item.dw),
    dc: num(item.dc),
    td: num(item.td),
    tu: num(item.tu),
    tm: num(item.tm),
    tmu: num(item.tmu),
    ttat: num(item.ttat),
    cd: num(item.cd),
    cu: num(item.cu),
    cm: num(item.cm),
    cmu: num(item.cmu),
    te: num(item.te) ?? 0,
    ce: num(item.ce) ?? 0,
    waiting: Array.isArray(item.waiting)
      ? item.waiting.filter((x): x is string => typeof x === 'string')
      : [],
    queued,
    warned,
    active: activeOf(item.act),
    inFlight: inFlightOf(item.fl),
    parkedWakeUp: typeof item.wk === 'string' ? item.wk : undefined,
    sweepAfterEpochMs: num(item.sa),
    queueVersion: num(item.qv),
    history: historyOf(item.hist),
    queuedByDay,
    reservations,
    ...(Object.keys(settledShares).length > 0 ? { settledShares } : {}),
  };
}

function activeOf(value: unknown): ActiveRequest | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const { id, lease, att, c } = value as Record<string, unknown>;
  if (typeof id !== 'string' || typeof lease !== 'number') return undefined;
  return {
    requestId: id,
    leaseUntilEpochMs: lease,
    attempts: typeof att === 'number' ? att : 1,
    ...(typeof c === 'string' ? { claim: c } : {}),
  };
}

function historyOf(value: unknown): Record<number, StoredDay> | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  const days: Record<number, StoredDay> = {};
  for (const [day, v] of Object.entries(value as Record<string, Partial<StoredDay>>)) {
    if (typeof v === 'object' && v !== null)
      days[Number(day)] = { t: v.t ?? 0, c: v.c ?? 0, m: v.m ?? 0, q: v.q ?? 0 };
  }
  return days;
}

function inFlightOf(value: unknown): Record<string, number> | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  const leases: Record<string, number> = {};
  for (const [id, lease] of Object.entries(value)) if (typeof lease === 'number') leases[id] = lease;
  return leases;
}

/** The in-flight requests whose lease has not lapsed at `nowMs` (the in-flight shape's). */
export { liveInFlight } from './kinds/shapes/in-flight';

function num(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) ? value : undefined;
}

function isPending(value: unknown): value is PendingReservation {
  const v = value as PendingReservation;
  return (
    typeof v === 'object' &&
    v !== null &&
    typeof v.d === 'number' &&
    typeof v.i === 'number' &&
    typeof v.o === 'number'
  );
}

function isOverride(value: unknown): value is LimitOverride {
  return typeof value === 'object' && value !== null && typeof (value as LimitOverride).limits === 'object';
}
