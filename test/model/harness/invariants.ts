import type { GlobalLimits } from '../../../lambda/core/limiter/global/limits';
import { lineKey, waiterFromItem } from '../../../lambda/core/limiter/global/line';
import { isLiveWaiter } from '../../../lambda/core/limiter/global/priority';
import { shareOf } from '../../../lambda/core/limiter/global/shards';
import { type LimiterSnapshot, liveInFlight } from '../../../lambda/core/limiter/item/state';
import { DAY_MS, dayNumber, monthNumber } from '../../../lambda/core/limiter/windows';
import { costMicroUsd, ECHO_MODEL, usdToMicroUsd } from '../../../lambda/core/models';
import { type ClientRequest, FREE, MAX_QUEUED, type PlaceNotice, type World } from './world';

/**
 * The invariants of SPEC §9.1 the harness checks. `checkAlways` runs after every command (nothing
 * exceeded at any moment, nothing ended twice); `checkPlaceNotice` runs as each position reaches
 * a client (no position shown goes up, versions consistent); `checkSettled` runs after the
 * drain (every request ended exactly once, nothing orphaned, every counter equal to the charges
 * settled in its window).
 */
export async function checkAlways(w: World): Promise<void> {
  for (const userId of w.users) {
    const s = await w.item(userId);
    const live = liveInFlight(s, w.t);
    if (live.length > (FREE.requestsInFlight ?? Number.POSITIVE_INFINITY)) {
      w.violation(`${userId}: ${live.length} requests in flight (limit ${FREE.requestsInFlight})`);
    }
    if (s.waiting.length > MAX_QUEUED)
      w.violation(`${userId}: ${s.waiting.length} queued (cap ${MAX_QUEUED})`);
    const over = (name: string, used: number | undefined, limit: number | undefined) => {
      if (used !== undefined && limit !== undefined && used > limit) {
        w.violation(`${userId}: ${name} ${used} over its limit ${limit}`);
      }
    };
    over('dailyTokens', s.tu, FREE.dailyTokens);
    over('monthlyTokens', s.tmu, FREE.monthlyTokens);
    over('dailyCost µUSD', s.cu, FREE.dailyCostUsd && usdToMicroUsd(FREE.dailyCostUsd));
    over('monthlyCost µUSD', s.cmu, FREE.monthlyCostUsd && usdToMicroUsd(FREE.monthlyCostUsd));
    over('hourlyMessages', s.hc, FREE.hourlyMessages);
    slotsOfEndedRequests(w, `${userId}`, s);
  }
  if (w.global) await checkShardsAlways(w, w.global);
}

/**
 * A place notice reached the client of `r` (SPEC §4: a request's position never goes up). The
 * Message function's `request_queued` and the processor's `queue_position` may cross on the way
 * (finding 13), so the promise is kept by the protocol (docs/protocol.md): of two notices about one
 * request, the client keeps the one with the higher `queueVersion`. Checked here:
 *
 * - every notice carries a version;
 * - the versions are consistent with the positions, whatever order the notices arrive in: a notice
 *   from a later version of the list never puts the request further back than one from an earlier
 *   version, and two from the same version agree (between two versions entries are only appended);
 * - the place a client following the rule shows never goes up.
 */
export function checkPlaceNotice(w: World, r: ClientRequest, notice: PlaceNotice): void {
  const { requestId } = r;
  const v = notice.queueVersion;
  if (v === undefined)
    w.violation(`${notice.type} #${notice.position} of ${requestId} carries no queueVersion`);
  for (const earlier of r.places) {
    const e = earlier.queueVersion;
    if (v === undefined || e === undefined) continue;
    const [older, newer] = e <= v ? [earlier, notice] : [notice, earlier];
    const same = e === v;
    if (same ? older.position !== newer.position : newer.position > older.position) {
      w.violation(
        `versions of ${requestId} disagree with its positions: #${older.position} at v${older.queueVersion}, #${newer.position} at v${newer.queueVersion}`,
      );
    }
  }
  r.places.push(notice);
  const shown = r.shown;
  // The client's rule: a notice from an older version than the one shown is old news.
  if (shown?.queueVersion !== undefined && v !== undefined && v < shown.queueVersion) return;
  r.shown = notice;
  if (shown && notice.position > shown.position) {
    w.violation(`position of ${requestId} went up: ${shown.position} → ${notice.position}`);
  }
}

