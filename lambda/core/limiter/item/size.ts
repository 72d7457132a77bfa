import { ConfigError } from '../../errors';
import { SWEEP_GRACE_MS, SWEEP_INTERVAL_SECONDS } from '../../queue/sweep';
import { FUNCTIONS } from '../../resources/functions';
import { HISTORY_DAYS } from '../history';
import { LIMIT_KINDS, type LimitOverride, type LimitPolicy, markerWindows } from '../kinds/registry';
import type { TierLimits } from '../policy';
import { TIERS, type Tier } from '../tiers';
import {
  ACTIVE_ATTR,
  ACTIVE_FIELDS,
  CLAIM_TEAM_ATTR,
  CLAIM_TIER_ATTR,
  COST_EPOCH_ATTR,
  HELD_DAY_ATTR,
  HISTORY_ATTR,
  IN_FLIGHT_ATTR,
  KEY_ATTR,
  OVERRIDE_ATTR,
  PARKED_WAKE_UP_ATTR,
  POLICY_VERSION_ATTR,
  QUEUE_VERSION_ATTRIBUTE,
  QUEUED_DAY_PREFIX,
  QUEUED_PREFIX,
  RESERVATION_PREFIX,
  SETTLED_USAGE_FIELDS,
  SWEEP_AFTER_ATTRIBUTE,
  SWEEP_BUCKET_ATTRIBUTE,
  TEAM_ATTR,
  TIER_ATTR,
  TOKEN_EPOCH_ATTR,
  TTL_ATTR,
  USAGE_DAY_ATTR,
  USAGE_TEAM_ATTR,
  userKey,
  WAITING_ATTR,
  WARNED_FULL_PREFIX,
  WARNED_PREFIX,
} from './attributes';
import { activeValue, queuedItemValue, reservationValue } from './codec';
import { closedDayValue } from './day-codec';

/**
 * The bound a user's item must stay under whatever happens, checked at `cdk synth`, `npm start` and
 * an admin's tier or override change (issue 22, SPEC §9.2): 128 KB, a third of DynamoDB's 400 KB
 * item limit. The worst case it bounds is pathological — every reply of the user hanging until its
 * lease and the sweep's repair (18 minutes), ids at their longest, every number at 16 digits — and
 * at 128 KB such an item still takes writes (128 units each, ~8 a second in one partition) with 3×
 * margin to the limit. It is not lower because the free tier's defaults, which fix the burst a user
 * sees (25 admitted / 10 queued / 265 refused), have no in-flight cap: their worst case is ~108 KB
 * (365 reservations held at once). In the ordinary state an item is ~300 bytes–2 KB.
 */
export const ITEM_SIZE_BOUND_BYTES = 128 * 1024;

/**
 * The longest a direct request holds its reservation marker (`r_<id>`) and in-flight entry when
 * nothing settles it: its in-flight lease (the reply runner's Timeout + 60 s), then the sweep's
 * grace and one sweep period, after which the sweep has repaired it (SPEC §9.1).
 */
export const RESERVATION_HOLD_MS =
  (FUNCTIONS.reply.timeoutSeconds + 60) * 1000 + SWEEP_GRACE_MS + SWEEP_INTERVAL_SECONDS * 1000;

/** The stack settings the worst case depends on. */
export interface ItemSizeSettings {
  /** Waiting requests a user may have (`maxQueuedPerUser`). */
  readonly maxQueuedPerUser: number;
  /** The model ids offered (the longest is assumed on every reservation). */
  readonly modelIds: readonly string[];
  /** @default RESERVATION_HOLD_MS */
  readonly reservationHoldMs?: number;
}

export interface WorstCaseItem {
  readonly bytes: number;
  /** Reservation markers it may hold at once. */
  readonly reservations: number;
  /** Bytes by part: `base`, `queue`, `reservations`, `override`. */
  readonly parts: Readonly<Record<string, number>>;
}

/** Longest ids anything may write: admin's userId bound, the protocol's requestId, SQS's receipt. */
const LONGEST = { userId: 256, requestId: 64, connectionId: 64, receiptHandle: 1024, claim: 36 };
/** A number with 16 significant digits (every counter, epoch ms, and amount is below 2^53). */
const BIG = 9_007_199_254_740_991;

/**
 * Reservation markers a user can hold at once: `requestsInFlight` when set (twice it: lapsed
 * entries leave `fl` at the next admission, their markers at the sweep's repair), else what the
 * message bucket admits while the first one is still held (burst + rate × the hold).
 */
export function maxReservations(policy: LimitPolicy, holdMs = RESERVATION_HOLD_MS): number {
  if (policy.requestsInFlight !== undefined) return 2 * policy.requestsInFlight;
  return policy.burst + Math.ceil((policy.messagesPerMinute * holdMs) / 60_000);
}

