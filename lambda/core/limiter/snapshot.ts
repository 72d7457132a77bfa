import { isTier } from './policy';
import type { LimitOverride, Tier } from './types';

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
  /** The user's waiting request ids, head first (in the order SQS will hand them out). */
  readonly waiting: readonly string[];
  /** The stored entries behind `waiting`: `<SQS sequence number, padded>|<requestId>`. */
  readonly waitingEntries: readonly string[];
  /** Version of the waiting list: every change of the list bumps it. */
  readonly wv: number;
  /** Pending reservations by request id, until reconciled. */
  readonly reservations: Readonly<Record<string, PendingReservation>>;
}

/** A reservation waiting for reconcile: day, input tokens, output allowance. */
export interface PendingReservation {
  readonly d: number;
  readonly i: number;
  readonly o: number;
}

/** Prefix of the top-level attributes holding pending reservations (`r_<requestId>`). */
export const RESERVATION_PREFIX = 'r_';

export const EMPTY_SNAPSHOT: LimiterSnapshot = Object.freeze({
  exists: false,
  pv: 0,
  waiting: [],
  waitingEntries: [],
  wv: 0,
  reservations: {},
});

/**
 * A waiting-list entry sorts by the request's SQS sequence number, so the list is in the order
 * the FIFO queue hands the messages out, even when two sends of one user raced.
 */
export function waitingEntry(sequenceNumber: string, requestId: string): string {
  return `${sequenceNumber.padStart(40, '0')}|${requestId}`;
}

export function requestIdOf(entry: string): string {
  const bar = entry.indexOf('|');
  return bar < 0 ? entry : entry.slice(bar + 1);
}

/** Reads a snapshot from an unmarshalled item (or `undefined` for no item). */
export function snapshotFromItem(item: Record<string, unknown> | undefined): LimiterSnapshot {
  if (!item) return EMPTY_SNAPSHOT;
  const entries = Array.isArray(item.waiting)
    ? item.waiting.filter((x): x is string => typeof x === 'string')
    : [];
  const reservations: Record<string, PendingReservation> = {};
  for (const [key, value] of Object.entries(item)) {
    if (key.startsWith(RESERVATION_PREFIX) && isPending(value)) {
      reservations[key.slice(RESERVATION_PREFIX.length)] = value;
    }
  }
  return {
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
    waitingEntries: entries,
    waiting: entries.map(requestIdOf),
    wv: num(item.wv) ?? 0,
    reservations,
  };
}

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
