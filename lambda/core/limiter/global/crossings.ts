import { dayNumber, hourNumber, monthNumber } from '../windows';
import { GLOBAL_PARTS, type GlobalLimit, type GlobalLimitName, type GlobalLimitState } from './limits';

/**
 * A global budget at 80 % or 100 % of its window (SPEC §9.5 `Budget Threshold Crossed`, scope
 * `global`). No admission sees the total (each shard holds a share), so the sweep decides these
 * from the shards' totals, once a run, and a conditional write on one mark per limit, threshold
 * and window (GLOBAL_EVENTS_KEY) makes each crossing's event once per window.
 */
export interface GlobalCrossing {
  readonly limit: GlobalLimitName;
  readonly thresholdPercent: 80 | 100;
  /** Shown units (cost: USD), as `status` gives them. */
  readonly used: number;
  readonly limitValue: number;
  readonly unit: GlobalLimitState['unit'];
  /** The window's number (epoch hours or epoch days, as the limit counts). */
  readonly window: number;
  readonly resetAtEpochMs: number;
}

/** The share of a global budget used from which the 80 % crossing holds. */
export const GLOBAL_WARNING_SHARE = 0.8;

/**
 * The crossings the totals show: every global limit counted in a window (not the in-flight one),
 * not shadowed, at ≥ 80 % and at ≥ 100 %. Whether each was published already is the mark's.
 */
export function globalCrossings(states: readonly GlobalLimitState[], nowMs: number): GlobalCrossing[] {
  const windows = { hour: hourNumber(nowMs), day: dayNumber(nowMs), month: monthNumber(nowMs) };
  const crossings: GlobalCrossing[] = [];
  for (const state of states) {
    const part = GLOBAL_PARTS.find((p) => `global.${p.kind}` === state.name);
    if (!part?.counter || state.shadow || state.limit <= 0) continue;
    const crossing = {
      limit: state.name,
      used: state.used,
      limitValue: state.limit,
      unit: state.unit,
      window: windows[part.counter.window],
      resetAtEpochMs: state.resetAtEpochMs,
    };
    if (state.used >= state.limit * GLOBAL_WARNING_SHARE)
      crossings.push({ ...crossing, thresholdPercent: 80 });
    if (state.used >= state.limit) crossings.push({ ...crossing, thresholdPercent: 100 });
  }
  return crossings;
}

/**
 * A team budget at 80 % or 100 % of its window (SPEC §9.5, scope `team`): the same crossings as a
 * global budget's, from the team's shards' totals (`team#<name>#<k>`), named `team.<limit>` as its
 * refusals and `status` name them, and marked once per window on the team's own marks item.
 */
export interface TeamCrossing extends Omit<GlobalCrossing, 'limit'> {
  readonly team: string;
  readonly limit: `team.${GlobalLimit}`;
}

/** The crossings a team's totals show (its counters name them `global.<limit>`, as every shard set). */
export function teamCrossings(
  team: string,
  states: readonly GlobalLimitState[],
  nowMs: number,
): TeamCrossing[] {
  return globalCrossings(states, nowMs).map((c) => ({
    ...c,
    team,
    limit: `team.${c.limit.slice('global.'.length) as GlobalLimit}`,
  }));
}