/**
 * The largest a user's limiter item can be under `policy` and `settings` (and an override), in
 * DynamoDB's billed bytes: every attribute at its longest (ids at their bounds, numbers at 16
 * digits), the waiting list full, every reservation the policy lets it hold at once, every warning
 * marker, a first-design `hist` of 35 days, and 35 days of queued counts. Not counted, and not
 * bounded yet: with global limits on, the settled-share records (`gs_<id>`, ~60 bytes per settle,
 * kept an hour; docs/performance.md "Capacity units").
 */
export function worstCaseUserItem(
  policy: LimitPolicy,
  settings: ItemSizeSettings,
  override?: LimitOverride,
): WorstCaseItem {
  const model = fill(Math.max(1, ...settings.modelIds.map((id) => id.length)));
  const id = (i: number) => String(i).padStart(LONGEST.requestId, FILLER);
  const reservations = maxReservations(policy, settings.reservationHoldMs);
  const day = { day: BIG, tokens: BIG, costMicroUsd: BIG, messages: BIG, queued: BIG };
  const base: Record<string, unknown> = {
    [KEY_ATTR]: userKey(fill(LONGEST.userId)),
    [POLICY_VERSION_ATTR]: BIG,
    [TIER_ATTR]: longest(TIERS),
    [CLAIM_TIER_ATTR]: longest(TIERS),
    [CLAIM_TEAM_ATTR]: fill(64),
    [TEAM_ATTR]: fill(64),
    [USAGE_TEAM_ATTR]: fill(64),
    [TOKEN_EPOCH_ATTR]: BIG,
    [COST_EPOCH_ATTR]: BIG,
    [QUEUE_VERSION_ATTRIBUTE]: BIG,
    [SWEEP_BUCKET_ATTRIBUTE]: '7',
    [SWEEP_AFTER_ATTRIBUTE]: BIG,
    [TTL_ATTR]: BIG,
    [USAGE_DAY_ATTR]: `${BIG}#255`,
    ...Object.fromEntries(Object.values(SETTLED_USAGE_FIELDS).map((a) => [a, BIG])),
    [HELD_DAY_ATTR]: closedDayValue(day),
    [HISTORY_ATTR]: Object.fromEntries(
      Array.from({ length: HISTORY_DAYS }, (_, i) => [String(BIG - i), closedDayValue(day)]),
    ),
    ...Object.fromEntries(
      Array.from({ length: HISTORY_DAYS }, (_, i) => [`${QUEUED_DAY_PREFIX}${BIG - i}`, BIG]),
    ),
    [PARKED_WAKE_UP_ATTR]: fill(LONGEST.receiptHandle),
    [ACTIVE_ATTR]: {
      ...activeValue({ requestId: id(0), leaseUntilEpochMs: BIG, attempts: BIG }),
      [ACTIVE_FIELDS.claim]: claim(),
    },
    ...Object.fromEntries(LIMIT_KINDS.flatMap((k) => k.attributes.map((a) => [a, BIG]))),
    ...Object.fromEntries(LIMIT_KINDS.filter((k) => k.warns).map((k) => [`${WARNED_PREFIX}${k.name}`, BIG])),
    ...Object.fromEntries(
      LIMIT_KINDS.filter((k) => k.warns).map((k) => [`${WARNED_FULL_PREFIX}${k.name}`, BIG]),
    ),
  };
  const queue: Record<string, unknown> = {
    [WAITING_ATTR]: Array.from({ length: settings.maxQueuedPerUser }, (_, i) => id(i)),
  };
  for (let i = 0; i < settings.maxQueuedPerUser; i++) {
    queue[`${QUEUED_PREFIX}${id(i)}`] = queuedItemValue({
      requestId: id(i),
      connectionId: fill(LONGEST.connectionId),
      maxTokens: BIG,
      model,
      claimTier: longest(TIERS),
      claimTeam: fill(64),
      estimatedInputTokens: BIG,
      enqueuedAtEpochMs: BIG,
      expiresAtEpochMs: BIG,
      notBeforeEpochMs: BIG,
      contentKey: fill(12),
    });
  }
  const marker = reservationValue({
    day: BIG,
    windows: Object.fromEntries(Object.keys(markerWindows(0)).map((w) => [w, BIG])),
    month: BIG,
    costMicroUsd: BIG,
    model,
    inputTokens: BIG,
    outputAllowance: BIG,
    tokenEpoch: BIG,
    costEpoch: BIG,
    claim: claim(),
  });
  // Measured one marker and one `fl` entry at a time: the sum is exact (DynamoDB adds sizes).
  const oneMarker = storedSizeBytes({ [`${RESERVATION_PREFIX}${id(0)}`]: marker });
  const oneInFlight = 1 + LONGEST.requestId + numberSize(String(BIG));
  const parts = {
    base: storedSizeBytes({ ...base, [IN_FLIGHT_ATTR]: {} }),
    queue: storedSizeBytes(queue),
    reservations: reservations * (oneMarker + oneInFlight),
    override: override ? storedSizeBytes({ [OVERRIDE_ATTR]: override }) : 0,
  };
  return { bytes: Object.values(parts).reduce((a, b) => a + b, 0), reservations, parts };
}

