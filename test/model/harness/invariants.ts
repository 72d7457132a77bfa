import { liveInFlight } from '../../../lambda/core/limiter/snapshot';
import { DAY_MS, dayNumber, monthNumber } from '../../../lambda/core/limiter/windows';
import { costMicroUsd, ECHO_MODEL, usdToMicroUsd } from '../../../lambda/core/models';
import { type ClientRequest, FREE, MAX_QUEUED, type World } from './world';

/**
 * The invariants of SPEC §9.1 the harness checks. `checkAlways` runs after every command (nothing
 * exceeded at any moment, nothing ended twice, no position went up); `checkSettled` runs after the
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
  for (const m of w.dlq.messages) {
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
    let lo = 0;
    let hi = 0;
    const parts: string[] = [];
    for (const r of mine) {
      const res = r.reservation!;
      if (of(res.dayNumber) !== window) continue;
      const reserved = unit === 'tokens' ? res.tokens : res.costMicroUsd;
      const { charge, late } = chargeOf(r, unit, of, window);
      lo += charge;
      hi += late ? reserved : charge;
      parts.push(`${r.requestId}:${charge}${late ? `..${reserved}` : ''}`);
    }
    if (used < lo || used > hi) {
      w.violation(
        `${userId}: ${name} counter of window ${window} is ${used}, the settled charges say ${lo === hi ? lo : `${lo}..${hi}`} (${parts.join(' ') || 'no request'})`,
      );
    }
  }
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
