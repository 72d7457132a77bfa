import { dayNumber } from '../limiter/evaluate';
import type { LimiterView } from '../limiter/item/state';
import { SWEEP_GRACE_MS, wakeUpDueEpochMs } from './sweep';

/** One broken invariant of a user's item, with what it means. */
export interface AuditFinding {
  /** A short stable code (`waiting-without-data`, `lapsed-active`, …). */
  readonly code: string;
  readonly message: string;
}

/** What `npm run admin -- audit USER` answers. */
export interface AuditReport {
  readonly userId: string;
  readonly ok: boolean;
  readonly checkedAtEpochMs: number;
  readonly findings: readonly AuditFinding[];
  /** The queue state it checked, for the reader. */
  readonly state: {
    readonly waiting: readonly string[];
    readonly active?: string;
    readonly inFlight: number;
    readonly reservations: number;
    /** The wake-up is parked in the item until an in-flight slot frees (`wk`). */
    readonly parked: boolean;
    /** The waiting list's version (position notices carry it). */
    readonly queueVersion: number;
    /** When the sweep looks at this user next (absent: the user is not in the sweep index). */
    readonly sweepAfterEpochMs?: number;
  };
}

/**
 * Checks one user's item against the queue's and the limiter's invariants (docs/queue.md): the
 * waiting list and its stored requests match, positions are 1..n, the active request has its
 * data, reservation and slot, no lease is lapsed, no counter is past its limit, no reservation of
 * a closed window is left unsettled, and state that needs an end is in the sweep index.
 */
export function auditItem(
  userId: string,
  view: LimiterView,
  nowMs: number,
  settings: { readonly maxQueuedPerUser?: number; readonly sweepAfterEpochMs?: number } = {},
): AuditReport {
  const { snap } = view;
  const findings: AuditFinding[] = [];
  const find: Find = (code, message) => findings.push({ code, message });
  const waiting = checkWaitingList(view, settings, find);
  checkActive(view, waiting, nowMs, find);
  checkHead(view, nowMs, find);
  checkSlotsAndCounters(view, nowMs, find);
  const needsEnd = snap.waiting.length > 0 || snap.active !== undefined;
  if (needsEnd && settings.sweepAfterEpochMs === undefined)
    find(
      'not-swept',
      'queue state without a place in the sweep index: nothing repairs it if a wake-up is lost',
    );
  return {
    userId,
    ok: findings.length === 0,
    checkedAtEpochMs: nowMs,
    findings,
    state: {
      waiting: snap.waiting,
      active: snap.active?.requestId,
      inFlight: Object.keys(snap.inFlight ?? {}).length,
      reservations: Object.keys(snap.reservations).length,
      parked: snap.parkedWakeUp !== undefined,
      queueVersion: snap.queueVersion ?? 0,
      sweepAfterEpochMs: settings.sweepAfterEpochMs,
    },
  };
}

type Find = (code: string, message: string) => void;

const at = (ms: number) => new Date(ms).toISOString();

/** The waiting list and its stored requests match, within the cap. Returns the ids that wait. */
function checkWaitingList(
  view: LimiterView,
  settings: { readonly maxQueuedPerUser?: number },
  find: Find,
): ReadonlySet<string> {
  const { snap } = view;
  const seen = new Set<string>();
  snap.waiting.forEach((id, index) => {
    if (seen.has(id))
      find('duplicate-position', `${id} is in the waiting list twice (position ${index + 1})`);
    seen.add(id);
    if (!snap.queued[id])
      find('waiting-without-data', `${id} waits at position ${index + 1} without its data`);
  });
  if (settings.maxQueuedPerUser !== undefined && snap.waiting.length > settings.maxQueuedPerUser) {
    find('queue-over-cap', `${snap.waiting.length} waiting, over the cap of ${settings.maxQueuedPerUser}`);
  }
  for (const id of Object.keys(snap.queued)) {
    if (!seen.has(id) && id !== snap.active?.requestId)
      find('data-without-request', `stored data of ${id}, which neither waits nor is active`);
  }
  return seen;
}

/** The active request has its data, reservation and slot, and its lease has not lapsed. */
function checkActive(view: LimiterView, waiting: ReadonlySet<string>, nowMs: number, find: Find): void {
  const { snap } = view;
  const active = snap.active;
  if (!active) return;
  const id = active.requestId;
  if (waiting.has(id)) find('active-and-waiting', `${id} is active and still in the waiting list`);
  if (!snap.queued[id]) find('active-without-data', `active request ${id} has no stored data`);
  if (!snap.reservations[id]) find('active-without-reservation', `active request ${id} has no reservation`);
  if (active.leaseUntilEpochMs + SWEEP_GRACE_MS <= nowMs) {
    find('lapsed-active', `active request ${id}: its lease lapsed at ${at(active.leaseUntilEpochMs)}`);
  } else if (active.leaseUntilEpochMs > nowMs && snap.inFlight?.[id] === undefined) {
    // Past its lease, a later admission may drop its slot; the takeover takes one again.
    find('active-without-slot', `active request ${id} holds no in-flight slot`);
  }
}

/** The head is neither past its deadline nor admissible and left unserved. */
function checkHead(view: LimiterView, nowMs: number, find: Find): void {
  const { snap } = view;
  const head = snap.waiting[0];
  const headData = head === undefined ? undefined : snap.queued[head];
  if (headData && headData.expiresAtEpochMs + SWEEP_GRACE_MS <= nowMs) {
    find('expired-head', `head ${head} passed its deadline at ${at(headData.expiresAtEpochMs)}`);
  } else if (!snap.active && headData && wakeUpDueEpochMs(view, nowMs) + SWEEP_GRACE_MS <= nowMs) {
    find(
      'head-not-served',
      `head ${head} is admissible by the user's own limits since ${at(wakeUpDueEpochMs(view, nowMs))} and nobody served it (a lost wake-up, or a global limit holds it)`,
    );
  }
}

/** No slot is lapsed, no counter past its limit, no reservation of a closed day left unsettled. */
function checkSlotsAndCounters(view: LimiterView, nowMs: number, find: Find): void {
  const { snap } = view;
  const active = snap.active;
  for (const [id, lease] of Object.entries(snap.inFlight ?? {})) {
    if (id !== active?.requestId && lease + SWEEP_GRACE_MS <= nowMs)
      find('lapsed-slot', `in-flight slot of ${id} lapsed at ${at(lease)}`);
  }
  for (const limit of view.limits) {
    if (limit.used > limit.limit) find('over-limit', `${limit.name}: ${limit.used} used of ${limit.limit}`);
  }
  const today = dayNumber(nowMs);
  for (const [id, pending] of Object.entries(snap.reservations)) {
    const held = id === active?.requestId || (snap.inFlight?.[id] ?? 0) > nowMs;
    if (!held && pending.day < today)
      find('unsettled-reservation', `reservation of ${id} (day ${pending.day}) was never settled`);
  }
}