/** A request that ended for its client holds no live in-flight slot (in its item or a shard). */
function slotsOfEndedRequests(w: World, where: string, s: LimiterSnapshot): void {
  for (const [requestId, leaseUntil] of liveInFlight(s, w.t)) {
    const r = w.requests.get(requestId);
    if (r && r.terminals.length >= r.sends) {
      w.violation(
        `${where}: in-flight slot of ${requestId} held until ${new Date(leaseUntil).toISOString()} after it ended (${r.terminals.map((t) => t.type).join(', ')})`,
      );
    }
  }
}

/** Each shard within its share, the shares within the global limit; no slot of an ended request. */
async function checkShardsAlways(w: World, limits: GlobalLimits): Promise<void> {
  const shards = await w.shards();
  let live = 0;
  for (const [k, s] of shards.entries()) {
    const share = (limit: number | undefined) =>
      limit === undefined ? undefined : shareOf(limit, limits.shards, k);
    const inFlight = liveInFlight(s, w.t).length;
    live += inFlight;
    const over = (name: string, used: number | undefined, limit: number | undefined) => {
      if (used !== undefined && limit !== undefined && used > limit) {
        w.violation(`shard ${k}: ${name} ${used} over its share ${limit}`);
      }
    };
    over('requestsInFlight', inFlight, share(limits.requestsInFlight));
    over('hourlyMessages', s.hc, share(limits.hourlyMessages));
    over('dailyTokens', s.tu, share(limits.dailyTokens));
    slotsOfEndedRequests(w, `shard ${k}`, s);
  }
  if (limits.requestsInFlight !== undefined && live > limits.requestsInFlight) {
    w.violation(`${live} requests in flight across the shards (global limit ${limits.requestsInFlight})`);
  }
}

/** After the drain: nobody left in the line for global capacity, the shards' day counters exact. */
async function checkShardsSettled(w: World): Promise<void> {
  // Each user's own line item: none still waiting once every request has ended.
  const entries: string[] = [];
  for (const userId of w.users) {
    const item = await w.raw(lineKey(userId));
    const waiter = item ? waiterFromItem(item) : undefined;
    if (waiter && isLiveWaiter(waiter, w.t)) entries.push(userId);
  }
  if (entries.length) w.violation(`global line: entries left after the drain: ${entries.join(', ')}`);
  const shards = await w.shards();
  const byDay = new Map<number, number>();
  for (const s of shards) {
    if (s.td !== undefined && s.tu !== undefined) byDay.set(s.td, (byDay.get(s.td) ?? 0) + s.tu);
  }
  for (const [day, used] of byDay) {
    const { lo, hi, parts } = bounds(
      w.all.filter((r) => r.reservation),
      'tokens',
      (d) => d,
      day,
    );
    if (used < lo || used > hi) {
      w.violation(
        `shards: dailyTokens of day ${day} sum to ${used}, the settled charges say ${lo === hi ? lo : `${lo}..${hi}`} (${parts.join(' ') || 'no request'})`,
      );
    }
  }
}

export async function checkSettled(w: World): Promise<void> {
  await checkAlways(w);
  for (const r of w.all) {
    const definite = r.sends - r.ambiguous;
    if (r.terminals.length < definite) {
      w.violation(
        `${r.requestId} (${r.userId}) never ended: ${r.sends} send(s), ${r.terminals.length} final message(s)`,
      );
    }
  }
  for (const userId of w.users) {
    const s = await w.item(userId);
    const orphan = (what: string) => w.violation(`${userId}: orphaned after the drain: ${what}`);
    if (s.active)
      orphan(
        `active request ${s.active.requestId} (lease ${new Date(s.active.leaseUntilEpochMs).toISOString()})`,
      );
    if (s.waiting.length)
      orphan(`waiting list [${s.waiting.join(', ')}] (wake-ups in queue: ${w.queue.ofGroup(userId).length})`);
    const queued = Object.keys(s.queued);
    if (queued.length) orphan(`request data q_${queued.join(', q_')}`);
    const held = Object.keys(s.reservations);
    if (held.length) orphan(`reservation r_${held.join(', r_')}`);
    if (s.parkedWakeUp) orphan(`parked wake-up ${s.parkedWakeUp}`);
    checkCounters(w, userId, s);
  }
  if (w.global) await checkShardsSettled(w);
  // Redriven by SQS (receives ran out), not moved there by the processor or runner with a reason.
  for (const m of w.queue.deadLetters) {
    w.violation(`wake-up ${m.messageId} redriven to the DLQ after ${m.receiveCount} receives: ${m.body}`);
  }
}