/**
 * Refuses (ConfigError) a configuration under which some tier's user item could pass
 * {@link ITEM_SIZE_BOUND_BYTES}, naming the tier and the setting that brings it back under.
 */
export function checkItemSizes(tiers: TierLimits, settings: ItemSizeSettings): void {
  for (const tier of TIERS) checkItemSize(tier, tiers[tier], settings);
}

/** The same check for one user's policy (an admin's tier change or override). */
export function checkItemSize(
  tier: Tier,
  policy: LimitPolicy,
  settings: ItemSizeSettings,
  override?: LimitOverride,
): void {
  const worst = worstCaseUserItem(policy, settings, override);
  if (worst.bytes <= ITEM_SIZE_BOUND_BYTES) return;
  const per = Math.ceil(worst.parts.reservations! / Math.max(1, worst.reservations));
  const room = Math.floor((ITEM_SIZE_BOUND_BYTES - worst.bytes + worst.parts.reservations!) / per / 2);
  const field = policy.requestsInFlight === undefined ? 'set' : 'lower';
  throw new ConfigError(
    `${override ? 'override' : 'tiers'}.${tier}: a user's limiter item could reach ${worst.bytes.toLocaleString('en-US')} bytes ` +
      `(${worst.reservations.toLocaleString('en-US')} reservations held at once), over the ${ITEM_SIZE_BOUND_BYTES / 1024} KB bound: ` +
      `${field} requestsInFlight (at most ${Math.max(0, room)}), or lower messagesPerMinute/burst or maxQueuedPerUser`,
  );
}

/**
 * An admin's tier or override change, checked the same way: the user's tier after the change (or,
 * with none set, every tier a token may claim) under the override after it.
 */
export function checkPolicyChange(
  tiers: TierLimits,
  after: { readonly tier?: Tier; readonly override?: LimitOverride },
  settings: ItemSizeSettings,
): void {
  for (const tier of after.tier ? [after.tier] : TIERS) {
    const policy = { ...tiers[tier], ...after.override?.limits };
    checkItemSize(tier, policy, settings, after.override);
  }
}

/**
 * An item's size as DynamoDB bills it, from its plain (unmarshalled) value (AWS, "Item sizes and
 * formats"): each attribute's name and value in UTF-8 bytes; a number about 1 byte per 2
 * significant digits + 1; a map or list 3 bytes plus 1 per element, plus its elements (a map's keys
 * counted like names); a boolean or null 1.
 */
export function storedSizeBytes(item: Readonly<Record<string, unknown>>): number {
  let size = 0;
  for (const [name, value] of Object.entries(item)) {
    if (value !== undefined) size += utf8(name) + valueSize(value);
  }
  return size;
}

function valueSize(value: unknown): number {
  if (typeof value === 'string') return utf8(value);
  if (typeof value === 'number') return numberSize(String(value));
  if (typeof value === 'boolean' || value === null) return 1;
  if (Array.isArray(value)) return 3 + value.reduce((n: number, v) => n + 1 + valueSize(v), 0);
  if (typeof value === 'object') {
    return (
      3 +
      Object.entries(value as Record<string, unknown>)
        .filter(([, v]) => v !== undefined)
        .reduce((n, [k, v]) => n + 1 + utf8(k) + valueSize(v), 0)
    );
  }
  return 0;
}

/** DynamoDB's size of a number given as its decimal text. */
export function numberSize(n: string): number {
  const digits = n.replace(/^-/, '').replace('.', '').replace(/^0+/, '').replace(/0+$/, '');
  return Math.ceil(Math.max(digits.length, 1) / 2) + 1;
}

/** Stands for any character of an id (one byte in UTF-8). */
const FILLER = 'z';
const fill = (n: number) => FILLER.repeat(n);
const utf8 = (text: string) => new TextEncoder().encode(text).length;
const longest = <T extends string>(xs: readonly T[]): T => xs.reduce((a, b) => (b.length > a.length ? b : a));
const claim = () => fill(LONGEST.claim);
