import type { ActiveRequest, QueuedRequest } from '../../queue/request';
import { quotaCounters } from '../global/model-quotas';
import { kindAttributes, type LimitOverride } from '../kinds/registry';
import { isTeamName } from '../teams';
import { isTier } from '../tiers';
import {
  ACTIVE_ATTR,
  ACTIVE_FIELDS,
  CLAIM_TEAM_ATTR,
  CLAIM_TIER_ATTR,
  COST_EPOCH_ATTR,
  GLOBAL_SHARES_ATTR,
  HELD_DAY_ATTR,
  HISTORY_ATTR,
  IN_FLIGHT_ATTR,
  OVERRIDE_ATTR,
  PARKED_WAKE_UP_ATTR,
  POLICY_VERSION_ATTR,
  QUEUE_VERSION_ATTRIBUTE,
  QUEUED_DAY_PREFIX,
  QUEUED_FIELDS,
  QUEUED_PREFIX,
  RESERVATION_FIELDS,
  RESERVATION_PREFIX,
  SETTLED_SHARE_FIELDS,
  SETTLED_SHARE_PREFIX,
  SWEEP_AFTER_ATTRIBUTE,
  TEAM_ATTR,
  TIER_ATTR,
  TOKEN_EPOCH_ATTR,
  WAITING_ATTR,
  WARNED_FULL_PREFIX,
  WARNED_PREFIX,
} from './attributes';
import { closedDayOf, historyOf, num, settledUsageOf } from './day-codec';
import { EMPTY_SNAPSHOT, type LimiterSnapshot, type PendingReservation } from './state';

/**
 * The user's item, stored ↔ readable: {@link snapshotFromItem} reads the unmarshalled item into a
 * LimiterSnapshot, and the encoders below give the stored form of what a plan writes as a whole
 * value. Every stored name comes from item/attributes.ts.
 */

/** The stored form of a waiting request (its id is in the attribute name; no content). */
export function queuedItemValue(request: QueuedRequest): Record<string, unknown> {
  const stored: Record<string, unknown> = {};
  for (const [field, attr] of Object.entries(QUEUED_FIELDS)) {
    const value = request[field as keyof typeof QUEUED_FIELDS];
    if (value !== undefined) stored[attr] = value;
  }
  return stored;
}

/** A stored waiting request, read (undefined: not one). */
function queuedOf(requestId: string, value: unknown): QueuedRequest | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const v = value as Record<string, unknown>;
  const f = QUEUED_FIELDS;
  const [connectionId, key, at, deadline] = [
    v[f.connectionId],
    v[f.contentKey],
    v[f.enqueuedAtEpochMs],
    v[f.expiresAtEpochMs],
  ];
  if (typeof connectionId !== 'string' || typeof key !== 'string') return undefined;
  if (typeof at !== 'number' || typeof deadline !== 'number') return undefined;
  const [input, maxTokens, model, tier, team, notBefore] = [
    v[f.estimatedInputTokens],
    v[f.maxTokens],
    v[f.model],
    v[f.claimTier],
    v[f.claimTeam],
    v[f.notBeforeEpochMs],
  ];
  return {
    requestId,
    connectionId,
    contentKey: key,
    estimatedInputTokens: typeof input === 'number' ? input : 0,
    enqueuedAtEpochMs: at,
    expiresAtEpochMs: deadline,
    ...(typeof maxTokens === 'number' ? { maxTokens } : {}),
    ...(typeof model === 'string' ? { model } : {}),
    ...(isTier(tier) ? { claimTier: tier } : {}),
    ...(isTeamName(team) ? { claimTeam: team } : {}),
    ...(typeof notBefore === 'number' ? { notBeforeEpochMs: notBefore } : {}),
  };
}

/**
 * An empty plain object for entries keyed by request id. Made as a dictionary from the start: V8
 * gives an object a new hidden class for every new key, and ids are new on every request, so a
 * map of ids built key by key makes a class per entry and runs twice as slow as a dictionary. The
 * object is the same to its readers (Object.prototype, the same keys in the same order).
 */
export function idMap<T>(): Record<string, T> {
  return Object.setPrototypeOf(Object.create(null), Object.prototype) as Record<string, T>;
}

/** A day's queued count (`nq<day>`), made once: every read of an item tests each key with it. */
const QUEUED_DAY = new RegExp(`^${QUEUED_DAY_PREFIX}\\d+$`);