/**
 * Every counter equals the charges settled in its window: for the window the item holds, the sum
 * over the user's requests reserved in it of what each was charged (the usage its
 * `message_complete` reports; 0 for a request that failed or was refused with "nothing charged").
 * A settle after its window closed may refund nowhere (SPEC §9.1: the window it was taken from, or
 * nowhere), so such a request may count anywhere from its charge up to its reservation.
 */
function checkCounters(w: World, userId: string, s: Awaited<ReturnType<World['item']>>): void {
  const mine = w.all.filter((r) => r.userId === userId && r.reservation);
  const windows = [
    { name: 'dailyTokens', window: s.td, used: s.tu, of: (d: number) => d, unit: 'tokens' as const },
    { name: 'monthlyTokens', window: s.tm, used: s.tmu, of: monthOfDay, unit: 'tokens' as const },
    { name: 'dailyCost', window: s.cd, used: s.cu, of: (d: number) => d, unit: 'cost' as const },
    { name: 'monthlyCost', window: s.cm, used: s.cmu, of: monthOfDay, unit: 'cost' as const },
  ];
  for (const { name, window, used, of, unit } of windows) {
    if (window === undefined || used === undefined) continue;
    const { lo, hi, parts } = bounds(mine, unit, of, window);
    if (used < lo || used > hi) {
      w.violation(
        `${userId}: ${name} counter of window ${window} is ${used}, the settled charges say ${lo === hi ? lo : `${lo}..${hi}`} (${parts.join(' ') || 'no request'})`,
      );
    }
  }
}

/** The range a window's counter must lie in, from the charges of the requests reserved in it. */
function bounds(
  requests: readonly ClientRequest[],
  unit: 'tokens' | 'cost',
  of: (day: number) => number,
  window: number,
): { lo: number; hi: number; parts: string[] } {
  let lo = 0;
  let hi = 0;
  const parts: string[] = [];
  for (const r of requests) {
    const res = r.reservation!;
    if (of(res.dayNumber) !== window) continue;
    const reserved = unit === 'tokens' ? res.tokens : res.costMicroUsd;
    const { charge, late } = chargeOf(r, unit, of, window);
    lo += charge;
    hi += late ? reserved : charge;
    parts.push(`${r.requestId}:${charge}${late ? `..${reserved}` : ''}`);
  }
  return { lo, hi, parts };
}

function chargeOf(
  r: ClientRequest,
  unit: 'tokens' | 'cost',
  windowOf: (day: number) => number,
  window: number,
): { charge: number; late: boolean } {
  const end = r.terminals[0];
  // Not ended (reported on its own): anything from nothing to the whole reservation.
  if (!end) return { charge: 0, late: true };
  // The settling instance's clock may be a few seconds off the harness's.
  const late = [end.atMs - SKEW_MARGIN_MS, end.atMs + SKEW_MARGIN_MS].some(
    (t) => windowOf(dayNumber(t)) !== window,
  );
  if (!end.usage) return { charge: 0, late };
  const { inputTokens, outputTokens } = end.usage;
  const charge =
    unit === 'tokens' ? inputTokens + outputTokens : costMicroUsd(ECHO_MODEL, inputTokens, outputTokens);
  return { charge, late };
}

const SKEW_MARGIN_MS = 5000;
const monthOfDay = (day: number) => monthNumber(day * DAY_MS);