/** Reads a snapshot from an unmarshalled item (or `undefined` for no item). */
export function snapshotFromItem(item: Record<string, unknown> | undefined): LimiterSnapshot {
  if (!item) return EMPTY_SNAPSHOT;
  const reservations = idMap<PendingReservation>();
  const queued = idMap<QueuedRequest>();
  const warned: Record<string, number> = {};
  const warnedFull: Record<string, number> = {};
  const queuedByDay: Record<number, number> = {};
  const settledShares = idMap<number>();
  for (const [key, value] of Object.entries(item)) {
    if (key.startsWith(SETTLED_SHARE_PREFIX) && typeof value === 'object' && value !== null) {
      const x = (value as Record<string, unknown>)[SETTLED_SHARE_FIELDS.expiresAtEpochMs];
      settledShares[key.slice(SETTLED_SHARE_PREFIX.length)] = typeof x === 'number' ? x : 0;
    }
    if (QUEUED_DAY.test(key) && typeof value === 'number')
      queuedByDay[Number(key.slice(QUEUED_DAY_PREFIX.length))] = value;
    const pending = key.startsWith(RESERVATION_PREFIX) ? reservationOf(value) : undefined;
    if (pending) {
      reservations[key.slice(RESERVATION_PREFIX.length)] = pending;
    } else if (key.startsWith(WARNED_PREFIX) && typeof value === 'number') {
      warned[key.slice(WARNED_PREFIX.length)] = value;
    } else if (key.startsWith(WARNED_FULL_PREFIX) && typeof value === 'number') {
      warnedFull[key.slice(WARNED_FULL_PREFIX.length)] = value;
    } else if (key.startsWith(QUEUED_PREFIX)) {
      const request = queuedOf(key.slice(QUEUED_PREFIX.length), value);
      if (request) queued[request.requestId] = request;
    }
  }
  const waiting = item[WAITING_ATTR];
  return {
    exists: true,
    policyVersion: num(item[POLICY_VERSION_ATTR]) ?? 0,
    tier: isTier(item[TIER_ATTR]) ? item[TIER_ATTR] : undefined,
    ...(isTier(item[CLAIM_TIER_ATTR]) ? { lastClaimTier: item[CLAIM_TIER_ATTR] } : {}),
    ...(isTeamName(item[TEAM_ATTR]) ? { team: item[TEAM_ATTR] } : {}),
    ...(isTeamName(item[CLAIM_TEAM_ATTR]) ? { lastClaimTeam: item[CLAIM_TEAM_ATTR] } : {}),
    override: isOverride(item[OVERRIDE_ATTR]) ? item[OVERRIDE_ATTR] : undefined,
    ...kindCounters(item),
    tokenEpoch: num(item[TOKEN_EPOCH_ATTR]) ?? 0,
    costEpoch: num(item[COST_EPOCH_ATTR]) ?? 0,
    waiting: Array.isArray(waiting) ? waiting.filter((x): x is string => typeof x === 'string') : [],
    queued,
    warned,
    warnedFull,
    active: activeOf(item[ACTIVE_ATTR]),
    inFlight: inFlightOf(item[IN_FLIGHT_ATTR]),
    parkedWakeUp: typeof item[PARKED_WAKE_UP_ATTR] === 'string' ? item[PARKED_WAKE_UP_ATTR] : undefined,
    sweepAfterEpochMs: num(item[SWEEP_AFTER_ATTRIBUTE]),
    queueVersion: num(item[QUEUE_VERSION_ATTRIBUTE]),
    history: historyOf(item[HISTORY_ATTR]),
    heldDay: closedDayOf(item[HELD_DAY_ATTR]),
    settledUsage: settledUsageOf(item),
    queuedByDay,
    reservations,
    ...(Object.keys(settledShares).length > 0 ? { settledShares } : {}),
    ...shareRecordsOf(item[GLOBAL_SHARES_ATTR]),
  };
}

/**
 * The limit kinds' counters, under the names each kind declares (`LimitKind.attributes`): the
 * registry reads them, so a new kind's counters reach the snapshot without an edit here.
 */
function kindCounters(item: Record<string, unknown>): Partial<LimiterSnapshot> {
  // A shard's model-quota counters too (named by model id: global/model-quotas.ts).
  return { ...kindAttributes(item), ...quotaCounters(item) };
}

function activeOf(value: unknown): ActiveRequest | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const v = value as Record<string, unknown>;
  const id = v[ACTIVE_FIELDS.requestId];
  const lease = v[ACTIVE_FIELDS.lease];
  const att = v[ACTIVE_FIELDS.attempts];
  const c = v[ACTIVE_FIELDS.claim];
  if (typeof id !== 'string' || typeof lease !== 'number') return undefined;
  return {
    requestId: id,
    leaseUntilEpochMs: lease,
    attempts: typeof att === 'number' ? att : 1,
    ...(typeof c === 'string' ? { claim: c } : {}),
  };
}

function inFlightOf(value: unknown): Record<string, number> | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  const leases = idMap<number>();
  const stored = value as Record<string, unknown>;
  for (const id of Object.keys(stored)) {
    const lease = stored[id];
    if (typeof lease === 'number') leases[id] = lease;
  }
  return leases;
}

/** A shard's `gr` map, as the ids it holds (none on a user's item). */
function shareRecordsOf(value: unknown): { shareRecords?: string[] } {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return {};
  return { shareRecords: Object.keys(value) };
}

/** A stored reservation marker, read (undefined: not one). */
/** The marker's amounts and epochs: every other number in it is a window some budget recorded. */
const AMOUNT_FIELDS: ReadonlySet<string> = new Set(
  (['costMicroUsd', 'inputTokens', 'outputAllowance', 'tokenEpoch', 'costEpoch'] as const).map(
    (field) => RESERVATION_FIELDS[field],
  ),
);

/** The marker's optional fields and their stored names, listed once. */
const OPTIONAL_FIELDS = (['month', 'costMicroUsd', 'model', 'tokenEpoch', 'costEpoch', 'claim'] as const).map(
  (field) => [field, RESERVATION_FIELDS[field]] as const,
);

// Plain loops, no intermediate arrays: an item holds a marker per reply in flight, and every read
// of the item (each decision; the simulator's every write) reads them all.
function reservationOf(value: unknown): PendingReservation | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const v = value as Record<string, unknown>;
  const f = RESERVATION_FIELDS;
  const [day, inputTokens, outputAllowance] = [v[f.day], v[f.inputTokens], v[f.outputAllowance]];
  if (typeof day !== 'number' || typeof inputTokens !== 'number' || typeof outputAllowance !== 'number')
    return undefined;
  const windows: Record<string, number> = {};
  for (const attr of Object.keys(v)) {
    const n = v[attr];
    if (typeof n === 'number' && !AMOUNT_FIELDS.has(attr)) windows[attr] = n;
  }
  const pending: Record<string, unknown> = { day, inputTokens, outputAllowance, windows };
  for (const [field, attr] of OPTIONAL_FIELDS) if (v[attr] !== undefined) pending[field] = v[attr];
  return pending as unknown as PendingReservation;
}

/** The marker's fields and their stored names, listed once (every admission writes a marker). */
const MARKER_FIELDS = Object.entries(RESERVATION_FIELDS) as [keyof PendingReservation, string][];

/** The stored form of a reservation marker (the fields given, under their stored names). */
export function reservationValue(reservation: PendingReservation): Record<string, unknown> {
  const stored: Record<string, unknown> = { ...reservation.windows };
  for (const [field, attr] of MARKER_FIELDS) {
    if (field in reservation) stored[attr] = reservation[field];
  }
  return stored;
}

/** The stored form of the active request `act`. */
export function activeValue(active: Omit<ActiveRequest, 'claim'>): Record<string, unknown> {
  const f = ACTIVE_FIELDS;
  return {
    [f.requestId]: active.requestId,
    [f.lease]: active.leaseUntilEpochMs,
    [f.attempts]: active.attempts,
  };
}

/** The stored form of a settled request's charge (`gs_<id>`). */
export function settledShareValue(charged: {
  readonly tokens: number;
  readonly costMicroUsd: number;
  readonly expiresAtEpochMs: number;
}): Record<string, number> {
  const f = SETTLED_SHARE_FIELDS;
  return {
    [f.tokens]: charged.tokens,
    [f.costMicroUsd]: charged.costMicroUsd,
    [f.expiresAtEpochMs]: charged.expiresAtEpochMs,
  };
}

function isOverride(value: unknown): value is LimitOverride {
  return typeof value === 'object' && value !== null && typeof (value as LimitOverride).limits === 'object';
}
